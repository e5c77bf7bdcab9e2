"""How ``nameko run`` announces its services (a `nameko.cli._features` entry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nameko._presence.announcer import Announcer, presence_enabled

__all__ = ["presence_feature"]


def presence_feature(runner: Any, config: dict[str, Any]) -> Callable[[], None] | None:
    """On unless the config says ``PRESENCE: false``."""
    if not presence_enabled(config):
        return None
    announcer = Announcer(config)
    for container in runner.containers:
        announcer.attach(container)
    announcer.start()
    return announcer.close
