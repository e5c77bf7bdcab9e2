"""Shared by the tests of community extensions (tests/compat/test_ext_*.py).

Each extension is installed unchanged with ``pip install --no-deps`` (see
scripts/bootstrap), so the ``nameko`` it imports is shimeji's. The ``nameko``
distribution that pip and importlib.metadata see is shimeji's metadata too
(``src/nameko-<version>.dist-info``, docs/installation.md).
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import nameko

SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT = 10


def assert_installed_on_shimeji(distribution: str, version: str) -> None:
    """The pinned extension is installed, and the `nameko` it gets is ours."""
    assert importlib.metadata.version(distribution) == version
    assert_nameko_is_shimeji()


def assert_nameko_is_shimeji() -> None:
    """The `nameko` package and the distribution metadata that says which
    nameko is installed are shimeji's (no real nameko came in)."""
    claimed = importlib.metadata.distribution("nameko")
    assert claimed.version == nameko.__version__  # the nameko API shimeji provides
    assert (claimed.read_text("INSTALLER") or "").strip() == "shimeji"  # not the real one
    assert Path(str(claimed.locate_file("nameko"))).resolve() == SRC / "nameko"
    assert Path(nameko.__file__).resolve().is_relative_to(SRC)


class LogRecords(logging.Handler):
    """Every record of one logger (and its children), from any thread."""

    def __init__(self, name: str, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.logger = logging.getLogger(name)
        self.records: list[logging.LogRecord] = []
        self._level = self.logger.level

    def __enter__(self) -> LogRecords:
        self.logger.addHandler(self)
        self.logger.setLevel(self.level)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)  # list.append is atomic

    def messages(self, level: int = logging.NOTSET) -> list[str]:
        return [r.getMessage() for r in list(self.records) if r.levelno >= level]
