"""Imports go down the layers (ARCHITECTURE.md section 2), and threads live in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# rank of each module prefix; the longest matching prefix wins
LAYERS = {
    "nameko": 0,
    "nameko._concurrency": 0,
    "nameko._urls": 0,
    "nameko._redaction": 0,
    "nameko._log_limits": 0,
    "nameko.constants": 0,
    "nameko.exceptions": 0,
    "nameko.utils": 0,
    "nameko.log_helpers": 0,
    "nameko._config_yaml": 0,
    "nameko._global_config": 0,
    "nameko._reexports": 0,
    "nameko._broker": 1,  # transport
    "nameko._amqp": 1,
    "nameko._protocol": 2,  # protocol: pure
    "nameko.serialization": 2,
    "nameko._runtime": 3,  # runtime
    "nameko._aio": 3,  # asyncio: the container's loop and async workers (runtime) ...
    "nameko._tracing": 3,  # OpenTelemetry spans: a worker observer the container adds (D27)
    "nameko.tracing": 3,
    "nameko.extensions": 3,
    "nameko.containers": 3,
    "nameko.runners": 3,
    "nameko._messaging": 4,  # application
    "nameko._rpc": 4,
    "nameko._events": 4,
    "nameko._timer": 4,
    "nameko._schedule": 4,  # cluster-singleton schedules: lease, loop, @cron (D28)
    "nameko._reliability": 4,  # deadlines, retries, dead letters
    "nameko.reliability": 4,
    "nameko._presence": 4,  # announcements, `nameko cluster`, the dashboard (D29)
    "nameko.presence": 4,
    "nameko._ops": 4,  # health, readiness, metrics (D26)
    "nameko.ops": 4,
    "nameko.rpc": 4,
    "nameko.events": 4,
    "nameko.messaging": 4,
    "nameko.amqp": 4,
    "nameko.timer": 4,
    "nameko.dependency_providers": 4,
    "nameko.contextdata": 4,
    "nameko.web": 4,
    "nameko._web": 4,  # HTTP and WebSocket entrypoints with their server
    "nameko._aio.rpc": 4,  # ... the awaitable dependencies (application) ...
    "nameko._aio.events": 4,
    "nameko._aio.standalone": 5,  # ... and the asyncio standalone client (tools)
    "nameko.standalone": 5,  # tools
    "nameko.testing": 5,
    "nameko.cli": 5,
    "nameko.__main__": 5,
}
PURE = ("nameko._protocol", "nameko._web.http11")
IO_MODULES = {"socket", "selectors", "ssl", "threading", "nameko._broker", "nameko._amqp"}
THREADING_ALLOWED = {"nameko._concurrency", "nameko._amqp.driver"}


def rank(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted((SRC / "nameko").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def imports_of(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if base == "nameko")
    return names


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_imports_go_down_the_layers(module, path):
    own = rank(module)
    upward = sorted(
        name
        for name in imports_of(path, module)
        if name.startswith("nameko") and name != "nameko" and rank(name) > own
    )
    assert not upward, f"{module} (layer {own}) imports upward: {upward}"


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_protocol_layer_is_pure_and_threads_live_in_one_place(module, path):
    names = imports_of(path, module)
    if module.startswith(PURE):
        io = sorted(
            n
            for n in names
            if n.split(".")[0] in IO_MODULES or n.startswith(("nameko._broker", "nameko._amqp"))
        )
        assert not io, f"{module} must stay pure but imports {io}"
    if module not in THREADING_ALLOWED:
        assert "threading" not in names, f"{module} imports threading: use nameko._concurrency"
