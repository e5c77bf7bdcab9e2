"""Fixtures for the asyncio tier: each test runs on both brokers."""

from __future__ import annotations

from tests.both_brokers import config, start

__all__ = ["config", "start"]
