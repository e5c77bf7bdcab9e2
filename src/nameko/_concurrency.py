"""All threading lives here.

shimeji runs user code on plain OS threads: no green threads, no
monkey-patching. Every other module takes its primitives from this one, so
the places where concurrency happens can be found with one grep (an
architecture test enforces it; the AMQP I/O driver is the one exception).

* `WorkerPool`: a bounded pool of worker threads. `submit` never blocks the
  caller (broker dispatch threads call it); at most ``size`` jobs run at once,
  the rest wait in FIFO order. Threads are started lazily and kept, or, with
  ``idle_timeout``, retired after that long without a job.
* `ManagedThread`: a named daemon thread whose crash is reported to a callback.
* `OneShot`: a value or an exception delivered once, waited for with a timeout.
* `Slots`: admission for work that does not hold a thread while it runs
  (coroutines): at most ``size`` admitted at once, the rest wait in FIFO order.
"""

from __future__ import annotations

import collections
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

__all__ = [
    "Condition",
    "Event",
    "InFlight",
    "Lock",
    "ManagedThread",
    "OneShot",
    "RLock",
    "Slots",
    "ThreadHandle",
    "WorkerPool",
    "current_thread_handle",
    "current_thread_name",
    "deadline_after",
    "remaining",
    "start_thread",
]

Lock = threading.Lock
RLock = threading.RLock
Condition = threading.Condition
Event = threading.Event

T = TypeVar("T")
log = logging.getLogger(__name__)
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def start_thread(
    target: Callable[..., Any], name: str, *args: Any, daemon: bool = True
) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, args=args, daemon=daemon)
    thread.start()
    return thread


def current_thread_name() -> str:
    return threading.current_thread().name


def current_thread() -> threading.Thread:
    return threading.current_thread()


class ThreadHandle:
    """A running thread seen the way nameko's tools saw a greenlet.

    nameko 2.x mapped each running worker to its greenlet, and debugging
    extensions print a worker's stack from ``greenlet.gr_frame``. Here
    `gr_frame` is the thread's current frame (None once it has finished);
    anything else is the `threading.Thread`'s own attribute.
    """

    __slots__ = ("thread",)

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread

    @property
    def gr_frame(self) -> Any:
        ident = self.thread.ident
        return None if ident is None else sys._current_frames().get(ident)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.thread, name)

    def __repr__(self) -> str:
        return f"<ThreadHandle {self.thread.name!r}>"


def current_thread_handle() -> ThreadHandle:
    return ThreadHandle(threading.current_thread())


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (never negative), None for no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class OneShot(Generic[T]):
    """A result delivered once (value or exception); later sends are ignored.

    `add_done_callback` callbacks run in the thread that delivers the result
    (often a broker's I/O thread: keep them short and non-blocking), or at
    once in the caller's thread if the result is already there.

    Why a bare lock and not `threading.Event`: every RPC call makes one and
    waits on it, and `Event.wait` builds a waiter lock and runs a `Condition`
    in Python each time. Here ``_gate`` is created held; delivering releases
    it, and a waiter acquires it (a C call that sleeps in the kernel) and
    hands it straight back so every other waiter gets through as well.
    """

    __slots__ = ("_gate", "_mutex", "_done", "_value", "_exc", "_callbacks")

    def __init__(self) -> None:
        self._gate = threading.Lock()
        self._gate.acquire()
        self._mutex = threading.Lock()  # makes "deliver once" atomic
        self._done = False
        self._value: T | None = None
        self._exc: BaseException | None = None
        self._callbacks: list[Callable[[OneShot[T]], None]] | None = None

    def send(self, value: T) -> bool:
        return self._deliver(value, None)

    def send_exception(self, exc: BaseException) -> bool:
        return self._deliver(None, exc)

    def _deliver(self, value: T | None, exc: BaseException | None) -> bool:
        with self._mutex:
            if self._done:
                return False
            self._value, self._exc = value, exc
            self._done = True
            callbacks, self._callbacks = self._callbacks, None
        self._gate.release()
        for callback in callbacks or ():
            callback(self)
        return True

    def add_done_callback(self, callback: Callable[[OneShot[T]], None]) -> None:
        with self._mutex:
            if not self._done:
                self._callbacks = [*(self._callbacks or ()), callback]
                return
        callback(self)

    def ready(self) -> bool:
        return self._done

    def exception(self) -> BaseException | None:
        """The exception delivered, if any (call once ready)."""
        return self._exc

    def wait(self, timeout: float | None = None) -> bool:
        if self._done:
            return True
        if timeout is None:
            acquired = self._gate.acquire()
        else:
            acquired = self._gate.acquire(timeout=min(max(0.0, timeout), threading.TIMEOUT_MAX))
        if acquired:
            self._gate.release()  # let the next waiter through
            return True
        return self._done

    def get(self, timeout: float | None = None) -> T:
        """The value, or raise the exception; `TimeoutError` if not ready in time."""
        if not self.wait(timeout):
            raise TimeoutError(timeout)
        if self._exc is not None:
            raise self._exc
        return cast(T, self._value)  # sent with `send`: a T (which may include None)


class InFlight:
    """Counts operations under way; `wait_idle` blocks until none is left."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return self._count

    def add(self) -> None:
        with self._cond:
            self._count += 1

    def done(self) -> None:
        with self._cond:
            self._count -= 1
            if not self._count:
                self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._count, timeout)


class ManagedThread:
    """A daemon thread running ``fn``; an escaping exception goes to ``on_error``."""

    def __init__(
        self,
        fn: Callable[[], Any],
        name: str,
        on_error: Callable[[ManagedThread, ExcInfo], None],
        on_exit: Callable[[ManagedThread], None],
    ) -> None:
        self.fn = fn
        self.name = name
        self._on_error = on_error
        self._on_exit = on_exit
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> ManagedThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.fn()
        except BaseException as exc:
            self._on_error(self, (type(exc), exc, exc.__traceback__))
        finally:
            self._on_exit(self)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def is_current(self) -> bool:
        return self._thread is threading.current_thread()


class WorkerPool:
    """At most ``size`` jobs at once on reusable threads; `submit` never blocks.

    Jobs travel through a `queue.SimpleQueue`, whose put and get are C calls:
    handing a request to a worker costs one kernel wake-up and no Python-level
    `Condition` (this is on every call's path). ``_lock`` only guards the
    counters that decide when to start another thread.
    """

    def __init__(self, size: int, name: str = "worker", idle_timeout: float | None = None) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        self.size = size
        self.name = name
        # a thread with no job for this long exits (None: threads are kept)
        self.idle_timeout = idle_timeout or None
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)  # busy fell to 0
        self._threads: list[threading.Thread] = []
        self._spawned = 0  # threads ever started: names stay unique as threads retire
        self._busy = 0  # jobs submitted and not finished (pending + running)
        self._idle_waiters = 0  # threads in `wait_idle`
        self._closed = False

    @property
    def threads(self) -> int:
        """Threads alive in the pool (started and not retired)."""
        return len(self._threads)

    # running() and free() are methods, as on eventlet's GreenPool that nameko
    # containers had: instrumentation reads ``container._worker_pool.running()``.

    def running(self) -> int:
        """Jobs executing right now."""
        return self._busy - self._jobs.qsize()

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet started."""
        return self._jobs.qsize()

    def free(self) -> int:
        """Threads a job could start on now (negative while jobs wait)."""
        return self.size - self._busy

    def submit(self, job: Callable[[], None], max_pending: int | None = None) -> bool:
        """Queue ``job``; False (and not queued) if ``max_pending`` jobs already wait."""
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            if max_pending is not None and self._busy - self.size >= max_pending:
                return False
            self._busy += 1
            if self._busy > len(self._threads) and len(self._threads) < self.size:
                self._spawn_thread()
        self._jobs.put(job)
        return True

    def _spawn_thread(self) -> None:
        self._spawned += 1
        thread = threading.Thread(
            target=self._loop, name=f"{self.name}-{self._spawned}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _loop(self) -> None:
        get, timeout = self._jobs.get, self.idle_timeout
        while True:
            try:
                job = get(timeout=timeout)
            except queue.Empty:
                if self._retire():
                    return
                continue
            if job is None:  # `close`
                return
            try:
                job()
            except Exception:  # jobs handle their own errors; this is a last resort
                log.exception("unhandled error in a job of worker pool %s", self.name)
            finally:
                # drop it now, not when the next job comes: a finished job
                # must not keep its arguments (a large request) alive
                job = None
                self._finished(1)

    def _retire(self) -> bool:
        """An idle thread leaves unless every other thread is needed for the jobs.

        `submit` counts a job in ``_busy`` (under the lock) before queueing
        it, so while ``_busy`` is below the other threads' number, each job
        submitted or running has a thread without this one.
        """
        with self._lock:
            if self._busy >= len(self._threads):
                return False
            self._threads.remove(threading.current_thread())
            return True

    def _finished(self, count: int) -> None:
        with self._lock:
            self._busy -= count
            if not self._busy and self._idle_waiters:
                self._drained.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is running or pending."""
        with self._lock:
            self._idle_waiters += 1
            try:
                return self._drained.wait_for(lambda: not self._busy, timeout)
            finally:
                self._idle_waiters -= 1

    def drop_pending(self) -> list[Callable[[], None]]:
        """Remove and return the jobs that have not started."""
        jobs: list[Callable[[], None]] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:  # a `close` marker: keep it for its thread
                self._jobs.put(None)
                break
            jobs.append(job)
        if jobs:
            self._finished(len(jobs))
        return jobs

    def close(self) -> None:
        """Let idle threads exit; running and pending jobs finish first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = len(self._threads)
        for _ in range(threads):
            self._jobs.put(None)


class Slots:
    """At most ``size`` jobs admitted at once; `admit` never blocks.

    A job is a starter: a callable that launches work somewhere (a pool
    thread, an event loop) and arranges for `release` when that work ends.
    A starter admitted while no slot is free waits in FIFO order and is run
    by the `release` that frees its slot, on that thread.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._free = size
        self._waiting: collections.deque[Callable[[], None]] = collections.deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def admit(self, start: Callable[[], None], max_pending: int | None = None) -> bool:
        """Run ``start`` now if a slot is free, else queue it; False (and not
        queued) if ``max_pending`` starters already wait."""
        with self._lock:
            if not self._free:
                if max_pending is not None and len(self._waiting) >= max_pending:
                    return False
                self._waiting.append(start)
                return True
            self._free -= 1
        start()
        return True

    def release(self) -> None:
        """A job ended: its slot goes to the oldest waiting starter, if any."""
        with self._lock:
            if not self._waiting:
                self._free += 1
                if self._free == self.size:
                    self._idle.notify_all()
                return
            start = self._waiting.popleft()
        start()

    def drop_pending(self) -> list[Callable[[], None]]:
        """Remove and return the starters still waiting for a slot."""
        with self._lock:
            dropped, self._waiting = list(self._waiting), collections.deque()
            if self._free == self.size:
                self._idle.notify_all()
        return dropped

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every admitted job is released (False on timeout)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._free == self.size, timeout)
