"""Fixtures shared by the core tier: every test gets its own in-memory broker."""

from __future__ import annotations

import pytest

from tests.both_brokers import start

__all__ = ["config", "start"]


@pytest.fixture
def config(memory_config):
    return memory_config
