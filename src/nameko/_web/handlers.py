"""`HttpRequestHandler`: the ``@http`` entrypoint (SPEC 6).

The request thread that runs `handle_request` waits for the worker, which
runs on the container's pool like any other entrypoint's, so ``max_workers``
bounds handlers. Admission control: when ``WEB_QUEUE_LIMIT`` workers already
wait for a thread the request gets 503 with ``Retry-After`` at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from nameko._concurrency import OneShot
from nameko._runtime.extensions import ExpectedExceptions, Method, SensitiveArguments
from nameko._web.hosting import INLINE_ENVIRON_KEY
from nameko._web.server import WebServer
from nameko.exceptions import BadRequest, ContainerBeingKilled, Overloaded, serialize
from nameko.extensions import Entrypoint

__all__ = ["HttpRequestHandler", "http"]


class HttpRequestHandler(Entrypoint):
    server = WebServer()

    def __init__(
        self,
        method: str,
        url: str,
        expected_exceptions: Any = (),
        sensitive_arguments: Any = (),
        **kwargs: Any,
    ) -> None:
        self.method = method
        self.url = url
        super().__init__(
            expected_exceptions=expected_exceptions,
            sensitive_arguments=sensitive_arguments,
            **kwargs,
        )

    def get_url_rule(self) -> Rule:
        return Rule(self.url, methods=self.method.split(","), endpoint=self)

    def setup(self) -> None:
        self.server.register_provider(self)

    def stop(self) -> None:
        # requests already admitted still run: the container waits for them
        self.server.unregister_provider(self)

    def kill(self) -> None:
        self.server.unregister_provider(self)

    def get_entrypoint_parameters(self, request: Request) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # set by `WsgiApp`: nameko's attribute, which werkzeug's Request does not declare
        return (request,), dict(request.path_values)  # type: ignore[attr-defined]

    def handle_request(self, request: Request) -> Response:
        request.shallow = False
        try:
            context_data = self.server.context_data_from_headers(request)
            if self.server.tracing is not None:  # the request's span: the worker's parent
                context_data = {**context_data, **self.server.tracing.current_carrier()}
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            result = self._run_worker(request, args, kwargs, context_data)
            return self.response_from_result(result)
        except (Overloaded, ContainerBeingKilled) as exc:
            return _unavailable(exc)
        except Exception as exc:
            return self.response_from_exception(exc)

    def _run_worker(self, request: Request, args: Any, kwargs: Any, context_data: Any) -> Any:
        outcome = ResultEvent()
        handle_result = settled_by(self.handle_result, outcome)
        if request.environ.get(INLINE_ENVIRON_KEY) is self.container:
            # already on one of our container's pool threads (see hosting.Hosted._pick)
            self.container.run_worker(self, args, kwargs, context_data, handle_result)
            if not outcome.ready():  # the worker crashed the container before its result
                raise ContainerBeingKilled()
            return outcome.get()
        self.container.spawn_worker(
            self,
            args,
            kwargs,
            context_data=context_data,
            handle_result=handle_result,
            max_pending=self.server.queue_limit,
        )
        return wait_for_worker(self.container, outcome)

    def handle_result(
        self, outcome: ResultEvent, worker_ctx: Any, result: Any, exc_info: Any
    ) -> Any:
        return deliver(outcome, result, exc_info)

    def response_from_result(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status, headers = 200, None
        if isinstance(result, tuple):
            if len(result) == 3:
                status, headers, payload = result
            else:
                status, payload = result
        else:
            payload = result
        if not isinstance(payload, (str, bytes)):  # nameko refuses bytes; we send them
            raise TypeError(f"Payload must be a string. Got `{payload!r}`")
        return Response(payload, status=status, headers=headers, mimetype="text/plain")

    def response_from_exception(self, exc: Exception) -> Response:
        expected = self.expected_exceptions
        if isinstance(exc, BadRequest) or (expected and isinstance(exc, expected)):
            status = 400
        else:
            status = 500
        error = serialize(exc)
        payload = "Error: {exc_type}: {value}\n".format(**error)
        return Response(payload, status=status, mimetype="text/plain")


class ResultEvent(OneShot[Any]):
    """The ``event`` `handle_result` gets: ``event.send(result, exc_info)`` works
    as with nameko's eventlet Event, so 2.14-style overrides keep working."""

    def send(self, result: Any = None, exc: Any = None) -> bool:
        if exc is not None:
            return self.send_exception(exc[1] if isinstance(exc, tuple) else exc)
        return super().send(result)


def settled_by(handle_result: Any, outcome: ResultEvent) -> Any:
    """``handle_result`` bound to ``outcome``; if it raises, the waiter gets the error."""

    def settle(worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        try:
            return handle_result(outcome, worker_ctx, result, exc_info)
        except Exception as exc:  # the client gets a 500, never a request left hanging
            outcome.send_exception(exc)
            raise

    return settle


def wait_for_worker(container: Any, outcome: OneShot[Any]) -> Any:
    """The worker's result, or `ContainerBeingKilled` if the container is killed
    first: a kill drops queued workers, which then never answer."""
    while not outcome.wait(1.0):
        if getattr(container, "_being_killed", False):
            raise ContainerBeingKilled()
    return outcome.get()


def deliver(outcome: ResultEvent, result: Any, exc_info: Any) -> tuple[Any, Any]:
    """Hand a worker's outcome to the thread waiting for it (a `handle_result`)."""
    outcome.send(result, exc_info)
    return result, exc_info


def _unavailable(exc: Exception) -> Response:
    why = "the service is stopping" if isinstance(exc, ContainerBeingKilled) else "overloaded"
    return Response(
        f"Service Unavailable: {why}\n",
        status=503,
        headers={"Retry-After": "1"},
        mimetype="text/plain",
    )


def http(
    method: str,
    url: str,
    expected_exceptions: ExpectedExceptions = (),
    sensitive_arguments: SensitiveArguments = (),
    **kwargs: Any,
) -> Callable[[Method], Method]:
    """Serve HTTP requests for ``method`` and ``url`` with the decorated
    method, called with the werkzeug ``Request`` and the URL's variables.

    Args:
        method: the HTTP method, or several separated by commas
            (``"GET,POST"``).
        url: a werkzeug URL rule: ``"/orders/<int:order_id>"`` calls the
            method with ``order_id`` as a keyword argument.
        expected_exceptions: exception classes the method raises on purpose:
            answered with a 400 (``Error: <type>: <message>`` as plain
            text) instead of a 500, and logged at WARNING, not ERROR.
        sensitive_arguments: argument names masked wherever the call is
            logged.
        **kwargs: the deprecated ``sensitive_variables``, and options of
            subclasses.

    The method returns the body (``str``, ``bytes`` or a werkzeug
    ``Response``), a ``(status, body)`` or ``(status, headers, body)``
    tuple.
    """
    return HttpRequestHandler.decorator(
        method,
        url,
        expected_exceptions,
        sensitive_arguments,
        **kwargs,
    )
