"""``nameko run --reload``: watch the project's Python files, restart on change.

Polling, not inotify: a scan of a project tree (hidden folders, virtualenvs
and ``__pycache__`` left out) is a few milliseconds every half second, it
works the same on every platform and in containers with bind mounts, and
it needs no dependency (watchfiles would save the scan but bring a
compiled extension for a development-only feature).

A change is acted on once the files have been quiet for a moment (editors
save in several steps). Every changed file must compile first: a syntax
error is printed and the running services go on with the old code until
the file changes again. The restart itself is the caller's (see
`nameko.cli.run`): a graceful stop, then the same command line again.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from nameko._concurrency import Event, start_thread

__all__ = ["Reloader", "python_files"]

_log = logging.getLogger("nameko.cli.reload")
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})
INTERVAL = 0.5  # seconds between scans
QUIET = 0.3  # seconds without further changes before acting


def python_files(roots: Iterable[Path]) -> dict[Path, int]:
    """``{path: mtime_ns}`` of the ``*.py`` files under ``roots``."""
    found: dict[Path, int] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if _watched_dir(Path(folder, d))]
            for name in files:
                if name.endswith(".py"):
                    path = Path(folder, name)
                    try:
                        found[path] = path.stat().st_mtime_ns
                    except FileNotFoundError:
                        pass  # deleted while we looked
    return found


def _watched_dir(path: Path) -> bool:
    if path.name.startswith(".") or path.name in SKIPPED_DIRS:
        return False
    return not (path / "pyvenv.cfg").exists()  # a virtualenv


def syntax_error(path: Path) -> str | None:
    """None if ``path`` compiles, else a one-line description."""
    try:
        compile(path.read_bytes(), str(path), "exec")
    except SyntaxError as exc:
        return f"{exc.filename}:{exc.lineno}: {exc.msg}"
    except (OSError, ValueError) as exc:
        return f"{path}: {exc}"
    return None


def forget_bytecode(paths: Iterable[Path]) -> None:
    """Delete the cached bytecode of ``paths``. Python trusts a .pyc whose
    source has the same size and the same mtime in whole seconds, so an edit
    of the same length within a second of the last import would otherwise
    restart into the old code."""
    for path in paths:
        try:
            Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
        except (OSError, ValueError):  # not writable, or not a .py path: nothing cached
            pass


class Reloader:
    """Calls ``on_change`` (once) when the watched files changed and compile."""

    def __init__(self, roots: Iterable[str | Path], on_change: Callable[[], None]) -> None:
        self.roots = [Path(root) for root in roots]
        self.on_change = on_change
        self._stop = Event()
        self._known = python_files(self.roots)
        self.restart_requested = False

    def start(self) -> None:
        start_thread(self._watch, "reload-watch")

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(INTERVAL):
            changed = self._changes()
            if changed and self._compiles(changed):
                _log.info("reloading: %s changed", ", ".join(sorted(map(str, changed))))
                forget_bytecode(changed)
                self.restart_requested = True
                self.on_change()
                return

    def _changes(self) -> set[Path]:
        """Changed, added or removed files, once they have been quiet a moment."""
        current = python_files(self.roots)
        if current == self._known:
            return set()
        while not self._stop.wait(QUIET):
            settled = python_files(self.roots)
            if settled == current:
                break
            current = settled
        changed = {
            p for p in current.keys() | self._known.keys() if current.get(p) != self._known.get(p)
        }
        self._known = current
        return changed

    def _compiles(self, changed: set[Path]) -> bool:
        errors = [e for e in map(syntax_error, sorted(p for p in changed if p.exists())) if e]
        for error in errors:
            _log.error("not reloading, the running code stays: %s", error)
        return not errors
