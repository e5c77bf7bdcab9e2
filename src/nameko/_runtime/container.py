"""ServiceContainer: hosts one service class and runs its workers.

How it works
------------
Construction binds every extension declared on the service class (SPEC 2.3):
dependency providers under their attribute names, entrypoints under their
method names, and their sub-extensions (shared ones once per container).

`start` runs ``setup()`` then ``start()`` on all extensions concurrently.
From then on entrypoints call `spawn_worker` whenever something happens (an
RPC request, a timer tick). `spawn_worker` never blocks: it builds the
`WorkerContext` and queues the worker on a pool of at most ``max_workers``
OS threads. Broker consumers limit what can queue up by their prefetch.

A worker runs the lifecycle of SPEC 2.4 on its pool thread: inject
dependencies, ``worker_setup``, call the method, the entrypoint's
``handle_result`` (e.g. send the RPC reply, then ack), ``worker_result``,
``worker_teardown``. We differ from nameko 2.14 on purpose: a failing
provider hook does not kill the container. A failure while injecting or
setting up becomes the worker's error (the caller gets it); a failure in a
later hook is logged at ERROR and the remaining hooks still run. Hooks after
setup only run for providers whose setup ran.

A service with ``async def`` entrypoints also gets an event loop thread
(`nameko._aio.workers`): those workers run there, through the same steps
(`_start_worker`, await the method, `_end_worker`), and every worker of the
service, sync or async, is admitted through `Slots`, so ``max_workers``
bounds both kinds together and a waiting coroutine holds no thread.

`stop` is graceful: entrypoints stop (consumers cancelled), running and
queued workers finish, then dependencies and sub-extensions stop. `kill`
can't kill threads: it kills extensions (consumers close their channels so
unacked messages are requeued), drops queued workers and stops waiting for
running ones. Either way `wait` returns (or re-raises the error that caused
a kill) once the container is down.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from functools import partial
from inspect import getmembers, isfunction
from typing import TYPE_CHECKING, Any

from nameko import serialization
from nameko._aio.detect import ASYNC_DRAIN_TIMEOUT_CONFIG_KEY, is_async_method
from nameko._concurrency import (
    Event,
    Lock,
    ManagedThread,
    OneShot,
    Slots,
    ThreadHandle,
    WorkerPool,
    current_thread_handle,
)
from nameko._global_config import given_or_global
from nameko._runtime.extensions import (
    ENTRYPOINT_EXTENSIONS_ATTR,
    Entrypoint,
    Extension,
    is_dependency,
    iter_extensions,
)
from nameko._runtime.observers import WorkerObserver, notify_finished, notify_started
from nameko._runtime.worker import WorkerContext
from nameko._tracing import tracing_for
from nameko.constants import DEFAULT_MAX_WORKERS, MAX_WORKERS_CONFIG_KEY
from nameko.exceptions import (
    ConfigurationError,
    ContainerBeingKilled,
    DeadlineExceeded,
    Overloaded,
)
from nameko.log_helpers import make_timing_logger
from nameko.utils import import_from_path
from nameko.utils.concurrency import SpawningSet

if TYPE_CHECKING:
    from nameko._aio.workers import AsyncWorkers

__all__ = ["ServiceContainer", "get_container_cls", "get_service_name"]

_log = logging.getLogger("nameko.containers")
_log_time = make_timing_logger(_log)

HandleResult = Callable[[WorkerContext, Any, Any], tuple[Any, Any]]


def get_service_name(service_cls: type) -> str:
    name = getattr(service_cls, "name", None)
    where = f"{service_cls.__module__}.{service_cls.__name__}"
    if name is None:
        raise ConfigurationError(f"Service class must define a `name` attribute ({where})")
    if not isinstance(name, str):
        raise ConfigurationError(f"Service name attribute must be a string ({where}.name)")
    return name


def get_container_cls(config: Mapping[str, Any] | None = None) -> type[ServiceContainer]:
    config = given_or_global(config)
    return import_from_path(config.get("SERVICE_CONTAINER_CLS")) or ServiceContainer


class ServiceContainer:
    def __init__(self, service_cls: type, config: Mapping[str, Any] | None = None) -> None:
        self.service_cls = service_cls
        config = given_or_global(config)  # nameko 3: no argument, the global config
        self.config = config
        self.service_name = get_service_name(service_cls)
        self.shared_extensions: dict[Any, Extension] = {}
        self.max_workers = config.get(MAX_WORKERS_CONFIG_KEY) or DEFAULT_MAX_WORKERS
        self.serializer, self.accept = serialization.setup(config)

        self.entrypoints: SpawningSet = SpawningSet()
        self.dependencies: SpawningSet = SpawningSet()
        self.subextensions: SpawningSet = SpawningSet()
        self._bind_extensions()

        self.started = False
        #: every extension has started (`started` is set when starting begins): readiness
        self.start_completed = False
        #: metrics, traces... (`nameko._runtime.observers`): see every worker begin and end
        self.worker_observers: list[WorkerObserver] = []
        tracing = tracing_for(config)  # TRACING: a span per worker (nameko._tracing)
        if tracing is not None:
            self.worker_observers.append(tracing.observer)
        self._worker_pool = WorkerPool(self.max_workers, name=f"{self.service_name}-worker")
        # worker -> its thread; ``gr_frame`` gives its stack, as nameko's greenlets did
        self._worker_threads: dict[WorkerContext, ThreadHandle] = {}
        self._managed_threads: dict[ManagedThread, str] = {}
        self._lock = Lock()
        self._being_killed = False
        self._stopping = False
        self._died: OneShot[Any] = OneShot()
        # set once `start` has returned or raised: a stop that arrives while the
        # extensions are still starting (SIGTERM during a slow start) waits for
        # them, or it would stop what is not there yet and they would start after
        self._start_returned = Event()
        # With ``async def`` entrypoints, every worker (sync or async) is
        # admitted through `Slots`: ``max_workers`` bounds both kinds together.
        self._slots: Slots | None = None
        self._async_workers: AsyncWorkers | None = None
        if self._async_methods:
            from nameko._aio.workers import AsyncWorkers  # asyncio only for ``async def``

            self._slots = Slots(self.max_workers)
            self._async_workers = AsyncWorkers(self, self._slots)

    def _bind_extensions(self) -> None:
        async_methods = set()
        for attr_name, dependency in getmembers(self.service_cls, is_dependency):
            bound = dependency.bind(self.interface, attr_name)
            self.dependencies.add(bound)
            self.subextensions.update(iter_extensions(bound))
        for method_name, method in getmembers(self.service_cls, isfunction):
            for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                bound = entrypoint.bind(self.interface, method_name)
                self.entrypoints.add(bound)
                self.subextensions.update(iter_extensions(bound))
                if is_async_method(method):
                    async_methods.add(method_name)
        self._async_methods = frozenset(async_methods)

    @property
    def extensions(self) -> SpawningSet:
        return SpawningSet(self.entrypoints | self.dependencies | self.subextensions)

    @property
    def interface(self) -> ServiceContainer:
        return self

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._stopping or self._being_killed:
                _log.debug("not starting %s: it was stopped first", self)
                return
            self.started = True
        _log.debug("starting %s", self)
        try:
            if self._async_workers is not None:
                self._async_workers.start()
            with _log_time("started %s", self):
                self.extensions.all.setup()
                self.extensions.all.start()
            self.start_completed = True
        finally:
            self._start_returned.set()

    def stop(self) -> None:
        with self._lock:
            if self._died.ready():
                _log.debug("already stopped %s", self)
                return
            joining = self._being_killed or self._stopping
            self._stopping = True
        if joining:
            self._died.wait()
            return
        if self.started:
            self._start_returned.wait()
        _log.debug("stopping %s", self)
        with _log_time("stopped %s", self):
            self.entrypoints.all.stop()
            if self._async_workers is not None:
                self._async_workers.drain(self.config.get(ASYNC_DRAIN_TIMEOUT_CONFIG_KEY))
            self._worker_pool.wait_idle()
            self.dependencies.all.stop()
            self.subextensions.all.stop()
            self._abandon_managed_threads()
            self.started = False
            self._worker_pool.close()
            self._stop_loop()
            self._died.send(None)

    def kill(self, exc_info: Any = None) -> None:
        with self._lock:
            joining = self._being_killed
            self._being_killed = True
        if joining:
            self._died.wait()
            return
        if self._died.ready():
            return
        if exc_info is not None:
            _log.info("killing %s due to %s", self, exc_info[1])
        else:
            _log.info("killing %s", self)
        self._kill_all(self.entrypoints)
        self._abandon_workers()
        self._kill_all(self.extensions - self.entrypoints)
        self._abandon_managed_threads()
        self.started = False
        self._stop_loop()
        self._died.send(exc_info)

    @property
    def stopping(self) -> bool:
        """True from the moment `stop` or `kill` begins (shimeji: readiness)."""
        return self._stopping or self._being_killed

    def _stop_loop(self) -> None:
        if self._async_workers is not None:
            self._async_workers.stop()

    def wait(self) -> None:
        exc_info = self._died.get()
        if exc_info is not None:
            raise exc_info[1].with_traceback(exc_info[2])

    def _kill_all(self, extensions: set[Extension]) -> None:
        for extension in extensions:
            try:
                extension.kill()
            except Exception as exc:
                _log.warning("Extension raised `%s` during kill", exc, exc_info=True)

    def _abandon_workers(self) -> None:
        if self._async_workers is not None:
            self._async_workers.kill()
        dropped = self._worker_pool.drop_pending()
        for job in dropped:  # a job that must answer someone (an HTTP request) says so
            cancel = getattr(job, "cancel", None)
            if cancel is not None:
                _call_hook(cancel)
        running = self._worker_pool.running()
        if dropped or running:
            # Threads can't be killed: running workers finish in the background,
            # their acks are no-ops because the consumers' channels are closed.
            _log.warning("killing %d active workers(s)", running + len(dropped))
        self._worker_pool.close()

    def _abandon_managed_threads(self) -> None:
        alive = [t for t in list(self._managed_threads) if t.is_alive() and not t.is_current]
        if alive:
            _log.warning("killing %d managed thread(s)", len(alive))
            for thread in alive:
                _log.warning("killing managed thread `%s`", thread.name)

    # -- workers -----------------------------------------------------------

    def spawn_worker(
        self,
        entrypoint: Entrypoint,
        args: Any,
        kwargs: Any,
        context_data: dict[str, Any] | None = None,
        handle_result: HandleResult | None = None,
        *,
        max_pending: int | None = None,
    ) -> WorkerContext:
        """Queue a worker for ``entrypoint``; never blocks.

        ``max_pending`` is admission control (a shimeji addition): if that
        many workers already wait for a free thread, raise `Overloaded`
        instead of queueing another. Broker entrypoints don't need it (their
        prefetch bounds the queue); the HTTP entrypoint does.
        """
        if self._being_killed:
            _log.info("Worker spawn prevented due to being killed")
            raise ContainerBeingKilled()
        worker_ctx = self._new_worker(entrypoint, args, kwargs, context_data)
        _log.debug("spawning %s", worker_ctx)
        if self._slots is None:
            job = partial(self._run_worker_guarded, worker_ctx, handle_result)
            admitted = self.submit_job(job, max_pending)
        else:
            admitted = self._slots.admit(self._starter(worker_ctx, handle_result), max_pending)
        if not admitted:
            raise Overloaded(f"{self.service_name}: {max_pending} workers already waiting")
        return worker_ctx

    def _starter(self, worker_ctx: WorkerContext, handle_result: Any) -> Callable[[], None]:
        """What the slots run once the worker may start: a task on the loop for
        an ``async def`` method, a pool job for a sync one."""
        assert self._async_workers is not None and self._slots is not None
        if worker_ctx.entrypoint.method_name in self._async_methods:
            return self._async_workers.starter(worker_ctx, handle_result)
        release = self._slots.release

        def run() -> None:
            try:
                self._run_worker_guarded(worker_ctx, handle_result)
            finally:
                release()

        def start() -> None:
            self._worker_pool.submit(run)

        return start

    def _new_worker(
        self, entrypoint: Entrypoint, args: Any, kwargs: Any, context_data: Any
    ) -> WorkerContext:
        return WorkerContext(self, self.service_cls(), entrypoint, args, kwargs, data=context_data)

    def submit_job(self, job: Callable[[], None], max_pending: int | None = None) -> bool:
        """Run ``job`` on the worker pool (False if ``max_pending`` jobs already wait).

        For entrypoints that do their own work before a worker (the HTTP
        entrypoint parses and routes a request) and then call `run_worker`
        on the same thread, so one request costs one pool slot, not two.
        """
        if self._being_killed:
            raise ContainerBeingKilled()
        return self._worker_pool.submit(job, max_pending)

    def run_worker(
        self,
        entrypoint: Entrypoint,
        args: Any,
        kwargs: Any,
        context_data: dict[str, Any] | None = None,
        handle_result: HandleResult | None = None,
    ) -> WorkerContext:
        """Run a worker now, on this thread, which must be a job of `submit_job`
        (an ``async def`` method runs on the loop while this thread waits)."""
        worker_ctx = self._new_worker(entrypoint, args, kwargs, context_data)
        if self._async_workers is not None and entrypoint.method_name in self._async_methods:
            ended: OneShot[None] = OneShot()
            self._async_workers.spawn(worker_ctx, handle_result, partial(ended.send, None))
            ended.wait()
        else:
            self._run_worker_guarded(worker_ctx, handle_result)
        return worker_ctx

    def _run_worker_guarded(self, worker_ctx: WorkerContext, handle_result: Any) -> None:
        self._worker_threads[worker_ctx] = current_thread_handle()
        try:
            self._run_worker(worker_ctx, handle_result)
        except BaseException:
            # Only BaseExceptions (SystemExit...) and bugs get here.
            self._thread_crashed(worker_ctx, sys.exc_info())
        finally:
            self._worker_threads.pop(worker_ctx, None)

    def _run_worker(self, worker_ctx: WorkerContext, handle_result: Any) -> None:
        providers, exc_info = self._start_worker(worker_ctx)
        result = None
        if exc_info is None:
            worker_ctx._collect_in_flight()
            result, exc_info = self._call_method(worker_ctx)
            result, exc_info = self._settle_in_flight(worker_ctx, result, exc_info)
        self._end_worker(worker_ctx, handle_result, providers, result, exc_info)

    # the two halves around the method call, shared with async workers (nameko._aio.workers)

    def _start_worker(self, worker_ctx: WorkerContext) -> tuple[list[Any], Any]:
        if self.worker_observers:
            notify_started(self.worker_observers, worker_ctx)
        late = worker_ctx.time_remaining()
        if late is not None and late <= 0:
            # The caller has stopped waiting: running the method now would be
            # work for nobody (and, for a write, a surprise). It fails with
            # DeadlineExceeded instead, so the request is answered and acked.
            _log.warning("not starting %s: its deadline passed %.3f s ago", worker_ctx, -late)
            worker_ctx._providers_set_up = []  # so no provider hook runs for it
            return [], _deadline_exceeded(worker_ctx, -late)
        _log.debug("setting up %s", worker_ctx)
        return self._inject_and_setup(worker_ctx)

    def _end_worker(
        self,
        worker_ctx: WorkerContext,
        handle_result: Any,
        providers: list[Any],
        result: Any,
        exc_info: Any,
    ) -> None:
        if handle_result is not None:
            result, exc_info = self._handle_result(handle_result, worker_ctx, result, exc_info)
        self._worker_result(worker_ctx, result, exc_info)
        self._worker_teardown(worker_ctx)
        if self.worker_observers:
            notify_finished(self.worker_observers, worker_ctx, result, exc_info)

    def _inject_and_setup(self, worker_ctx: WorkerContext) -> tuple[list[Any], Any]:
        providers: list[Any] = []
        worker_ctx._providers_set_up = providers  # filled by `_worker_setup`
        try:
            self._inject_dependencies(worker_ctx)
            self._worker_setup(worker_ctx)
        except Exception as exc:
            _log.error("error setting up worker %s: %s", worker_ctx, exc, exc_info=True)
            return providers, sys.exc_info()
        return providers, None

    # The per-worker hooks have nameko's names and signatures (2.14 and 3.0):
    # instrumentation such as opentelemetry-instrumentation-nameko wraps
    # `_worker_setup` and `_worker_result` on the class, and they run at the
    # same moments, for sync and async workers alike: setup before the method,
    # result after the entrypoint handled the result, then teardown.

    def _inject_dependencies(self, worker_ctx: WorkerContext) -> None:
        for provider in self.dependencies:
            dependency = provider.get_dependency(worker_ctx)
            setattr(worker_ctx.service, provider.attr_name, dependency)

    def _worker_setup(self, worker_ctx: WorkerContext) -> None:
        set_up = getattr(worker_ctx, "_providers_set_up", None)
        if set_up is None:  # called on its own (a test, a subclass): start the list
            set_up = worker_ctx._providers_set_up = []
        for provider in self.dependencies:
            provider.worker_setup(worker_ctx)
            set_up.append(provider)

    def _call_method(self, worker_ctx: WorkerContext) -> tuple[Any, Any]:
        method = getattr(worker_ctx.service, worker_ctx.entrypoint.method_name)
        try:
            return method(*worker_ctx.args, **worker_ctx.kwargs), None
        except Exception as exc:
            self._log_worker_error(worker_ctx, exc)
            return None, sys.exc_info()

    def _log_worker_error(self, worker_ctx: WorkerContext, exc: BaseException) -> None:
        expected = worker_ctx.entrypoint.expected_exceptions
        if expected and isinstance(exc, expected):
            _log.warning("(expected) error handling worker %s: %s", worker_ctx, exc, exc_info=True)
        else:
            _log.error("error handling worker %s: %s", worker_ctx, exc, exc_info=True)

    def _settle_in_flight(
        self, worker_ctx: WorkerContext, result: Any, exc_info: Any
    ) -> tuple[Any, Any]:
        """Finish what the method left in flight (`WorkerContext.before_result`)
        until something fails: that fails a worker that had succeeded, and the
        rest is not waited for (a failed worker promises nothing, and waiting
        out retries for each message of a lost connection would hold it up)."""
        in_flight = worker_ctx._take_in_flight()
        for done, wait in enumerate(in_flight):
            try:
                wait()
            except Exception as exc:
                _log.error(
                    "error settling worker %s (%d of %d sent not waited for): %s",
                    *(worker_ctx, len(in_flight) - done - 1, len(in_flight), exc),
                    exc_info=True,
                )
                return (None, sys.exc_info()) if exc_info is None else (result, exc_info)
        return result, exc_info

    def _handle_result(
        self, handle_result: HandleResult, worker_ctx: WorkerContext, result: Any, exc_info: Any
    ) -> tuple[Any, Any]:
        try:
            return handle_result(worker_ctx, result, exc_info)
        except Exception as exc:
            _log.error("error handling result of %s: %s", worker_ctx, exc, exc_info=True)
            return result, exc_info

    def _worker_result(self, worker_ctx: WorkerContext, result: Any, exc_info: Any) -> None:
        _log.debug("signalling result for %s", worker_ctx)
        for provider in _set_up_providers(worker_ctx, self.dependencies):
            _call_hook(provider.worker_result, worker_ctx, result, exc_info)

    def _worker_teardown(self, worker_ctx: WorkerContext) -> None:
        _log.debug("tearing down %s", worker_ctx)
        for provider in _set_up_providers(worker_ctx, self.dependencies):
            _call_hook(provider.worker_teardown, worker_ctx)

    # -- managed threads ---------------------------------------------------

    def spawn_managed_thread(self, fn: Callable[[], Any], identifier: str | None = None) -> Any:
        if identifier is None:
            identifier = getattr(fn, "__name__", "<unknown>")
        thread = ManagedThread(
            fn,
            identifier,
            on_error=self._managed_thread_crashed,
            on_exit=self._managed_thread_exited,
        )
        self._managed_threads[thread] = identifier
        return thread.start()

    def _managed_thread_crashed(self, thread: ManagedThread, exc_info: Any) -> None:
        self._thread_crashed(thread.name, exc_info)

    def _managed_thread_exited(self, thread: ManagedThread) -> None:
        self._managed_threads.pop(thread, None)

    def _thread_crashed(self, what: Any, exc_info: Any) -> None:
        _log.critical("%s thread exited with error (%s)", self, what, exc_info=exc_info)
        self.kill(exc_info)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.service_name}] at 0x{id(self):x}>"


def _deadline_exceeded(worker_ctx: WorkerContext, late: float) -> tuple[Any, ...]:
    method = f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}"
    exc = DeadlineExceeded(f"{method} not started: the caller's deadline passed {late:.3f} s ago")
    return (DeadlineExceeded, exc, None)


def _set_up_providers(worker_ctx: WorkerContext, default: set[Any]) -> Any:
    # Called by entrypoint_hook-style callers too, where the worker never ran
    # through `_run_worker`: then every provider counts as set up.
    return getattr(worker_ctx, "_providers_set_up", default)


def _call_hook(hook: Callable[..., Any], *args: Any) -> None:
    try:
        hook(*args)
    except Exception as exc:
        _log.error("%s failed: %s", hook, exc, exc_info=True)
