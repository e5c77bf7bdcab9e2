"""URL helpers shared by the transport and the public `nameko.utils`."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "********"


def sanitize_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``********``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostinfo}"))
