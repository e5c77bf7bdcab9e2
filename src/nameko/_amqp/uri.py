"""AMQP URI parsing: ``amqp://user:pass@host:port/vhost`` into connection
parameters; several URIs (the nodes of a cluster, tried in turn) into a
tuple of them (`parse_uris`, syntax in `nameko._urls`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from nameko._urls import sanitize_url, split_urls

__all__ = ["AmqpParams", "parse_uri", "parse_uris"]

SCHEMES = {"amqp": (False, 5672), "pyamqp": (False, 5672), "amqps": (True, 5671)}


@dataclass(frozen=True)
class AmqpParams:
    host: str
    port: int
    username: str
    password: str = ""
    vhost: str = "/"
    tls: bool = False
    display: str = ""  # the URI with its password masked, for logs and errors

    def __repr__(self) -> str:  # never show the password
        return f"AmqpParams({self.display!r})"


def parse_uri(uri: str, *, tls: bool = False) -> AmqpParams:
    """Parse an AMQP URI. The vhost is URL-decoded (``%2F`` is ``/``); an
    empty path means ``/``. Missing credentials default to guest/guest.
    ``tls`` (an ``ssl`` option was given) turns TLS on for ``amqp://`` too,
    with the amqps default port unless the URI names one, as kombu does."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"not an AMQP URI: {sanitize_url(uri)}")
    tls = tls or SCHEMES[scheme][0]
    default_port = SCHEMES["amqps" if tls else "amqp"][1]
    try:
        port = parts.port or default_port
    except ValueError as exc:  # the message of urllib's error holds no password
        raise ValueError(f"invalid port in {sanitize_url(uri)}: {exc}") from None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return AmqpParams(
        host=parts.hostname or "localhost",
        port=port,
        username=unquote(parts.username) if parts.username is not None else "guest",
        password=unquote(parts.password) if parts.password is not None else "guest",
        vhost=unquote(path) if path else "/",
        tls=tls,
        display=sanitize_url(uri),
    )


def parse_uris(value: str | Sequence[str], *, tls: bool = False) -> tuple[AmqpParams, ...]:
    """Every node ``value`` names, in order (one for a plain URI)."""
    nodes = tuple(parse_uri(uri, tls=tls) for uri in split_urls(value) if uri)
    if not nodes:
        raise ValueError("no AMQP URI given")
    return nodes
