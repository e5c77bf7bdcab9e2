"""YAML config files with environment-variable placeholders (SPEC 9.1).

``${NAME}`` and ``${NAME:default}`` in a plain (unquoted) scalar, or in any
scalar tagged ``!env_var`` / ``!raw_env_var``, are replaced by the variable's
value (even an empty one), else the default (itself expanded), else ``''``.
If that changed the text, ``!env_var`` parses the result again as YAML (so
``${PORT:8000}`` is an int and an unset ``${X}`` is None); ``!raw_env_var``
keeps the string.

Defaults containing braces or further placeholders
(``${URI:amqp://${USER:guest}@host}``) need balanced-brace matching, which
nameko only offers when the optional ``regex`` package is installed; we do the
matching ourselves but keep the same gate so configs behave the same under
both, and raise nameko's `ConfigurationError` when it is absent.

Registration is on ``yaml.SafeLoader`` itself, process-wide, as in nameko
(message bodies are decoded with a separate pristine loader, see `codecs`).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any

import yaml

from nameko._redaction import is_secret_name, redact_text
from nameko.exceptions import ConfigurationError

__all__ = [
    "IMPLICIT_ENV_VAR_MATCHER",
    "NESTED_LOOKUP_ERROR",
    "collecting_secret_values",
    "env_var_constructor",
    "load_config",
    "malformed_placeholder",
    "raw_env_var_constructor",
    "setup_yaml_parser",
    "substitute_env_vars",
]

#: Plain scalars matching this are tagged ``!env_var`` implicitly.
IMPLICIT_ENV_VAR_MATCHER = re.compile(r".*\$\{.*\}.*")

NESTED_LOOKUP_ERROR = "Nested environment variable lookup requires the `regex` module"

#: Whether defaults may nest (mirrors nameko: only with ``regex`` installed).
#: Tests flip it to exercise both behaviours.
NESTED_DEFAULTS = importlib.util.find_spec("regex") is not None

_NAME_TERMINATORS = frozenset("{}:")

# what secret-named variables (or their defaults) gave, while a caller collects
_secret_values: ContextVar[set[str] | None] = ContextVar("secret_values", default=None)


@contextmanager
def collecting_secret_values() -> Iterator[set[str]]:
    """The texts that placeholders named like secrets (``${SMTP_PASS:...}``)
    were replaced by while the block runs: once substituted, a value under
    an ordinary key cannot be told from any other, so printers mask these."""
    found: set[str] = set()
    token = _secret_values.set(found)
    try:
        yield found
    finally:
        _secret_values.reset(token)


@dataclass(frozen=True)
class _Placeholder:
    name: str
    default: str | None
    end: int  # index just after the closing brace


def substitute_env_vars(text: str, nested: bool | None = None) -> str:
    """``text`` with every well-formed placeholder replaced."""
    if nested is None:
        nested = NESTED_DEFAULTS
    parts = []
    pos = 0
    while (start := text.find("${", pos)) >= 0:
        placeholder = _parse_placeholder(text, start, nested)
        if placeholder is None:  # not a placeholder: keep the "${" literally
            parts.append(text[pos : start + 2])
            pos = start + 2
            continue
        parts.append(text[pos:start])
        parts.append(_lookup(placeholder, nested))
        pos = placeholder.end
    parts.append(text[pos:])
    return "".join(parts)


def malformed_placeholder(text: str, nested: bool | None = None) -> str | None:
    """The first ``${...`` in ``text`` that is not a placeholder (a quoted
    scalar keeps placeholders as text, so only malformed ones count)."""
    if nested is None:
        nested = NESTED_DEFAULTS
    pos = 0
    while (start := text.find("${", pos)) >= 0:
        placeholder = _parse_placeholder(text, start, nested)
        if placeholder is None:
            return text[start : start + 20]
        pos = placeholder.end
    return None


def _lookup(placeholder: _Placeholder, nested: bool) -> str:
    value = os.environ.get(placeholder.name)
    if value is None and placeholder.default is not None:
        value = substitute_env_vars(placeholder.default, nested)
    found = _secret_values.get()
    if value and found is not None and is_secret_name(placeholder.name):
        found.add(value)
    return value or ""


def _parse_placeholder(text: str, start: int, nested: bool) -> _Placeholder | None:
    index = start + 2
    while index < len(text) and text[index] not in _NAME_TERMINATORS and not text[index].isspace():
        index += 1
    name = text[start + 2 : index]
    if not name or index >= len(text):
        return None
    if text[index] == "}":
        return _Placeholder(name, None, index + 1)
    if text[index] != ":":
        return None
    close = _find_closing_brace(text, index + 1, nested)
    if close is None:
        return None
    default = text[index + 1 : close]
    if not nested and "${" in default:
        raise ConfigurationError(NESTED_LOOKUP_ERROR)
    return _Placeholder(name, default, close + 1)


def _find_closing_brace(text: str, start: int, nested: bool) -> int | None:
    if not nested:
        close = text.find("}", start)
        return close if close >= 0 else None
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
    return None


def env_var_constructor(loader: yaml.SafeLoader, node: yaml.Node, raw: bool = False) -> Any:
    """Constructor of ``!env_var`` (and, with ``raw``, ``!raw_env_var``)."""
    # the stub wants a ScalarNode; construct_scalar checks the node itself (ConstructorError)
    value = loader.construct_scalar(node)  # type: ignore[arg-type]
    substituted = substitute_env_vars(value)
    if raw or substituted == value:
        return substituted
    try:
        return yaml.safe_load(substituted)
    except RecursionError:  # a variable whose value keeps referring to itself
        raise ConfigurationError(
            f"Environment variable substitution does not terminate for {redact_text(value)!r}"
        ) from None


def raw_env_var_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    """Constructor of ``!raw_env_var``: substitute, never re-parse."""
    return env_var_constructor(loader, node, raw=True)


def setup_yaml_parser() -> None:
    """Register the tags and the implicit resolver on ``yaml.SafeLoader`` (idempotent)."""
    loader = yaml.SafeLoader
    yaml.add_constructor("!env_var", env_var_constructor, Loader=loader)
    yaml.add_constructor("!raw_env_var", raw_env_var_constructor, Loader=loader)
    wildcard = loader.yaml_implicit_resolvers.get(None, [])
    if not any(tag == "!env_var" for tag, _ in wildcard):
        yaml.add_implicit_resolver("!env_var", IMPLICIT_ENV_VAR_MATCHER, None, Loader=loader)


def load_config(stream_or_path: str | os.PathLike[str] | IO[Any]) -> dict[str, Any]:
    """Parse a config file (a path, or an open stream / YAML text stream).

    An empty document gives ``{}``; a document that is not a mapping raises
    `ConfigurationError`.
    """
    setup_yaml_parser()
    if isinstance(stream_or_path, (str, os.PathLike)):
        with open(stream_or_path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    else:
        data = yaml.safe_load(stream_or_path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"The config file must contain a mapping, not {type(data).__name__}"
        )
    return data
