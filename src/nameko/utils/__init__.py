"""Small helpers that are part of nameko's public API (SPEC 1.16).

`nameko.utils.retry` and `nameko.utils.concurrency` are submodules.
"""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

from nameko._urls import sanitize_url

__all__ = ["REDACTED", "get_redacted_args", "import_from_path", "sanitize_url"]

REDACTED = "********"

# A path into call arguments: word tokens (``foo``, ``a``) and index tokens (``[1]``).
_PATH_TOKEN = re.compile(r"(\w+)|\[(\d+)\]")


def import_from_path(path: str | None) -> Any:
    """The object at a dotted path (``None`` for ``None``), or ``ImportError``."""
    if path is None:
        return None
    import pydoc  # about 1 MiB of modules, for a path given in the config

    obj = pydoc.locate(path)
    if obj is None:
        raise ImportError(f"`{path}` could not be imported")
    return obj


def get_redacted_args(entrypoint: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The call arguments of ``entrypoint``'s method by name, deep-copied, with
    ``entrypoint.sensitive_arguments`` replaced by `REDACTED`.

    The quirks are nameko's and kept on purpose (users' log redaction depends
    on them): the first path token must name a call argument; the last token is
    assigned, so a missing dict key is *added*, while a bad index or a
    non-container is silently skipped; intermediate tokens are followed only
    if ``token in value`` (for lists that tests membership, not the index),
    so a path that continues past a None value raises ``TypeError``.
    """
    method = getattr(entrypoint.container.service_cls, entrypoint.method_name)
    callargs = inspect.getcallargs(method, None, *args, **kwargs)
    # Drop the instance slot, whatever its name (None was bound to it).
    for name in inspect.getfullargspec(method).args[:1]:
        del callargs[name]
    redacted = copy.deepcopy(callargs)

    sensitive = entrypoint.sensitive_arguments
    if isinstance(sensitive, str):
        sensitive = (sensitive,)
    for path in sensitive:
        _redact(redacted, _parse_path(path))
    return redacted


def _parse_path(path: str) -> list[str | int]:
    return [word if word else int(index) for word, index in _PATH_TOKEN.findall(path)]


def _redact(callargs: dict[str, Any], tokens: list[str | int]) -> None:
    if not tokens or tokens[0] not in callargs:
        return
    data: Any = callargs
    for token in tokens[:-1]:
        if token not in data:  # ``x in None`` raises TypeError, as in nameko
            return
        data = data[token]
    try:
        data[tokens[-1]] = REDACTED
    except (IndexError, TypeError):
        pass
