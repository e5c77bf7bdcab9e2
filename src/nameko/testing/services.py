"""Helpers for testing services (public nameko 2.x path)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import MagicMock, patch

from nameko._concurrency import Event, Lock, deadline_after, remaining
from nameko._reexports import reexported
from nameko._runtime.extensions import DependencyProvider, Entrypoint, is_dependency
from nameko.exceptions import ExtensionNotFound
from nameko.testing.utils import get_extension
from nameko.testing.waiting import WaitResult

__all__ = [
    "EntrypointWaiterTimeout",
    "MockDependencyProvider",
    "Once",
    "dummy",
    "entrypoint_hook",
    "entrypoint_waiter",
    "once",
    "replace_dependencies",
    "restrict_entrypoints",
    "worker_factory",
]

# How often a hook re-checks whether the container died while it waits.
_DEATH_POLL = 0.05


class EntrypointWaiterTimeout(Exception):
    pass


def worker_factory(service_cls: type, **dependencies: Any) -> Any:
    """An instance of ``service_cls`` with every dependency provider replaced
    by the object given for it, or by a `MagicMock`. No container involved."""
    service = service_cls()
    for name, _ in _dependency_attrs(service_cls):
        setattr(service, name, dependencies.pop(name) if name in dependencies else MagicMock())
    if dependencies:
        raise ExtensionNotFound(
            f"DependencyProvider(s) '{dependencies.keys()}' not found on {service_cls}."
        )
    return service


def _dependency_attrs(service_cls: type) -> Iterator[tuple[str, Any]]:
    for name in dir(service_cls):
        value = getattr(service_cls, name, None)
        if is_dependency(value):
            yield name, value


@contextmanager
def entrypoint_waiter(
    container: Any,
    method_name: str,
    timeout: float | None = 30,
    callback: Callable[[Any, Any, Any], bool] | None = None,
) -> Iterator[WaitResult]:
    """On leaving the block, wait until a worker for ``method_name`` has
    finished (``worker_result`` and ``worker_teardown`` done) and, with
    ``callback(worker_ctx, result, exc_info)``, one for which it is truthy."""
    if not any(ep.method_name == method_name for ep in container.entrypoints):
        raise RuntimeError(f"{container.service_name} has no entrypoint `{method_name}`")

    class Result(WaitResult):
        worker_ctx: Any = None

    waiter = Result()
    matched: dict[Any, tuple[Any, Any]] = {}
    done = Event()
    lock = Lock()
    original_result = container._worker_result
    original_teardown = container._worker_teardown

    def worker_result(worker_ctx: Any, result: Any = None, exc_info: Any = None) -> Any:
        ours = worker_ctx.entrypoint.method_name == method_name
        if ours and (callback is None or callback(worker_ctx, result, exc_info)):
            matched[worker_ctx] = (result, exc_info)
        return original_result(worker_ctx, result, exc_info)

    def worker_teardown(worker_ctx: Any) -> Any:
        outcome = original_teardown(worker_ctx)
        with lock:
            if worker_ctx in matched and not done.is_set():
                waiter.worker_ctx = worker_ctx
                waiter.send(*matched.pop(worker_ctx))
                done.set()
        return outcome

    with patch.object(container, "_worker_result", new=worker_result):
        with patch.object(container, "_worker_teardown", new=worker_teardown):
            yield waiter
            if not done.wait(timeout):
                raise EntrypointWaiterTimeout(
                    f"Timeout on {container.service_name}.{method_name} after {timeout} seconds"
                )


# nameko 2.14 API on the function object; mypy does not allow attributes on functions
entrypoint_waiter.Timeout = EntrypointWaiterTimeout  # type: ignore[attr-defined]


@contextmanager
def entrypoint_hook(
    container: Any,
    method_name: str,
    context_data: dict[str, Any] | None = None,
    timeout: float | None = 30,
) -> Iterator[Callable[..., Any]]:
    """Yield a function that runs ``method_name`` in a real worker of
    ``container`` (dependencies injected, no transport) and returns its
    result or raises its exception."""
    entrypoint = get_extension(container, Entrypoint, method_name=method_name)
    if entrypoint is None:
        raise ExtensionNotFound(
            f"No entrypoint for '{method_name}' found on container {container}."
        )

    def hook(*args: Any, **kwargs: Any) -> Any:
        ours: set[Any] = set()

        def mark(worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
            ours.add(worker_ctx)
            return result, exc_info

        with entrypoint_waiter(
            container, method_name, timeout=None, callback=lambda ctx, r, e: ctx in ours
        ) as waiter:
            data = dict(context_data) if context_data is not None else None
            container.spawn_worker(entrypoint, args, kwargs, context_data=data, handle_result=mark)
            _wait_or_die(container, waiter, method_name, timeout)
        return waiter.get()

    yield hook


def _wait_or_die(
    container: Any, waiter: WaitResult, method_name: str, timeout: float | None
) -> None:
    """Wait for ``waiter``; re-raise the container's error if it dies first."""
    deadline = deadline_after(timeout)
    while not waiter.has_result:
        if container._died.ready():
            container.wait()  # raises the error that killed it, if any
            raise RuntimeError(f"{container} stopped before {method_name} finished")
        if remaining(deadline) == 0.0:
            raise EntrypointWaiterTimeout(
                f"Timeout on {container.service_name}.{method_name} after {timeout} seconds"
            )
        container._died.wait(_DEATH_POLL)


class MockDependencyProvider(DependencyProvider):
    def __init__(self, attr_name: str, dependency: Any = None) -> None:
        self.attr_name = attr_name
        self.dependency = MagicMock() if dependency is None else dependency

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.dependency


def replace_dependencies(container: Any, *dependencies: str, **dependency_map: Any) -> Any:
    """Swap named dependency providers for `MockDependencyProvider`s (before
    start). Returns the mock for one positional name, else a generator."""
    if container.started:
        raise RuntimeError("You must replace dependencies before the container is started.")
    names = set(dependencies)
    if names & set(dependency_map):
        raise RuntimeError("Cannot replace the same dependency via both args and kwargs.")
    wanted = names | set(dependency_map)
    found = {d.attr_name: d for d in container.dependencies if d.attr_name in wanted}
    missing = wanted - set(found)
    if missing:
        raise ExtensionNotFound(f"Dependency(s) '{missing}' not found on {container}.")
    replacements = {name: MockDependencyProvider(name) for name in dependencies}
    replacements.update(
        {
            name: MockDependencyProvider(name, dependency=value)
            for name, value in dependency_map.items()
        }
    )
    for name, replacement in replacements.items():
        container.dependencies.remove(found[name])
        container.dependencies.add(replacement)
    mocks = [replacements[name].dependency for name in dependencies]
    return mocks[0] if len(mocks) == 1 else (m for m in mocks)


def restrict_entrypoints(container: Any, *entrypoints: str) -> None:
    """Keep only the entrypoints of the named methods (before start)."""
    if container.started:
        raise RuntimeError("You must restrict entrypoints before the container is started.")
    known = {ep.method_name for ep in container.entrypoints}
    missing = set(entrypoints) - known
    if missing:
        raise ExtensionNotFound(f"Entrypoint(s) '{missing}' not found on {container}.")
    for entrypoint in list(container.entrypoints):
        if entrypoint.method_name not in entrypoints:
            container.entrypoints.remove(entrypoint)


class Once(Entrypoint):
    """Fires one worker with the given arguments when the container starts."""

    def __init__(
        self,
        *args: Any,
        expected_exceptions: Any = (),
        sensitive_arguments: Any = (),
        **kwargs: Any,
    ) -> None:
        self.args = args
        self.kwargs = kwargs
        super().__init__(
            expected_exceptions=expected_exceptions, sensitive_arguments=sensitive_arguments
        )

    def start(self) -> None:
        self.container.spawn_worker(self, self.args, self.kwargs)


once = Once.decorator
dummy = Entrypoint.decorator


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
