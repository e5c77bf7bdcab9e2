"""Keeping secrets out of what we print: URL passwords and secret-looking keys."""

from __future__ import annotations

import re
from typing import Any

from nameko._urls import MASK, sanitize_url

__all__ = ["SECRET_KEY", "redact_config"]

#: config keys whose string values are secrets (case-insensitive substrings)
SECRET_KEY = re.compile(r"password|secret|token|key", re.IGNORECASE)


def redact_config(value: Any, key: Any = None) -> Any:
    """A copy of ``value`` (a config mapping, or anything inside one) fit to
    print: string values of keys named like ``*password*``, ``*secret*``,
    ``*token*`` or ``*key*`` become ``********``, and passwords in URLs
    anywhere are masked. Other values are returned as they are."""
    if isinstance(value, dict):
        return {k: redact_config(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_config(item) for item in value)
    if isinstance(value, str):
        if isinstance(key, str) and SECRET_KEY.search(key):
            return MASK
        return sanitize_url(value) if "://" in value else value
    return value
