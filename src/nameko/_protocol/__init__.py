"""nameko's message conventions as pure functions and frozen dataclasses.

No I/O, no threads, no broker imports: names of exchanges/queues/routing keys
(`names`), RPC envelopes (`envelopes`), context headers (`headers`), call ids
(`calls`), body serializers (`codecs`, `jsoncodec`) and the protocol's own
errors (`errors`). The error *format* lives in `nameko.exceptions`, which is
public API.
"""

from __future__ import annotations

from nameko._protocol.calls import extend_call_id_stack, make_call_id
from nameko._protocol.codecs import decode, encode, register, serializer_for
from nameko._protocol.envelopes import (
    EncodedReply,
    RpcRequest,
    decode_reply,
    decode_request,
    encode_reply,
    encode_reply_body,
    encode_request,
)
from nameko._protocol.errors import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    MalformedReply,
    ProtocolError,
    SerializationError,
    UnknownSerializer,
)
from nameko._protocol.headers import decode_context_headers, encode_context_headers
from nameko._protocol.names import (
    RPC_REPLY_QUEUE_TTL,
    event_exchange_name,
    event_handler_queue,
    event_queue_name,
    parse_routing_key,
    reply_queue_name,
    rpc_binding_key,
    rpc_exchange_name,
    rpc_queue_name,
    rpc_routing_key,
)

__all__ = [
    "RPC_REPLY_QUEUE_TTL",
    "ContentDisallowed",
    "DecodeError",
    "EncodeError",
    "EncodedReply",
    "MalformedReply",
    "ProtocolError",
    "RpcRequest",
    "SerializationError",
    "UnknownSerializer",
    "decode",
    "decode_context_headers",
    "decode_reply",
    "decode_request",
    "encode",
    "encode_context_headers",
    "encode_reply",
    "encode_reply_body",
    "encode_request",
    "event_exchange_name",
    "event_handler_queue",
    "event_queue_name",
    "extend_call_id_stack",
    "make_call_id",
    "parse_routing_key",
    "register",
    "reply_queue_name",
    "rpc_binding_key",
    "rpc_exchange_name",
    "rpc_queue_name",
    "rpc_routing_key",
    "serializer_for",
]
