"""The WebSocket RPC hub (SPEC 8): ``@rpc`` over ``/ws``, and the hub for pushes.

`WebSocketServer` is one shared extension per container. It registers a
``/ws`` rule (``websocket=True``) with the container's `WebServer`, so a
plain GET gets werkzeug's 400 and an upgrade request comes to
`handle_request` on a site request thread, where its `WebSocketSession`
lives until the socket closes. Each text message is one request, answered
in order on that thread; the method itself runs on the container's worker
pool like any other entrypoint's.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, overload

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from nameko._concurrency import Lock
from nameko._runtime.extensions import (
    ExpectedExceptions,
    Method,
    SensitiveArguments,
    is_bare,
)
from nameko._web.handlers import ResultEvent, deliver, settled_by, wait_for_worker
from nameko._web.hosting import TAKEOVER_ENVIRON_KEY
from nameko._web.server import WebServer
from nameko._web.ws_session import WebSocketSession, accept
from nameko.exceptions import (
    ConnectionNotFound,
    MalformedRequest,
    MethodNotFound,
    SubscriptionRefused,
    UnserializableValueError,
    serialize,
)
from nameko.extensions import DependencyProvider, Entrypoint, ProviderCollector, SharedExtension

__all__ = [
    "Connection",
    "SocketInfo",
    "WebSocketHub",
    "WebSocketHubProvider",
    "WebSocketRpc",
    "WebSocketServer",
    "rpc",
]

_log = logging.getLogger("nameko.web.websocket")


class SocketInfo(NamedTuple):
    socket: WebSocketSession
    data: dict[str, Any]  # the socket's context data


class Connection:
    def __init__(self, socket_id: str, context_data: dict[str, Any]) -> None:
        self.socket_id = socket_id
        self.context_data = context_data
        self.subscriptions: set[str] = set()


class WebSocketServer(SharedExtension, ProviderCollector):
    wsgi_server = WebServer()

    def __init__(self) -> None:
        super().__init__()
        self.sockets: dict[str, SocketInfo] = {}
        self.connections: dict[str, Connection] = {}
        self.subscriptions: dict[str, set[str]] = {}
        self.lock = Lock()  # guards the three dicts and the subscription sets

    def setup(self) -> None:
        self.wsgi_server.register_provider(self)

    def stop(self) -> None:
        self.wait_for_providers()  # the @rpc entrypoints have stopped
        self.kill()

    def kill(self) -> None:
        self.wsgi_server.unregister_provider(self)
        for info in list(self.sockets.values()):
            info.socket.go_away()  # its own thread sends 1001: stop never waits on a socket

    def get_url_rule(self) -> Rule:
        return Rule("/ws", methods=["GET"], websocket=True, endpoint=self)

    # -- one connection ---------------------------------------------------------

    def handle_request(self, request: Request) -> Response:
        takeover = request.environ.get(TAKEOVER_ENVIRON_KEY)
        if takeover is None or not accept(takeover, request.headers):
            return Response("Bad Request: not a WebSocket handshake\n", status=400)
        session = WebSocketSession(takeover, self.wsgi_server.limits)
        takeover.on_drain = session.go_away  # called on the site's I/O thread: never blocks
        context_data = self.wsgi_server.context_data_from_headers(request)
        socket_id = self.add_websocket(session, context_data)
        try:
            self.send_event(socket_id, "connected", {"socket_id": socket_id})
            session.run(partial(self.handle_message, socket_id))
        finally:
            self.remove_socket(socket_id)
            takeover.close()
        return Response(status=101)  # not sent: the connection was upgraded

    def add_websocket(self, session: WebSocketSession, context_data: dict[str, Any]) -> str:
        socket_id = str(uuid.uuid4())
        with self.lock:
            self.sockets[socket_id] = SocketInfo(session, dict(context_data))
            self.connections[socket_id] = Connection(socket_id, dict(context_data))
        return socket_id

    def remove_socket(self, socket_id: str) -> None:
        with self.lock:
            self.sockets.pop(socket_id, None)
            connection = self.connections.pop(socket_id, None)
            for channel in connection.subscriptions if connection else ():
                subscribers = self.subscriptions.get(channel, set())
                subscribers.discard(socket_id)
                if not subscribers:
                    self.subscriptions.pop(channel, None)

    # -- messages ---------------------------------------------------------------

    def handle_message(self, socket_id: str, text: str) -> None:
        correlation_id = None
        try:
            method, data, correlation_id = _parse_request(text)
            result = self.get_provider_for_method(method).handle_message(
                socket_id,
                data,
                dict(self.sockets[socket_id].data),  # a worker may change its copy
            )
            frame = {"type": "result", "success": True, "data": result}
        except Exception as exc:
            frame = {"type": "result", "success": False, "error": serialize(exc)}
        frame["correlation_id"] = correlation_id
        self._send(socket_id, frame)

    def get_provider_for_method(self, method_name: str) -> WebSocketRpc:
        for provider in self._providers:
            if isinstance(provider, WebSocketRpc) and provider.method_name == method_name:
                return provider
        raise MethodNotFound()

    def send_event(self, socket_id: str, event: str, data: Any) -> bool:
        return self._send(socket_id, {"type": "event", "event": event, "data": data})

    def _send(self, socket_id: str, frame: dict[str, Any]) -> bool:
        info = self.sockets.get(socket_id)
        if info is None:
            return False
        try:
            text = json.dumps(frame)
        except (TypeError, ValueError):
            value = frame.pop("data", None)
            frame.update(success=False, error=serialize(UnserializableValueError(value)))
            text = json.dumps(frame)
        return info.socket.send_text(text)


def _parse_request(text: str) -> tuple[str, dict[str, Any], Any]:
    try:
        message = json.loads(text)
        method = message["method"]
        data = message.get("data") or {}
        if not isinstance(method, str) or not isinstance(data, dict):
            raise TypeError(method)
    except Exception:
        raise MalformedRequest("Invalid JSON data")
    return method, data, message.get("correlation_id")


class WebSocketHub:
    """What a service sees of the server: subscriptions and pushes."""

    def __init__(self, server: WebSocketServer) -> None:
        self._server = server

    @property
    def connections(self) -> dict[str, Connection]:
        return self._server.connections

    @property
    def subscriptions(self) -> dict[str, set[str]]:
        return self._server.subscriptions

    def get_subscriptions(self, socket_id: str) -> list[str]:
        connection = self._server.connections.get(socket_id)
        return sorted(connection.subscriptions) if connection else []

    def subscribe(self, socket_id: str, channel: str) -> None:
        """Subscribe a socket to a channel; `SubscriptionRefused` past the caps."""
        limits = self._server.wsgi_server.limits
        if isinstance(channel, str) and len(channel) > limits.websocket_max_channel_length:
            raise SubscriptionRefused(
                f"channel name of {len(channel)} characters: longer than "
                f"WEB_WEBSOCKET_MAX_CHANNEL_LENGTH ({limits.websocket_max_channel_length})"
            )
        with self._server.lock:
            connection = self._server.connections.get(socket_id)
            if connection is None:
                raise ConnectionNotFound(socket_id)
            held = connection.subscriptions
            if channel not in held and len(held) >= limits.websocket_max_subscriptions:
                raise SubscriptionRefused(
                    f"socket already holds WEB_WEBSOCKET_MAX_SUBSCRIPTIONS "
                    f"({limits.websocket_max_subscriptions}) subscriptions"
                )
            held.add(channel)
            self._server.subscriptions.setdefault(channel, set()).add(socket_id)

    def unsubscribe(self, socket_id: str, channel: str) -> None:
        with self._server.lock:
            connection = self._server.connections.get(socket_id)
            if connection is not None:
                connection.subscriptions.discard(channel)
            subscribers = self._server.subscriptions.get(channel)
            if subscribers is not None:
                subscribers.discard(socket_id)
                if not subscribers:
                    del self._server.subscriptions[channel]

    def broadcast(self, channel: str, event: str, data: Any) -> None:
        with self._server.lock:
            subscribers = list(self._server.subscriptions.get(channel, ()))
        for socket_id in subscribers:
            self._server.send_event(socket_id, event, data)

    def unicast(self, socket_id: str, event: str, data: Any) -> bool:
        return self._server.send_event(socket_id, event, data)


class WebSocketHubProvider(DependencyProvider):
    server = WebSocketServer()

    def setup(self) -> None:
        self.hub = WebSocketHub(self.server)

    def get_dependency(self, worker_ctx: Any) -> WebSocketHub:
        return self.hub


class WebSocketRpc(Entrypoint):
    server = WebSocketServer()

    def setup(self) -> None:
        self.server.register_provider(self)

    def stop(self) -> None:
        self.server.unregister_provider(self)

    def handle_message(self, socket_id: str, data: dict[str, Any], context_data: Any) -> Any:
        self.check_signature((socket_id,), data)
        outcome = ResultEvent()
        self.container.spawn_worker(
            self,
            (socket_id,),
            data,
            context_data=context_data,
            handle_result=settled_by(self.handle_result, outcome),
            max_pending=self.server.wsgi_server.queue_limit,
        )
        return wait_for_worker(self.container, outcome)

    def handle_result(
        self, outcome: ResultEvent, worker_ctx: Any, result: Any, exc_info: Any
    ) -> tuple[Any, Any]:
        return deliver(outcome, result, exc_info)


@overload
def rpc(method: Method, /) -> Method: ...


@overload
def rpc(
    expected_exceptions: ExpectedExceptions = (),
    sensitive_arguments: SensitiveArguments = (),
    **kwargs: Any,
) -> Callable[[Method], Method]: ...


def rpc(
    expected_exceptions: ExpectedExceptions | Callable[..., Any] = (),
    sensitive_arguments: SensitiveArguments = (),
    **kwargs: Any,
) -> Any:
    """Make a service method callable from a WebSocket client of the hub
    (``{"method": "<name>", "data": {...}}`` on ``/ws``): ``@rpc``, or
    ``@rpc(...)`` with options.

    The method is called with the socket's id and the message's ``data``
    as keyword arguments; what it returns is sent back as the reply.

    Args:
        expected_exceptions: exception classes the method raises on purpose:
            logged at WARNING instead of ERROR.
        sensitive_arguments: argument names masked wherever the call is
            logged.
        **kwargs: the deprecated ``sensitive_variables``, and options of
            subclasses.
    """
    if is_bare(expected_exceptions):
        return WebSocketRpc.decorator(expected_exceptions)
    return WebSocketRpc.decorator(expected_exceptions, sensitive_arguments, **kwargs)
