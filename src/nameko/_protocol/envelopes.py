"""RPC request and reply bodies (SPEC 3.2, 3.3, 3.5).

Request body: ``{"args": [...], "kwargs": {...}}``.
Reply body: ``{"result": <value or None>, "error": <None or serialize(exc)>}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nameko._protocol import codecs
from nameko._protocol.errors import EncodeError, MalformedReply
from nameko._protocol.headers import decode_context_headers, encode_context_headers
from nameko._protocol.names import parse_routing_key, rpc_routing_key, service_from_routing_key
from nameko.constants import HEADER_PREFIX
from nameko.exceptions import (
    MalformedRequest,
    RemoteError,
    UnserializableValueError,
    deserialize,
    serialize,
)

__all__ = [
    "EncodedReply",
    "RpcRequest",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_reply_body",
    "encode_request",
]

MISSING_ARGS_MESSAGE = "Message missing `args` or `kwargs`"


def encode_request(args: Iterable[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The request body: positional args as a list, keyword args as a dict."""
    return {"args": list(args), "kwargs": dict(kwargs)}


def decode_request(body: Any) -> tuple[Any, Any]:
    """``(args, kwargs)`` of a decoded request body.

    Anything but ``{"args": <list>, "kwargs": <object>}`` raises
    ``MalformedRequest`` saying what was wrong; a missing key gets nameko's
    own message. (nameko 2.14 replied a body that is not a mapping with the
    ``TypeError`` subscripting it raised, and let a non-list ``args``
    through to the method; both leak internals, so we name the problem.)
    ``args`` may be a tuple: nameko's pickled requests carry one.
    """
    if not isinstance(body, Mapping):
        raise MalformedRequest(
            f"RPC request body must be an object with `args` and `kwargs`, not {_kind(body)}"
        )
    try:
        args, kwargs = body["args"], body["kwargs"]
    except KeyError:
        raise MalformedRequest(MISSING_ARGS_MESSAGE) from None
    if not isinstance(args, (list, tuple)):
        raise MalformedRequest(f"`args` must be a list, not {_kind(args)}")
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise MalformedRequest(f"`kwargs` must be an object with string keys, not {_kind(kwargs)}")
    return args, kwargs


def _kind(value: Any) -> str:
    """How a JSON-minded reader would name ``value``'s type."""
    names: dict[type, str] = {
        list: "a list",
        tuple: "a list",
        str: "a string",
        bytes: "bytes",
        dict: "an object",
    }
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return names.get(type(value), f"a {type(value).__name__}")


def encode_reply(result: Any, exc: BaseException | None) -> dict[str, Any]:
    """The reply body for a result or an exception."""
    return {"result": result, "error": serialize(exc) if exc is not None else None}


def decode_reply(body: Any) -> Any:
    """The result carried by a reply body, or raise the remote error.

    A truthy ``error`` is deserialised and raised (an error that is not a
    dict becomes a `RemoteError` carrying it); missing keys count as None,
    as in nameko. A body that is not a mapping raises `MalformedReply`.
    """
    if not isinstance(body, Mapping):
        raise MalformedReply(f"RPC reply body is not a mapping: {body!r:.200}")
    error = body.get("error")
    if error:
        if isinstance(error, Mapping):
            raise deserialize(dict(error))
        raise RemoteError(value=error)
    return body.get("result")


@dataclass(frozen=True)
class EncodedReply:
    """A serialised reply; ``error`` is the exception actually sent (if any)."""

    body: bytes
    content_type: str
    content_encoding: str
    result: Any
    error: BaseException | None


def encode_reply_body(result: Any, exc: BaseException | None, serializer: str) -> EncodedReply:
    """Serialise a reply, replacing an unserialisable result by an error.

    nameko test-serialises the result first; encoding the whole envelope once
    is equivalent (the error part is always strings) and half the work. On
    failure the reply is ``{"result": None, "error": UnserializableValueError}``
    and that error, raised from the encoding failure so it carries a
    traceback, is returned for ``worker_result``.
    """
    try:
        payload, content_type, encoding = codecs.encode(encode_reply(result, exc), serializer)
        return EncodedReply(payload, content_type, encoding, result, exc)
    except EncodeError as encode_error:
        try:
            raise UnserializableValueError(result) from encode_error
        except UnserializableValueError as replacement:
            error: BaseException = replacement
    payload, content_type, encoding = codecs.encode(encode_reply(None, error), serializer)
    return EncodedReply(payload, content_type, encoding, None, error)


@dataclass(frozen=True)
class RpcRequest:
    """Routing and correlation data of one RPC request (body aside).

    ``headers`` are the wire headers (``nameko.``-prefixed); `context_data`
    gives them back without the prefix.
    """

    routing_key: str
    correlation_id: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def outgoing(
        cls,
        service_name: str,
        method_name: str,
        *,
        correlation_id: str,
        reply_to: str,
        context_data: Mapping[str, Any],
        prefix: str = HEADER_PREFIX,
    ) -> RpcRequest:
        """The request a caller publishes (headers encoded from context data)."""
        return cls(
            routing_key=rpc_routing_key(service_name, method_name),
            correlation_id=correlation_id,
            reply_to=reply_to,
            headers=encode_context_headers(context_data, prefix),
        )

    @property
    def service_name(self) -> str:
        return service_from_routing_key(self.routing_key)

    @property
    def method_name(self) -> str:
        return parse_routing_key(self.routing_key)

    @property
    def wants_reply(self) -> bool:
        """False for a request without ``reply_to`` (nobody to answer)."""
        return bool(self.reply_to)

    def context_data(self, prefix: str = HEADER_PREFIX) -> dict[str, Any]:
        """Context data carried by the headers, prefix stripped."""
        return decode_context_headers(self.headers, prefix)
