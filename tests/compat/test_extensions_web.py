"""Community extensions, unchanged, on shimeji: nameko-tracer, nameko-prometheus
and nameko-redis (seed 001 runs it too, tests/compat/test_seeds_web.py).

They are installed with ``pip install --no-deps`` (scripts/bootstrap), so
their ``nameko`` requirement cannot bring in the real nameko: the `nameko`
they import is ours. Each is used as its README shows.
"""

from __future__ import annotations

import json
import logging
import platform
import signal
import socket
import uuid
from datetime import datetime

import nameko_prometheus
import nameko_redis
import nameko_tracer
import pytest
import redis
import requests
import yaml
from nameko_prometheus.utils import reset_prometheus_registry
from nameko_tracer import constants
from nameko_tracer.formatters import JSONFormatter
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from nameko.exceptions import RemoteError, UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import assert_stops_raising, find_free_port
from nameko.utils import REDACTED
from nameko.web.handlers import http
from tests.compat.ext_support import assert_nameko_is_shimeji
from tests.integration.conftest import NamekoProcess
from tests.waiting import wait_until

TIMEOUT = 10
TEXT = "text/plain; charset=utf-8"


def test_extensions_import_shimeji_and_the_real_nameko_is_absent():
    assert_nameko_is_shimeji()  # the package and the `nameko` metadata
    for extension in (
        nameko_redis.Redis,
        nameko_tracer.Tracer,
        nameko_prometheus.PrometheusMetrics,
    ):
        assert issubclass(extension, DependencyProvider)


@pytest.fixture(params=["memory", pytest.param("rabbit", marks=pytest.mark.rabbit)])
def broker_config(request):
    """The in-memory broker, and RabbitMQ (a vhost of this test's)."""
    return request.getfixturevalue(f"{request.param}_config")


# -- nameko-tracer -------------------------------------------------------------


class TraceRecords(logging.Handler):
    """The records of the ``nameko_tracer`` logger, as its users' handlers get them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def traces(self, stage: str) -> list[dict]:
        return [
            r.nameko_trace for r in self.records if r.nameko_trace[constants.STAGE_KEY] == stage
        ]


@pytest.fixture
def trace_records():
    logger = logging.getLogger(constants.LOGGER_NAME)
    handler = TraceRecords()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


class TracedService:
    name = "traced"

    tracer = nameko_tracer.Tracer()

    @http("POST", "/hello/<name>")
    def hello_http(self, request, name):
        return 201, {"X-Greeting": "yes"}, f"Hello, {name}! {request.get_data(as_text=True)}"

    @http("GET", "/fail")
    def fail_http(self, request):
        raise ValueError("boom")

    @rpc(sensitive_arguments=("password",), expected_exceptions=KeyError)
    def hello(self, name, password=None):
        if name == "nobody":
            raise KeyError(name)
        return f"Hello, {name}!"


def assert_common_fields(trace, service, entrypoint_type, entrypoint_name, stage):
    """The fields every trace has (nameko_tracer.adapters.DefaultAdapter.process)."""
    assert isinstance(trace[constants.TIMESTAMP_KEY], datetime)
    assert trace[constants.HOSTNAME_KEY] == socket.gethostname()
    assert trace[constants.SERVICE_NAME_KEY] == service
    assert trace[constants.ENTRYPOINT_TYPE_KEY] == entrypoint_type
    assert trace[constants.ENTRYPOINT_NAME_KEY] == entrypoint_name
    assert trace[constants.STAGE_KEY] == stage
    call_id = trace[constants.CALL_ID_KEY]
    assert call_id.startswith(f"{service}.{entrypoint_name}.")
    stack = trace[constants.CALL_ID_STACK_KEY]
    assert stack[-1] == call_id
    # the first caller's call id; none for a call from outside (HTTP), as in nameko
    assert trace[constants.ORIGIN_CALL_ID_KEY] == (stack[0] if len(stack) > 1 else None)


def by_call(traces: list[dict]) -> dict:
    """{(entrypoint name, its `name` argument): trace}."""
    return {
        (t[constants.ENTRYPOINT_NAME_KEY], str(t[constants.REQUEST_KEY].get("name"))): t
        for t in traces
    }


def stages(requests_: dict, results: dict, call: tuple) -> list[tuple[str, dict]]:
    return [("request", requests_[call]), ("response", results[call])]


@pytest.mark.parametrize("tracing", [False, True], ids=["otel-off", "otel-on"])
def test_tracer_traces_http_and_rpc_entrypoints(
    container_factory, broker_config, web_config, web_session, trace_records, tracing
):
    """Unchanged with our own OpenTelemetry tracing on beside it (D27): the
    trace headers never show in its context data."""
    config = {**broker_config, **web_config, "TRACING": tracing}
    container = container_factory(TracedService, config)
    container.start()

    response = web_session.post(
        "/hello/ann", data='{"x": 1}', headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.text) == (201, 'Hello, ann! {"x": 1}')
    assert response.headers["X-Greeting"] == "yes"
    assert web_session.get("/fail").status_code == 500
    with ClusterRpcProxy(config, context_data={"language": "en"}, timeout=TIMEOUT) as proxy:
        assert proxy.traced.hello("bob", password="secret") == "Hello, bob!"
        with pytest.raises(RemoteError):
            proxy.traced.hello("nobody")

    # a worker's result is traced after its reply is sent: wait for all four
    wait_until(lambda: len(trace_records.traces("response")) == 4, TIMEOUT, what="4 results")
    requests_, results = trace_records.traces("request"), trace_records.traces("response")
    assert len(requests_) == 4
    requests_, results = by_call(requests_), by_call(results)

    # @http: HttpRequestHandlerAdapter, the default adapter for HttpRequestHandler
    port = web_config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1]
    for stage, trace in stages(requests_, results, ("hello_http", "ann")):
        assert_common_fields(trace, "traced", "HttpRequestHandler", "hello_http", stage)
        assert trace[constants.CONTEXT_DATA_KEY] == {}  # nameko takes no context from HTTP
        assert trace[constants.REQUEST_REDACTED_KEY] is False
        call_args = trace[constants.REQUEST_KEY]
        assert call_args["name"] == "ann"
        request = call_args["request"]
        assert request["url"] == f"http://127.0.0.1:{port}/hello/ann"
        assert request["method"] == "POST"
        assert request["data"] == '{"x": 1}'
        assert request["headers"]["content_type"] == "application/json"
        assert request["headers"]["content_length"] == "8"
        assert request["headers"]["host"] == f"127.0.0.1:{port}"
        assert request["env"]["remote_addr"] == "127.0.0.1"
        assert request["env"]["server_port"] == port
    result = results["hello_http", "ann"]
    assert result[constants.RESPONSE_STATUS_KEY] == "success"
    assert result[constants.RESPONSE_KEY] == {
        "content_type": TEXT,
        "data": b'Hello, ann! {"x": 1}',
        "status_code": 201,
        "content_length": 20,
    }
    assert result[constants.RESPONSE_TIME_KEY] >= 0

    failed = results["fail_http", "None"]
    assert_common_fields(failed, "traced", "HttpRequestHandler", "fail_http", "response")
    assert failed[constants.RESPONSE_STATUS_KEY] == "error"
    assert failed[constants.EXCEPTION_TYPE_KEY] == "ValueError"
    assert failed[constants.EXCEPTION_PATH_KEY] == "builtins.ValueError"
    assert failed[constants.EXCEPTION_ARGS_KEY] == ["boom"]
    assert failed[constants.EXCEPTION_VALUE_KEY] == "boom"
    assert failed[constants.EXCEPTION_TRACEBACK_KEY].endswith("ValueError: boom\n")
    assert failed[constants.EXCEPTION_EXPECTED_KEY] is False
    assert constants.RESPONSE_KEY not in failed

    # @rpc: DefaultAdapter, with the caller's context data and redaction
    for stage, trace in stages(requests_, results, ("hello", "bob")):
        assert_common_fields(trace, "traced", "Rpc", "hello", stage)
        assert trace[constants.CONTEXT_DATA_KEY] == {"language": "en"}
        assert trace[constants.CALL_ID_STACK_KEY][0].startswith("standalone_rpc_proxy.call.")
        assert trace[constants.REQUEST_KEY] == {"name": "bob", "password": REDACTED}
        assert trace[constants.REQUEST_REDACTED_KEY] is True
    result = results["hello", "bob"]
    assert result[constants.RESPONSE_STATUS_KEY] == "success"
    assert result[constants.RESPONSE_KEY] == "Hello, bob!"
    expected = results["hello", "nobody"]
    assert expected[constants.EXCEPTION_TYPE_KEY] == "KeyError"
    assert expected[constants.EXCEPTION_EXPECTED_KEY] is True

    # levels and messages: INFO, WARNING for an error; "[<call id>] entrypoint ... trace"
    for record in trace_records.records:
        trace = record.nameko_trace
        error = trace.get(constants.RESPONSE_STATUS_KEY) == "error"
        assert record.levelno == (logging.WARNING if error else logging.INFO)
        word = "call" if trace["stage"] == "request" else "result"
        assert record.getMessage() == f"[{trace['call_id']}] entrypoint {word} trace"
        assert json.loads(JSONFormatter().format(record))["call_id"] == trace["call_id"]


TRACED_PY = """\
# traced.py (nameko-tracer's README, with an @http entrypoint added)

from nameko.rpc import rpc
from nameko.web.handlers import http
from nameko_tracer import Tracer


class Service:

    name = 'traced'

    tracer = Tracer()

    @rpc
    def hello(self, name):
        return 'Hello, {}!'.format(name)

    @http('GET', '/hello/<name>')
    def hello_http(self, request, name):
        return 'Hello, {}!'.format(name)
"""

README_LOGGING = {  # the README's JSONFormatter config.yaml
    "version": 1,
    "formatters": {"tracer": {"()": "nameko_tracer.formatters.JSONFormatter"}},
    "handlers": {"tracer": {"class": "logging.StreamHandler", "formatter": "tracer"}},
    "loggers": {"nameko_tracer": {"level": "INFO", "handlers": ["tracer"]}},
}


@pytest.mark.rabbit
def test_tracer_readme_nameko_run_logs_json_traces(tmp_path, rabbit_uri):
    """`nameko run traced --config config.yaml`: one JSON line per trace."""
    (tmp_path / "traced.py").write_text(TRACED_PY)
    port = find_free_port()
    config = {"AMQP_URI": rabbit_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**config, "LOGGING": README_LOGGING}))
    proc = NamekoProcess(tmp_path, ["traced", "--config", "config.yaml"], tmp_path / "run.log")
    try:

        def answered() -> bool:
            assert proc.proc.poll() is None, proc.output()
            try:
                return requests.get(f"http://127.0.0.1:{port}/hello/ナメコ", timeout=5).ok
            except requests.ConnectionError:
                return False

        wait_until(answered, 30, interval=0.1, what="traced answers HTTP")
        with ClusterRpcProxy(config, timeout=TIMEOUT) as n_rpc:  # `n.rpc` of nameko shell
            # HTTP may answer before the RPC queue is declared: retry UnknownService only
            result = assert_stops_raising(
                lambda: n_rpc.traced.hello(name="ナメコ"), UnknownService, timeout=TIMEOUT
            )
            assert result == "Hello, ナメコ!"

        def traces() -> list[dict]:
            lines = proc.output().splitlines()
            return [json.loads(line) for line in lines if line.startswith("{")]

        wait_until(lambda: len(traces()) == 4, TIMEOUT, what="4 JSON trace lines")
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.output()
    finally:
        proc.close()
    stages = [(t["entrypoint_type"], t["stage"]) for t in traces()]
    assert sorted(stages) == sorted(
        [("HttpRequestHandler", s) for s in ("request", "response")]
        + [("Rpc", s) for s in ("request", "response")]
    )
    rpc_result = next(t for t in traces() if t["entrypoint_type"] == "Rpc" and "response" in t)
    assert rpc_result["response"] == "Hello, ナメコ!"
    assert rpc_result["call_args"] == {"name": "ナメコ"}
    http_result = next(t for t in traces() if t["entrypoint_type"] != "Rpc" and "response" in t)
    assert http_result["response"]["status_code"] == 200
    assert http_result["call_args"]["request"]["url"] == f"http://127.0.0.1:{port}/hello/ナメコ"


# -- nameko-prometheus ---------------------------------------------------------

work_units = Counter(  # the README's application metric
    "my_service_work_units_total", "Total number of work units", ["work_type"]
)


class MyService:
    name = "metered"  # the README's MyService has none, which nameko requires

    metrics = nameko_prometheus.PrometheusMetrics()

    @rpc
    def say_hello(self):
        work_units.labels(work_type="hard").inc()
        return "Hello!"

    @http("GET", "/hello/<name>")
    def hello(self, request, name):
        return f"Hello, {name}!"

    @http("GET", "/teapot")
    def teapot(self, request):
        return 418, "I'm a teapot"

    @http("GET", "/fail")
    def fail(self, request):
        raise ValueError("boom")

    @http("GET", "/metrics")
    def serve_metrics(self, request):
        return self.metrics.expose_metrics(request)


@pytest.fixture
def prometheus_registry():
    """PrometheusMetrics registers its metrics globally, per service name."""
    reset_prometheus_registry(MyService.name)
    yield
    reset_prometheus_registry(MyService.name)


def scrape(web_session) -> dict:
    response = web_session.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def http_labels(endpoint, status):
    return (("endpoint", endpoint), ("http_method", "GET"), ("status_code", str(status)))


def test_prometheus_metrics_count_http_and_rpc_entrypoints(
    container_factory, broker_config, web_config, web_session, prometheus_registry, monkeypatch
):
    monkeypatch.delenv("APP_VERSION", raising=False)  # the service_version label's source
    config = {**broker_config, **web_config, "max_workers": 4}
    container = container_factory(MyService, config)
    container.start()
    before = scrape(web_session).get(("my_service_work_units_total", (("work_type", "hard"),)), 0)

    for name in ("a", "b", "c"):
        assert web_session.get(f"/hello/{name}").text == f"Hello, {name}!"
    assert web_session.get("/teapot").status_code == 418
    assert web_session.get("/fail").status_code == 500
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        assert [proxy.metered.say_hello() for _ in range(2)] == ["Hello!", "Hello!"]

    # workers' results are observed after the reply is sent: scrape until counted
    expected = {
        ("metered_http_requests_total", http_labels("/hello/<name>", 200)): 3,
        ("metered_http_request_latency_seconds_count", http_labels("/hello/<name>", 200)): 3,
        ("metered_http_requests_total", http_labels("/teapot", 418)): 1,
        ("metered_http_requests_total", http_labels("/fail", 500)): 1,
        ("metered_rpc_requests_total", (("method_name", "say_hello"),)): 2,
        ("metered_rpc_request_latency_seconds_count", (("method_name", "say_hello"),)): 2,
        ("my_service_work_units_total", (("work_type", "hard"),)): before + 2,
        ("metered_service_max_workers", ()): 4,
    }
    seen: dict = {}

    def counted() -> bool:
        seen.update(scrape(web_session))
        return all(seen.get(key) == value for key, value in expected.items())

    try:
        wait_until(counted, TIMEOUT, interval=0.1, what="metrics counted")
    except AssertionError:
        pass  # the assertion below says which differ
    assert {key: seen.get(key) for key in expected} == expected
    # the scrapes are HTTP requests too, and latency histograms have buckets
    assert seen[("metered_http_requests_total", http_labels("/metrics", 200))] >= 1
    bucket = ("le", "+Inf")
    hello_inf = tuple(sorted((*http_labels("/hello/<name>", 200), bucket)))
    assert seen[("metered_http_request_latency_seconds_bucket", hello_inf)] == 3
    info = (("python_version", platform.python_version()), ("service_version", "unknown"))
    assert seen[("metered_service_info", info)] == 1  # APP_VERSION unset
    assert seen[("metered_service_uptime_seconds", ())] > 0
    assert ("metered_service_running_workers", ()) in seen


# -- nameko-redis --------------------------------------------------------------

REDIS_URI = "redis://127.0.0.1:6379/11"  # as in test_seeds_web.py: keys are ours, uuid4


class Store:
    name = "store"

    redis = nameko_redis.Redis("development")  # its README's usage

    @http("PUT", "/<key>")
    def put(self, request, key):
        self.redis.set(key, request.get_data(as_text=True))
        return 204, ""

    @http("GET", "/<key>")
    def get(self, request, key):
        value = self.redis.get(key)
        return (404, "") if value is None else value


def test_redis_dependency_behind_http(container_factory, web_config, web_session):
    key = f"shimeji-test-{uuid.uuid4().hex}"
    client = redis.StrictRedis.from_url(REDIS_URI, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"nameko-redis test needs Redis on 127.0.0.1:6379: {exc}")
    container = container_factory(Store, {**web_config, "REDIS_URIS": {"development": REDIS_URI}})
    container.start()
    try:
        assert web_session.get(f"/{key}").status_code == 404
        assert web_session.put(f"/{key}", data="välue".encode()).status_code == 204
        response = web_session.get(f"/{key}")
        assert (response.status_code, response.text) == (200, "välue")  # decode_responses=True
        assert client.get(key) == "välue"
    finally:
        client.delete(key)
    container.stop()
    # stop() drops the client, as nameko-redis does
    assert next(iter(container.dependencies)).client is None
