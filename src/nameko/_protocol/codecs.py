"""Message body serializers, registered by name (kombu's model, our code).

A serializer has a name (what config refers to: ``serializer: json``,
``ACCEPT: [json, pickle]``), a content type (what travels in the message
properties and selects the decoder on the receiving side) and a content
encoding (a text encoding, or ``binary``).

Built in: ``json`` (the default, kombu-compatible, see `jsoncodec`),
``pickle``, ``yaml`` (safe subset) and ``msgpack`` when that package is
importable. The registry is process-wide, like kombu's.

A name we don't have is also looked up in kombu's registry, when (and only
when) kombu has already been imported by someone: code written for nameko
registers serializers with ``kombu.serialization.register``. Such a name is
adopted here once, as a codec that calls kombu's ``dumps``/``loads``; kombu
itself is never imported by us.

Decoding rules (`decode`):

* a message without a content type, or with ``application/data``, is handed
  over raw (text, or bytes for a binary encoding) whatever ``accept`` says,
  as kombu does for untyped messages from foreign producers;
* any other content type must be in ``accept`` (names or content types), else
  `ContentDisallowed`;
* an accepted content type with no registered decoder is handed over raw;
* a body the decoder rejects (bad syntax, invalid UTF-8...) raises `DecodeError`.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml
import yaml.constructor
import yaml.resolver

from nameko._protocol import jsoncodec
from nameko._protocol.errors import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    SerializationError,
    UnknownSerializer,
)
from nameko.constants import DEFAULT_SERIALIZER

__all__ = [
    "BINARY_ENCODINGS",
    "RAW_CONTENT_TYPE",
    "Codec",
    "accepted_content_types",
    "decode",
    "encode",
    "get_codec",
    "is_registered",
    "register",
    "registered_names",
    "serializer_for",
    "unregister",
]

BINARY_ENCODINGS = frozenset({"binary", "ascii-8bit"})
RAW_CONTENT_TYPE = "application/data"

Body = bytes | bytearray | memoryview | str


@dataclass(frozen=True)
class Codec:
    """One registered serializer."""

    name: str
    content_type: str
    content_encoding: str
    encoder: Callable[[Any], bytes | str]
    decoder: Callable[[Any], Any]

    @property
    def binary(self) -> bool:
        """True if the decoder takes bytes rather than text."""
        return self.content_encoding in BINARY_ENCODINGS


_by_name: dict[str, Codec] = {}
_by_type: dict[str, Codec] = {}


def register(
    name: str,
    encoder: Callable[[Any], bytes | str],
    decoder: Callable[[Any], Any],
    content_type: str,
    content_encoding: str = "utf-8",
) -> Codec:
    """Register (or replace) serializer ``name``.

    ``encoder(obj)`` returns bytes or text (text is encoded with
    ``content_encoding``); ``decoder`` receives text, or bytes when
    ``content_encoding`` is ``binary``.
    """
    unregister(name)
    codec = Codec(name, content_type, content_encoding, encoder, decoder)
    _by_name[name] = codec
    _by_type[content_type] = codec
    return codec


def unregister(name: str) -> None:
    """Forget serializer ``name`` (no-op if unknown)."""
    codec = _by_name.pop(name, None)
    if codec is not None and _by_type.get(codec.content_type) is codec:
        del _by_type[codec.content_type]


def get_codec(name: str) -> Codec:
    """The serializer registered as ``name``, or `UnknownSerializer`."""
    try:
        return _by_name[name]  # per message: the fast path stays a dict lookup
    except (KeyError, TypeError):
        codec = _adopt_from_kombu(name)
    if codec is None:
        raise UnknownSerializer(f"No serializer registered under the name {name!r}") from None
    return codec


def is_registered(name: str) -> bool:
    """True if a serializer is registered as ``name`` (here, or with kombu)."""
    if not isinstance(name, str):
        return False
    return name in _by_name or _adopt_from_kombu(name) is not None


# the serializers this module defines itself (msgpack only when importable)
_OWN_NAMES = frozenset({"json", "pickle", "yaml", "msgpack"})


def _adopt_from_kombu(name: Any) -> Codec | None:
    """Register kombu's serializer ``name`` here; None if kombu isn't loaded
    or doesn't know it. Runs only for names we lack (config checks, a first
    publish), never per message once adopted."""
    kombu_serialization = sys.modules.get("kombu.serialization")
    if kombu_serialization is None or not isinstance(name, str) or name in _OWN_NAMES:
        return None  # ours are ours: kombu's msgpack entry exists without msgpack
    registry = kombu_serialization.registry
    content_type = registry.name_to_type.get(name)
    if content_type is None:
        return None
    # kombu has no public getter for a serializer's text encoding; its
    # registry entry (a namedtuple) has had this field since kombu 3.
    entry = getattr(registry, "_encoders", {}).get(name)
    content_encoding = getattr(entry, "content_encoding", None) or "utf-8"

    def encoder(obj: Any) -> bytes | str:
        return kombu_serialization.dumps(obj, serializer=name)[2]

    def decoder(payload: Any) -> Any:
        return kombu_serialization.loads(
            payload, content_type, content_encoding, accept=[content_type]
        )

    return register(name, encoder, decoder, content_type, content_encoding)


def registered_names() -> list[str]:
    """Names of all registered serializers."""
    return list(_by_name)


def serializer_for(content_type: str | None) -> str | None:
    """Name of the serializer for a content type (None if there is none).

    Replies are encoded with the serializer of the request's content type.
    """
    codec = _by_type.get(content_type) if content_type else None
    return codec.name if codec is not None else None


def accepted_content_types(accept: Iterable[str]) -> frozenset[str]:
    """Content types allowed by ``accept`` (serializer names or content types)."""
    return frozenset(_by_name[item].content_type if item in _by_name else item for item in accept)


def encode(obj: Any, serializer: str = DEFAULT_SERIALIZER) -> tuple[bytes, str, str]:
    """``(body, content_type, content_encoding)`` for ``obj``.

    Raises `UnknownSerializer`, or `EncodeError` when the value cannot be
    represented (the RPC layer turns that into ``UnserializableValueError``).
    """
    codec = get_codec(serializer)
    try:
        payload = codec.encoder(obj)
        if isinstance(payload, str):
            payload = payload.encode("utf-8" if codec.binary else codec.content_encoding)
    except SerializationError:
        raise
    except Exception as exc:
        raise EncodeError(
            f"Cannot encode a {type(obj).__name__} with the {serializer!r} serializer: {exc}"
        ) from exc
    return bytes(payload), codec.content_type, codec.content_encoding


def decode(
    body: Body,
    content_type: str | None,
    content_encoding: str | None,
    accept: Iterable[str] | None = None,
) -> Any:
    """The value carried by a message body (rules in the module docstring).

    ``accept`` of None allows every content type.
    """
    if not content_type or content_type == RAW_CONTENT_TYPE:
        binary = content_type == RAW_CONTENT_TYPE or content_encoding in BINARY_ENCODINGS
        return _raw(body, binary, content_encoding)
    if accept is not None and not _allowed(content_type, accept):
        raise ContentDisallowed(
            f"Refusing to decode content of type {content_type!r}: not in the accepted "
            f"serializers {sorted(accept)!r}"
        )
    codec = _by_type.get(content_type)
    if codec is None:
        return _raw(body, content_encoding in BINARY_ENCODINGS, content_encoding)
    payload = _as_bytes(body) if codec.binary else _as_text(body, codec.content_encoding, codec)
    try:
        return codec.decoder(payload)
    except SerializationError:
        raise
    except Exception as exc:
        raise DecodeError(f"Cannot decode {codec.name} message body: {exc}") from exc


def _allowed(content_type: str, accept: Iterable[str]) -> bool:
    for item in accept:
        if item == content_type:
            return True
        codec = _by_name.get(item)
        if codec is not None and codec.content_type == content_type:
            return True
    return False


def _as_bytes(body: Body) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _as_text(body: Body, encoding: str | None, codec: Codec | None = None) -> str:
    if isinstance(body, str):
        return body
    try:
        return bytes(body).decode(encoding or "utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        what = f"{codec.name} message body" if codec else "message body"
        raise DecodeError(f"Cannot decode {what} as {encoding or 'utf-8'} text: {exc}") from exc


def _raw(body: Body, binary: bool, encoding: str | None) -> bytes | str:
    return _as_bytes(body) if binary else _as_text(body, encoding)


# -- built-in serializers ----------------------------------------------------------


class _BodyLoader(yaml.SafeLoader):
    """A safe YAML loader immune to process-wide additions to ``yaml.SafeLoader``.

    The config loader registers env-var substitution on ``SafeLoader``; message
    bodies must never expand ``${VAR}`` (that would leak the environment to
    whoever sends a message), so this class starts from the pristine tables of
    the base classes.
    """

    yaml_constructors = dict(yaml.constructor.SafeConstructor.yaml_constructors)
    yaml_multi_constructors = dict(yaml.constructor.SafeConstructor.yaml_multi_constructors)
    yaml_implicit_resolvers = {
        first: list(resolvers)
        for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
    }


def _yaml_dumps(obj: Any) -> str:
    return yaml.dump(obj, Dumper=yaml.SafeDumper)


def _yaml_loads(text: str) -> Any:
    return yaml.load(text, Loader=_BodyLoader)  # noqa: S506 - a safe loader


def _pickle_dumps(obj: Any) -> bytes:
    # Protocol 4 is what kombu emits and what every Python 3.4+ peer reads.
    return pickle.dumps(obj, protocol=4)


def _register_msgpack() -> None:
    try:
        import msgpack
    except ImportError:
        return
    register(
        "msgpack",
        lambda obj: msgpack.packb(obj, use_bin_type=True),
        lambda data: msgpack.unpackb(data, raw=False),
        "application/x-msgpack",
        "binary",
    )


register("json", jsoncodec.dumps, jsoncodec.loads, "application/json", "utf-8")
register("pickle", _pickle_dumps, pickle.loads, "application/x-python-serialize", "binary")
register("yaml", _yaml_dumps, _yaml_loads, "application/x-yaml", "utf-8")
_register_msgpack()
