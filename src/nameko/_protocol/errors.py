"""shimeji's own protocol-level errors (not part of nameko's public API).

nameko surfaced kombu's exceptions here; we raise these instead. They are
plain ``Exception`` subclasses so callers can catch `ProtocolError` alone.
"""

from __future__ import annotations

__all__ = [
    "ContentDisallowed",
    "DecodeError",
    "EncodeError",
    "MalformedReply",
    "ProtocolError",
    "SerializationError",
    "UnknownSerializer",
]


class ProtocolError(Exception):
    """Base of every error raised by `nameko._protocol`."""


class SerializationError(ProtocolError):
    """Base of the codec errors."""


class UnknownSerializer(SerializationError, KeyError):
    """No serializer is registered under the given name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class EncodeError(SerializationError):
    """A value could not be encoded with the chosen serializer."""


class DecodeError(SerializationError):
    """A message body could not be decoded (bad syntax, bad text encoding...)."""


class ContentDisallowed(SerializationError):
    """A message's content type is not among the accepted ones."""


class MalformedReply(ProtocolError):
    """An RPC reply body is not the ``{"result": ..., "error": ...}`` envelope."""
