"""`nameko cluster`'s text: services, their instances and entrypoints."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["by_service", "format_listing", "format_uptime"]


def format_uptime(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def by_service(messages: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        grouped.setdefault(message["service"], []).append(message)
    return dict(sorted(grouped.items()))


def format_listing(messages: Iterable[dict[str, Any]]) -> str:
    lines: list[str] = []
    for service, instances in by_service(messages).items():
        count = len(instances)
        lines.append(f"{service} ({count} instance{'s' if count != 1 else ''})")
        lines.extend(_instance_lines(instances))
        lines.extend(_entrypoint_lines(instances))
        lines.append("")
    return "\n".join(lines)


def _instance_lines(instances: list[dict[str, Any]]) -> list[str]:
    rows = [("instance", "host", "pid", "uptime", "version", "state")]
    for message in sorted(instances, key=lambda m: (m.get("host", ""), m.get("pid", 0))):
        rows.append(
            (
                str(message["instance"]),
                str(message.get("host", "?")),
                str(message.get("pid", "?")),
                format_uptime(float(message.get("uptime") or 0)),
                f"shimeji {message.get('version', '?')}",
                str(message.get("state", "?")),
            )
        )
    return ["  " + line.rstrip() for line in _table(rows)]


def _entrypoint_lines(instances: list[dict[str, Any]]) -> list[str]:
    merged: dict[str, dict[str, Any]] = {}
    for message in instances:
        for ep in message.get("entrypoints") or ():
            merged.setdefault(ep.get("key", ""), ep)
    rows = []
    for ep in sorted(merged.values(), key=lambda ep: (ep.get("name", ""), ep.get("type", ""))):
        doc = (ep.get("doc") or "").strip().splitlines()
        about = "  ".join(filter(None, [ep.get("detail"), doc[0] if doc else ""]))
        rows.append(
            (str(ep.get("type", "?")), f"{ep.get('name', '?')}{ep.get('signature', '')}", about)
        )
    return ["    " + line.rstrip() for line in _table(rows)] if rows else []


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
