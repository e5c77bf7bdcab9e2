"""``OPS_ADDRESS``: ``port``, ``:port``, ``host:port`` or ``[ipv6]:port``."""

from __future__ import annotations

from nameko.exceptions import ConfigurationError

__all__ = ["DEFAULT_HOST", "OPS_ADDRESS_CONFIG_KEY", "parse_address"]

OPS_ADDRESS_CONFIG_KEY = "OPS_ADDRESS"

DEFAULT_HOST = "127.0.0.1"  # loopback unless a host is given: 0.0.0.0 for Kubernetes probes


def parse_address(value: object, what: str = "OPS_ADDRESS") -> tuple[str, int]:
    """(host, port); `ConfigurationError` naming ``what`` for anything else."""
    text = str(value).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = ""
    host = host.strip("[]") or DEFAULT_HOST
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigurationError(f"{what} must be [host:]port (0 to 65535), not {value!r}")
    return host, int(port_text)
