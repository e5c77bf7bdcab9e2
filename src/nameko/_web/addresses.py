"""`WEB_SERVER_ADDRESS` values: ``[address:]port`` (SPEC 6)."""

from __future__ import annotations

import re
from typing import NamedTuple

from nameko.exceptions import ConfigurationError

__all__ = ["DEFAULT_WEB_SERVER_ADDRESS", "WEB_SERVER_CONFIG_KEY", "BindAddress", "parse_address"]

WEB_SERVER_CONFIG_KEY = "WEB_SERVER_ADDRESS"
DEFAULT_WEB_SERVER_ADDRESS = "0.0.0.0:8000"

_ADDRESS = re.compile(r"^((?P<address>[^:]+):)?(?P<port>\d+)$")


class BindAddress(NamedTuple):
    address: str
    port: int


def parse_address(value: str) -> BindAddress:
    """``'127.0.0.1:8000'`` -> ``('127.0.0.1', 8000)``; ``'8000'`` -> ``('', 8000)``."""
    match = _ADDRESS.match(str(value))
    if match is None:
        raise ConfigurationError(
            f"Misconfigured bind address `{value}`. Should be `[address:]port`"
        )
    return BindAddress(match.group("address") or "", int(match.group("port")))
