"""Shared by the tests of community extensions (tests/compat/test_ext_*.py).

Each extension is installed unchanged with ``pip install --no-deps`` (see
scripts/bootstrap), so the ``nameko`` it imports is shimeji's.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import pytest

import nameko

SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT = 10


def assert_installed_on_shimeji(distribution: str, version: str) -> None:
    """The pinned extension is installed, and the `nameko` it gets is ours."""
    assert importlib.metadata.version(distribution) == version
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("nameko")  # --no-deps held
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
