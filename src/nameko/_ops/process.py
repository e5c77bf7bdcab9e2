"""Per-process figures read from /proc (Linux); None where there is no /proc."""

from __future__ import annotations

import os

__all__ = ["resident_bytes", "thread_count"]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """Resident set size: the second field of /proc/self/statm, in pages."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def thread_count() -> int | None:
    """Every thread of the process (ours, the broker's, a library's)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return None
