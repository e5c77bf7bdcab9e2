"""@http as a nameko user writes it (SPEC 6), with a real HTTP client."""

from __future__ import annotations

import json

import pytest
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from nameko.exceptions import BadRequest, ConfigurationError
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler, http
from nameko.web.server import BindAddress, WebServer, parse_address

TEXT = "text/plain; charset=utf-8"


class Tracker(DependencyProvider):
    def __init__(self):
        self.events = []

    def worker_setup(self, worker_ctx):
        self.events.append(("setup", worker_ctx.entrypoint.method_name, worker_ctx.data))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        self.events.append(("result", result, exc_info and exc_info[0]))

    def get_dependency(self, worker_ctx):
        return self


class Service:
    name = "web"
    tracker = Tracker()

    @http("GET", "/str/<int:value>")
    def text(self, request, value):
        return json.dumps({"value": value})

    @http("GET", "/bytes")
    def raw_bytes(self, request):
        return b"\x00\xff"

    @http("GET", "/pair")
    def pair(self, request):
        return 403, "Forbidden"

    @http("GET", "/triple")
    def triple(self, request):
        return 201, {"Location": "https://example.com/widget/1"}, ""

    @http("GET", "/response")
    def response(self, request):
        return Response('{"a": 1}', mimetype="application/json", status=202)

    @http("GET,PUT,POST,DELETE", "/multi/<path:rest>")
    def multi(self, request, rest):
        return f"{request.method} {rest} {request.get_data(as_text=True)}"

    @http("POST", "/echo")
    def echo(self, request):
        return f"received: {request.get_data(as_text=True)}"

    @http("GET", "/unicode/<name>")
    def unicode(self, request, name):
        return f"héllo {name} ✓"

    @http("GET", "/query")
    def query(self, request):
        return ",".join(f"{k}={v}" for k, v in sorted(request.args.items()))

    @http("GET", "/fail/<kind>", expected_exceptions=KeyError)
    def fail(self, request, kind):
        errors = {"key": KeyError("boom"), "bad": BadRequest("nope"), "value": ValueError("v")}
        errors["werkzeug"] = Forbidden()
        raise errors[kind]

    @http("GET", "/dict")
    def a_dict(self, request):
        return {"not": "a string"}

    @http("GET", "/long-tuple")
    def long_tuple(self, request):
        return 200, {}, "x", "y"

    @http("GET", "/signature/<value>")
    def signature(self, request):  # the rule has a value the method doesn't take
        return "never"

    @http("GET", "/tracked")
    def tracked(self, request):
        return "tracked"


@pytest.fixture
def web(start):
    return start(Service)


@pytest.mark.parametrize(
    "path,status,content_type,body",
    [
        ("/str/42", 200, TEXT, b'{"value": 42}'),
        ("/bytes", 200, TEXT, b"\x00\xff"),
        ("/pair", 403, TEXT, b"Forbidden"),
        ("/triple", 201, TEXT, b""),
        ("/response", 202, "application/json", b'{"a": 1}'),
    ],
)
def test_every_return_form(web, web_session, path, status, content_type, body):
    response = web_session.get(path)
    assert (response.status_code, response.headers["Content-Type"]) == (status, content_type)
    assert response.content == body
    assert response.headers["Content-Length"] == str(len(body))


def test_triple_sets_headers(web, web_session):
    response = web_session.get("/triple", allow_redirects=False)
    assert response.headers["Location"] == "https://example.com/widget/1"


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE"])
def test_comma_separated_methods(web, web_session, method):
    response = web_session.request(method, "/multi/a/b", data="body")
    assert response.text == f"{method} a/b body"


def test_head_is_answered_without_a_body(web, web_session):
    response = web_session.head("/str/7")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["Content-Length"] == "12"


def test_not_found_and_method_not_allowed_are_werkzeugs(web, web_session):
    missing = web_session.get("/nowhere")
    assert missing.status_code == 404 and "text/html" in missing.headers["Content-Type"]
    wrong = web_session.post("/str/1")
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    assert web_session.get("/str/notanint").status_code == 404  # the converter refuses


def test_unicode_in_path_and_body(web, web_session):
    response = web_session.get("/unicode/%C3%A9t%C3%A9")
    assert response.content.decode("utf-8") == "héllo été ✓"
    posted = web_session.post("/echo", data="données ✓".encode())
    assert posted.content.decode("utf-8") == "received: données ✓"


def test_query_string(web, web_session):
    assert web_session.get("/query?b=2&a=%C3%A9").text == "a=é,b=2"


@pytest.mark.parametrize(
    "kind,status,body",
    [
        ("key", 400, "Error: KeyError: 'boom'\n"),
        ("bad", 400, "Error: BadRequest: nope\n"),
        ("value", 500, "Error: ValueError: v\n"),
        ("werkzeug", 500, "Error: Forbidden: 403 Forbidden: You don't have the permission"),
    ],
)
def test_errors_as_spec_6(web, web_session, kind, status, body):
    response = web_session.get(f"/fail/{kind}")
    assert response.status_code == status
    assert response.headers["Content-Type"] == TEXT
    assert response.text.startswith(body)
    assert "Traceback" not in response.text


def test_non_string_payload_is_a_500_naming_it(web, web_session):
    response = web_session.get("/dict")
    assert response.status_code == 500
    assert (
        response.text == "Error: TypeError: Payload must be a string. Got `{'not': 'a string'}`\n"
    )
    assert web_session.get("/long-tuple").status_code == 500


def test_incorrect_signature_is_a_400(web, web_session):
    response = web_session.get("/signature/x")
    assert response.status_code == 400 and "IncorrectSignature" in response.text


def test_worker_lifecycle_runs_with_empty_context_data(web, web_session):
    assert web_session.get("/tracked").text == "tracked"
    tracker = next(iter(web.dependencies))
    setup, result = tracker.events[-2:]
    assert setup == ("setup", "tracked", {})  # HTTP headers never become context data
    assert result == ("result", "tracked", None)


# -- extending, as nameko's docs show ------------------------------------------------


class HttpError(Exception):
    status_code = 418


class JsonErrors(HttpRequestHandler):
    def response_from_exception(self, exc):
        if isinstance(exc, HttpError):
            body = json.dumps({"error": type(exc).__name__, "message": str(exc)})
            return Response(body, status=exc.status_code, mimetype="application/json")
        return HttpRequestHandler.response_from_exception(self, exc)

    def response_from_result(self, result):
        if isinstance(result, dict):
            return Response(json.dumps(result), mimetype="application/json")
        return super().response_from_result(result)


json_http = JsonErrors.decorator


class Custom:
    name = "custom"

    @json_http("GET", "/teapot")
    def teapot(self, request):
        raise HttpError("short and stout")

    @json_http("GET", "/other")
    def other(self, request):
        raise ValueError("plain")

    @json_http("GET", "/dict")
    def a_dict(self, request):
        return {"ok": True}


def test_subclass_overrides_exception_and_result_handling(start, web_session):
    start(Custom)
    teapot = web_session.get("/teapot")
    assert teapot.status_code == 418
    assert teapot.json() == {"error": "HttpError", "message": "short and stout"}
    assert web_session.get("/other").text == "Error: ValueError: plain\n"
    assert web_session.get("/dict").json() == {"ok": True}


class HeaderMiddlewareServer(WebServer):
    def get_wsgi_app(self):
        app = super().get_wsgi_app()

        def with_header(environ, start_response):
            def start(status, headers, exc_info=None):
                return start_response(status, [*headers, ("X-Middleware", "yes")], exc_info)

            return app(environ, start)

        return with_header


class WithMiddleware(HttpRequestHandler):
    server = HeaderMiddlewareServer()


class Wrapped:
    name = "wrapped"

    @WithMiddleware.decorator("GET", "/hello")
    def hello(self, request):
        return "hello"


def test_wsgi_middleware_through_get_wsgi_app(start, web_session):
    start(Wrapped)
    response = web_session.get("/hello")
    assert response.text == "hello" and response.headers["X-Middleware"] == "yes"


# -- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,parsed",
    [("127.0.0.1:8000", ("127.0.0.1", 8000)), ("8001", ("", 8001)), ("host:1", ("host", 1))],
)
def test_parse_address(value, parsed):
    assert parse_address(value) == BindAddress(*parsed)


@pytest.mark.parametrize("value", ["", "host:", ":80", "a:b:80", "host:port"])
def test_bad_address_is_a_configuration_error(value):
    with pytest.raises(ConfigurationError, match=r"Misconfigured bind address `.*`\. Should be"):
        parse_address(value)


def test_bad_address_fails_the_start(container_factory):
    container = container_factory(Service, {"WEB_SERVER_ADDRESS": "nope:nope"})
    with pytest.raises(ConfigurationError, match="Misconfigured bind address"):
        container.start()


def serving_raw_app(status: str, headers: list) -> type:
    """A service whose WebServer answers every request with a raw WSGI app."""

    class RawServer(WebServer):
        def get_wsgi_app(self):
            def app(environ, start_response):
                start_response(status, headers)
                return [b"split"]

            return app

    class RawHandler(HttpRequestHandler):
        server = RawServer()

    class Splitter:
        name = "splitter"

        @RawHandler.decorator("GET", "/split")
        def split(self, request):
            return "never"

    return Splitter


def test_a_header_with_a_newline_cannot_split_the_response(start, web_session):
    start(serving_raw_app("200 OK", [("X-A", "a\r\nSet-Cookie: evil=1")]))
    response = web_session.get("/split")
    assert response.status_code == 500 and "Set-Cookie" not in response.headers
    assert "Traceback" not in response.text


def test_a_status_with_a_newline_cannot_split_the_response(start, web_session):
    start(serving_raw_app("200 OK\r\nX-Injected: yes", []))
    response = web_session.get("/split")
    assert response.status_code == 500 and "X-Injected" not in response.headers


class Legacy(HttpRequestHandler):
    """A nameko 2.14-style override: it calls the eventlet Event API itself."""

    def handle_result(self, event, worker_ctx, result, exc_info):
        event.send(result, exc_info)
        return result, exc_info


class Broken(HttpRequestHandler):
    def handle_result(self, event, worker_ctx, result, exc_info):
        raise RuntimeError("handle_result failed")


class Overrides:
    name = "overrides"

    @Legacy.decorator("GET", "/legacy/<kind>")
    def legacy(self, request, kind):
        if kind == "fail":
            raise ValueError("legacy")
        return "ok"

    @Broken.decorator("GET", "/broken")
    def broken(self, request):
        return "never seen"


def test_handle_result_overrides_in_nameko_214_style(start, web_session):
    start(Overrides)
    assert web_session.get("/legacy/ok").text == "ok"
    failed = web_session.get("/legacy/fail")
    assert (failed.status_code, failed.text) == (500, "Error: ValueError: legacy\n")
    broken = web_session.get("/broken", timeout=10)  # answered, never left hanging
    assert broken.status_code == 500 and "handle_result failed" in broken.text
