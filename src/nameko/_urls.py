"""URL helpers shared by the transport and the public `nameko.utils`.

``AMQP_URI`` may name several brokers (the nodes of a cluster) for
fail-over: a list, or one string with the URIs separated by ``;`` (kombu's
syntax) or ``,``. A later URI may leave out what it shares with the first:
``amqp://user:pw@h1:5672/vh;amqp://h2:5673`` or even
``amqp://user:pw@h1/vh;h2:5673;h3`` take the scheme, credentials and vhost
of the first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit, urlunsplit

__all__ = ["MASK", "first_url", "join_urls", "sanitize_url", "split_urls"]

MASK = "********"
URI_SEPARATOR = ";"
_FULL = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://")
# a later node given by host[:port][/vhost] only (no credentials: no "@")
_SHORT = re.compile(r"\s*(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d+)?(/[^@]*)?\s*$")


def split_urls(value: str | Sequence[str]) -> list[str]:
    """The URIs ``value`` names, each complete (see the module docstring).
    A separator counts only where a URI (or a short ``host[:port]`` after
    ``;``) follows it, so a ``;`` or ``,`` inside a password is kept."""
    items = [value] if isinstance(value, str) else list(value)
    pieces: list[str] = []
    for item in items:
        pieces += _split_one(str(item))
    if len(pieces) < 2:
        return [p.strip() for p in pieces]
    first = urlsplit(pieces[0].strip())
    return [pieces[0].strip(), *(_complete(p.strip(), first) for p in pieces[1:])]


def _split_one(text: str) -> list[str]:
    pieces: list[str] = []
    for separator, piece in _tokens(text):
        starts = _FULL.match(piece) or (separator == ";" and _SHORT.match(piece))
        if pieces and not starts:
            pieces[-1] += separator + piece  # part of the previous URI (a password...)
        else:
            pieces.append(piece)
    return pieces


def _tokens(text: str) -> list[tuple[str, str]]:
    parts = re.split(r"([;,])", text)
    return [("", parts[0])] + [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


def _complete(uri: str, first: SplitResult) -> str:
    """``uri`` with the scheme, credentials and vhost of ``first`` where it has none."""
    if not _FULL.match(uri):
        uri = f"{first.scheme}://{uri}"
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" not in netloc and "@" in first.netloc:
        netloc = first.netloc.rpartition("@")[0] + "@" + netloc
    path = parts.path or first.path
    query = parts.query or first.query
    return urlunsplit(parts._replace(netloc=netloc, path=path, query=query))


def join_urls(value: str | Sequence[str]) -> str:
    """One string for ``value`` (a list becomes ``;``-separated)."""
    return value if isinstance(value, str) else URI_SEPARATOR.join(str(v) for v in value)


def first_url(value: str | Sequence[str]) -> str:
    """The first URI ``value`` names (what a single-node tool uses)."""
    urls = split_urls(value)
    return urls[0] if urls else ""


def sanitize_url(url: str | Sequence[str]) -> str:
    """``url`` with its password (if any) replaced by ``********``; every
    password of a multi-broker value (shown ``;``-separated)."""
    urls = split_urls(url)
    if isinstance(url, str) and len(urls) < 2:
        return _sanitize_one(url)
    return URI_SEPARATOR.join(_sanitize_one(u) for u in urls)


def _sanitize_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostinfo}"))
