"""Who may use the backdoor, and what it must not show.

How it works: a backdoor makes a random token when it opens and writes it
to a file only its user can read (mode 0600, in a directory of that user's
with mode 0700: ``$XDG_RUNTIME_DIR/nameko`` or, without that variable,
``<tempdir>/nameko-<uid>``), named after the port. A client's first line
must be that token; nothing else is read, no console exists and nothing
runs until it is. A web page cannot read the file (a browser's request
starts with an HTTP request line, which is refused as such), nor can
another local user. The token is never printed, only the file's path.

What a session prints passes through `Masker`: the secret values of the
service's config (those `redact_config` would hide: values of secret-named
keys, URL passwords) are replaced by ``********`` wherever they appear.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nameko._redaction import redact_config
from nameko._urls import MASK

__all__ = [
    "Masker",
    "check_token",
    "looks_like_http",
    "new_token",
    "read_token",
    "remove_token",
    "secret_values",
    "token_path",
    "write_token",
]

MIN_SECRET_LENGTH = 4  # shorter values are not masked: they would hide ordinary text

# a request line ("POST / HTTP/1.1") or a header line ("Host: 127.0.0.1")
_HTTP_LINE = re.compile(rb"^\s*[A-Z]+ \S+ HTTP/\d|^[!#$%&'*+.^_`|~0-9A-Za-z-]+:")


def _token_directory() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime, "nameko")
    return Path(tempfile.gettempdir(), f"nameko-{os.getuid()}")


def token_path(port: int, directory: Path | None = None) -> Path:
    """Where the token of the backdoor on ``port`` is kept."""
    return (directory or _token_directory()) / f"backdoor-{port}.token"


def _private_directory(path: Path) -> None:
    """Make ``path`` (mode 0700) or check that it is ours and private: a
    directory another user made or can read could leak or swap the token."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} must be a directory of this user's with mode 0700")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by this user only."""
    _private_directory(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file left by an earlier run keeps its mode otherwise
        os.write(fd, token.encode() + b"\n")
    finally:
        os.close(fd)


def read_token(path: Path) -> str:
    return path.read_text().strip()


def remove_token(path: Path, token: str) -> None:
    """Remove ``path`` if it still holds ``token`` (not a newer run's)."""
    try:
        if read_token(path) == token:
            path.unlink()
    except OSError:
        pass


def check_token(line: bytes, token: str) -> bool:
    return hmac.compare_digest(line.strip(), token.encode())


def looks_like_http(line: bytes) -> bool:
    return bool(_HTTP_LINE.match(line))


def secret_values(config: Any) -> set[str]:
    """The strings of ``config`` that `redact_config` masks (whole values,
    or the masked parts of them: a URL's password)."""
    found: set[str] = set()
    _collect(config, redact_config(config), found)
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH}


def _collect(original: Any, masked: Any, found: set[str]) -> None:
    if original == masked:
        return
    if isinstance(original, dict) and isinstance(masked, dict):
        for key, value in original.items():
            _collect(value, masked.get(key), found)
    elif isinstance(original, (list, tuple)) and isinstance(masked, (list, tuple)):
        for value, hidden in zip(original, masked, strict=False):
            _collect(value, hidden, found)
    elif isinstance(original, str) and isinstance(masked, str):
        found.update(_masked_parts(original, masked))
    else:  # a whole section masked: every value in it is a secret
        found.update(_leaves(original))


def _masked_parts(original: str, masked: str) -> Iterable[str]:
    pattern = "(.+?)".join(re.escape(piece) for piece in masked.split(MASK))
    match = re.fullmatch(pattern, original, re.DOTALL)
    return match.groups() if match and match.groups() else (original,)


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [str(value)]


def _quoted_forms(value: str) -> set[str]:
    """``value`` as it is and as ``repr`` shows it between either quote (a
    quote inside it is escaped when the string holds both kinds)."""
    escaped = repr(value + '"')[1:-2]  # single-quoted: a quote inside is escaped
    return {value, escaped, escaped.replace("\\'", "'")}


class Masker:
    """Replaces each of ``hidden`` (and its forms inside a ``repr``) in text by ``********``."""

    def __init__(self, hidden: Iterable[str]) -> None:
        forms = {form for value in hidden for form in _quoted_forms(value)}
        self._forms = sorted(forms, key=len, reverse=True)  # a longer secret first, whole

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text
