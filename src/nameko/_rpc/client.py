"""The objects user code calls: ``client.service.method(...)``.

Two families on the same caller (`caller.py`):

* nameko 3: `Client` (``ClusterRpc``, ``ServiceRpc``, ``ClusterRpcClient``)
  and its `RpcCall`;
* nameko 2.x: `ClusterProxy` -> `ServiceProxy` -> `MethodProxy` and their
  `RpcReply` (``RpcProxy``, ``ClusterRpcProxy``). Extensions written for 2.14
  build these themselves with a ``ReplyListener``; that works too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nameko._ids import new_id
from nameko._protocol.envelopes import decode_reply, encode_request
from nameko._protocol.headers import encode_context_headers
from nameko._protocol.names import rpc_routing_key
from nameko._rpc.caller import RpcCaller
from nameko._rpc.replies import PendingReply
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY

__all__ = ["Client", "ClusterProxy", "MethodProxy", "Proxy", "RpcCall", "RpcReply", "ServiceProxy"]

_NOT_YET = object()


def _is_dunder(name: str) -> bool:
    # keeps copy, pickle, mocks and friends from making RPC calls
    return name.startswith("__") and name.endswith("__")


# -- nameko 3 -----------------------------------------------------------------


class RpcCall:
    """One request in flight: `result` waits for its reply (once) and returns
    the value or raises the remote error; later calls give the same outcome."""

    # __weakref__: instrumentation keys its per-call state on the call object
    __slots__ = ("correlation_id", "send_request", "_get_response", "_response", "__weakref__")

    def __init__(
        self,
        correlation_id: str,
        send_request: Callable[..., Any],
        get_response: Callable[[], Any],
    ) -> None:
        self.correlation_id = correlation_id
        self.send_request = send_request
        self._get_response = get_response
        self._response: Any = _NOT_YET

    def get_response(self) -> Any:
        """The reply body (``{"result": ..., "error": ...}``), waited for once."""
        if self._response is _NOT_YET:
            self._response = self._get_response()
        return self._response

    def result(self) -> Any:
        return decode_reply(self.get_response())


class Client:
    """``client.service.method(...)``: each attribute (or item) narrows the
    target, first the service, then the method.

    ``publish(payload, routing_key=..., correlation_id=..., extra_headers=...,
    mandatory=True)`` sends a request (the keywords of nameko's
    ``Publisher.publish``; the reply address is the publisher's business);
    ``register_for_reply(correlation_id)`` starts waiting for its reply and
    returns the callable that gets the reply body. ``context_data`` goes out as
    headers, read at each call.
    """

    # class-level defaults: `__getattr__` must never recurse on a half-built
    # instance (copy, pickle)
    service_name: str | None = None
    method_name: str | None = None

    def __init__(
        self,
        publish: Callable[..., Any],
        register_for_reply: Callable[[str], Callable[[], Any]],
        context_data: Mapping[str, Any],
        service_name: str | None = None,
        method_name: str | None = None,
    ) -> None:
        self.publish = publish
        self.register_for_reply = register_for_reply
        self.context_data = context_data
        self.service_name = service_name
        self.method_name = method_name

    @property
    def identifier(self) -> str:
        return f"{self.service_name or '*'}.{self.method_name or '*'}"

    def __getattr__(self, name: str) -> Client:
        if _is_dunder(name) or (self.service_name is None and name.startswith("_")):
            # private names are never services (hasattr(), mocks, ...)
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Client:
        """Narrow to ``name``; for names that are not identifiers (``client['a-b']``)."""
        if self.method_name is not None:
            raise AttributeError(name)
        if self.service_name is None:
            return Client(self.publish, self.register_for_reply, self.context_data, name)
        return Client(
            self.publish, self.register_for_reply, self.context_data, self.service_name, name
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs).result()

    def call_async(self, *args: Any, **kwargs: Any) -> RpcCall:
        """Send the request now; the reply is waited for by `RpcCall.result`."""
        return self._call(*args, **kwargs)

    def _call(self, *args: Any, **kwargs: Any) -> RpcCall:
        # nameko 3's name for the one path of both kinds of call: tracing
        # instrumentation wraps it (and `RpcCall.get_response`) on the class
        if self.service_name is None or self.method_name is None:
            raise ValueError(f"Cannot call unspecified method {self.identifier}")
        routing_key = rpc_routing_key(self.service_name, self.method_name)
        correlation_id = new_id()
        get_response = self.register_for_reply(correlation_id)
        send = self._request_sender(routing_key, correlation_id)
        call = RpcCall(correlation_id, send, get_response)
        call.send_request(*args, **kwargs)
        return call

    def _request_sender(self, routing_key: str, correlation_id: str) -> Callable[..., None]:
        def send_request(*args: Any, **kwargs: Any) -> None:
            self.publish(
                encode_request(args, kwargs),
                routing_key=routing_key,
                correlation_id=correlation_id,
                extra_headers=encode_context_headers(self.context_data),
                mandatory=True,
            )

        return send_request

    def __repr__(self) -> str:
        return f"<Client: {self.identifier}>"


Proxy = Client  # nameko 3's other name


# -- nameko 2.x ---------------------------------------------------------------


def caller_of(link: Any, options: Mapping[str, Any]) -> RpcCaller:
    """The caller behind a 2.x proxy's ``reply_listener`` argument: ours are
    given an `RpcCaller`; extensions written for nameko 2.14 give the
    container's ``ReplyListener``, which makes one."""
    if isinstance(link, RpcCaller):
        return link
    caller_for = getattr(link, "caller_for", None)
    if caller_for is None:
        raise TypeError(f"expected a ReplyListener or an RpcCaller, got {link!r}")
    return caller_for(options)


class RpcReply:
    """A call in flight. `result` waits for the reply (once) and returns the
    value or raises the remote error; later calls give the same outcome."""

    def __init__(self, reply_event: PendingReply) -> None:
        self.reply_event = reply_event
        self._body: Any = _NOT_YET

    def result(self) -> Any:
        if self._body is _NOT_YET:
            self._body = self.reply_event.wait()
        return decode_reply(self._body)


class MethodProxy:
    """``proxy.service.method``: call it, or `call_async` it."""

    def __init__(
        self,
        worker_ctx: Any,
        service_name: str,
        method_name: str,
        reply_listener: Any,
        **options: Any,
    ) -> None:
        self.worker_ctx = worker_ctx
        self.service_name = service_name
        self.method_name = method_name
        self.options = options
        self.caller = caller_of(reply_listener, options)
        self.reply_listener = self.caller.reply_listener

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call_async(*args, **kwargs).result()

    def call_async(self, *args: Any, **kwargs: Any) -> RpcReply:
        pending = self.caller.call_async(
            self.service_name,
            self.method_name,
            args,
            kwargs,
            self.worker_ctx.context_data,  # computed per call, as nameko 2.14 does
        )
        return RpcReply(pending)

    @property
    def container(self) -> Any:
        return self.worker_ctx.container

    @property
    def amqp_uri(self) -> Any:
        return self.container.config.get(AMQP_URI_CONFIG_KEY)

    @property
    def ssl(self) -> Any:
        return self.container.config.get(AMQP_SSL_CONFIG_KEY)

    @property
    def login_method(self) -> Any:
        return self.container.config.get(LOGIN_METHOD_CONFIG_KEY)

    @property
    def serializer(self) -> str:
        return self.caller.serializer

    def __repr__(self) -> str:
        return f"<proxy method: {self.service_name}.{self.method_name}>"


class ServiceProxy:
    """``proxy.service``: attribute access gives a new `MethodProxy` each time."""

    def __init__(
        self, worker_ctx: Any, service_name: str, reply_listener: Any, **options: Any
    ) -> None:
        self.worker_ctx = worker_ctx
        self.service_name = service_name
        self.options = options
        self.caller = caller_of(reply_listener, options)
        self.reply_listener = self.caller.reply_listener

    def __getattr__(self, name: str) -> MethodProxy:
        if _is_dunder(name):
            raise AttributeError(name)
        return MethodProxy(self.worker_ctx, self.service_name, name, self.caller, **self.options)

    def __getitem__(self, name: str) -> MethodProxy:
        return MethodProxy(self.worker_ctx, self.service_name, name, self.caller, **self.options)

    def __repr__(self) -> str:
        return f"<proxy service: {self.service_name}>"


class ClusterProxy:
    """``cluster.service.method(...)`` for any service; ``cluster['a-b']`` for
    names that are not identifiers. Service proxies are cached."""

    def __init__(self, worker_ctx: Any, reply_listener: Any) -> None:
        self._worker_ctx = worker_ctx
        self._caller = caller_of(reply_listener, {})
        self._reply_listener = self._caller.reply_listener
        self._proxies: dict[str, ServiceProxy] = {}

    def __getattr__(self, name: str) -> ServiceProxy:
        if name.startswith("_"):  # private names are never services (hasattr(), mocks, ...)
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> ServiceProxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            proxy = self._proxies.setdefault(
                name, ServiceProxy(self._worker_ctx, name, self._caller)
            )
        return proxy
