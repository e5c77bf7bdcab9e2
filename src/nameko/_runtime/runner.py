"""ServiceRunner: start, stop and watch several containers together."""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from nameko._concurrency import start_thread
from nameko._global_config import given_or_global
from nameko._runtime.container import get_container_cls
from nameko.utils.concurrency import SpawningProxy

__all__ = ["ServiceRunner", "run_services"]

_log = logging.getLogger("nameko.runners")


class ServiceRunner:
    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.service_map: dict[str, Any] = {}
        config = given_or_global(config)  # nameko 3: no argument, the global config
        self.config = config
        self.container_cls = get_container_cls(config)

    @property
    def service_names(self) -> Any:
        return self.service_map.keys()

    @property
    def containers(self) -> Any:
        return self.service_map.values()

    def add_service(self, cls: type) -> None:
        container = self.container_cls(cls, self.config)
        name = container.service_name
        if name in self.service_map:
            # nameko replaces silently; a second class with one name is
            # almost always a mistake, so at least say so.
            _log.warning("service %r added twice: %r replaces the first", name, cls)
        self.service_map[name] = container

    def start(self) -> None:
        _log.info("starting services: %s", ", ".join(self.service_names))
        SpawningProxy(self.containers).start()
        _log.debug("services started: %s", ", ".join(self.service_names))

    def stop(self) -> None:
        _log.info("stopping services: %s", ", ".join(self.service_names))
        SpawningProxy(self.containers).stop()
        _log.debug("services stopped: %s", ", ".join(self.service_names))

    def kill(self) -> None:
        _log.info("killing services: %s", ", ".join(self.service_names))
        SpawningProxy(self.containers).kill()
        _log.debug("services killed: %s", ", ".join(self.service_names))

    def wait(self) -> None:
        """Block until every container is down; if one dies with an error,
        stop the others and re-raise it."""
        outcomes: queue.Queue[BaseException | None] = queue.Queue()

        def watch(container: Any) -> None:
            try:
                container.wait()
            except BaseException as exc:
                outcomes.put(exc)
            else:
                outcomes.put(None)

        containers = list(self.containers)
        for container in containers:
            start_thread(watch, f"wait:{container.service_name}", container)
        for _ in containers:
            error = outcomes.get()
            if error is not None:
                self.stop()
                raise error


@contextmanager
def run_services(
    config: Any = None, *services: type, kill_on_exit: bool = False
) -> Iterator[ServiceRunner]:
    """``run_services(config, *services)`` (2.x) or ``run_services(*services)``
    (nameko 3, global config): run the services for the duration of the
    block. Unlike nameko 2.14 they are stopped (or killed) even when the
    block raises."""
    if config is not None and not isinstance(config, Mapping):
        config, services = None, (config, *services)  # nameko 3: no config first
    runner = ServiceRunner(config)
    for service in services:
        runner.add_service(service)
    runner.start()
    try:
        yield runner
    finally:
        if kill_on_exit:
            runner.kill()
        else:
            runner.stop()
