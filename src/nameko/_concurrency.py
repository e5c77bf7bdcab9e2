"""All threading lives here.

shimeji runs user code on plain OS threads: no green threads, no
monkey-patching. Every other module takes its primitives from this one, so
the places where concurrency happens can be found with one grep (an
architecture test enforces it; the AMQP I/O driver is the one exception).

* `WorkerPool`: a bounded pool of worker threads. `submit` never blocks the
  caller (broker dispatch threads call it); at most ``size`` jobs run at once,
  the rest wait in FIFO order. Threads are started lazily and kept.
* `ManagedThread`: a named daemon thread whose crash is reported to a callback.
* `OneShot`: a value or an exception delivered once, waited for with a timeout.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = [
    "Condition",
    "Event",
    "InFlight",
    "Lock",
    "ManagedThread",
    "OneShot",
    "RLock",
    "WorkerPool",
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
ExcInfo = tuple[type[BaseException], BaseException, TracebackType]


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
    """

    __slots__ = ("_event", "_value", "_exc", "_callbacks", "_lock")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._value: T | None = None
        self._exc: BaseException | None = None
        self._callbacks: list[Callable[[OneShot[T]], None]] | None = None
        self._lock = threading.Lock()

    def send(self, value: T) -> bool:
        return self._deliver(value, None)

    def send_exception(self, exc: BaseException) -> bool:
        return self._deliver(None, exc)

    def _deliver(self, value: T | None, exc: BaseException | None) -> bool:
        with self._lock:
            if self._event.is_set():
                return False
            self._value, self._exc = value, exc
            self._event.set()
            callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback(self)
        return True

    def add_done_callback(self, callback: Callable[[OneShot[T]], None]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks = [*(self._callbacks or ()), callback]
                return
        callback(self)

    def ready(self) -> bool:
        return self._event.is_set()

    def exception(self) -> BaseException | None:
        """The exception delivered, if any (call once ready)."""
        return self._exc

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def get(self, timeout: float | None = None) -> T:
        """The value, or raise the exception; `TimeoutError` if not ready in time."""
        if not self._event.wait(timeout):
            raise TimeoutError(timeout)
        if self._exc is not None:
            raise self._exc
        return self._value  # type: ignore[return-value]


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
        except BaseException:
            self._on_error(self, sys.exc_info())  # type: ignore[arg-type]
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
    """At most ``size`` jobs at once on reusable threads; `submit` never blocks."""

    def __init__(self, size: int, name: str = "worker") -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        self.size = size
        self.name = name
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # a job arrived, or closing
        self._changed = threading.Condition(lock)  # a job finished or was dropped
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._running = 0
        self._closed = False

    @property
    def running(self) -> int:
        """Jobs executing right now."""
        return self._running

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet started."""
        return len(self._jobs)

    @property
    def free(self) -> int:
        return self.size - self._running - len(self._jobs)

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            self._jobs.append(job)
            if self._idle:
                self._idle -= 1  # claim one idle thread so the next submit spawns
                self._cond.notify()
            elif len(self._threads) < self.size:
                self._spawn_thread()

    def _spawn_thread(self) -> None:
        thread = threading.Thread(
            target=self._loop, name=f"{self.name}-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._idle += 1
                    self._cond.wait()  # submit() un-counts us when it wakes us
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._running += 1
            try:
                job()  # jobs handle their own errors; the thread must survive
            finally:
                with self._cond:
                    self._running -= 1
                    self._changed.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is running or pending."""
        deadline = deadline_after(timeout)
        with self._cond:
            while self._running or self._jobs:
                left = remaining(deadline)
                if left == 0.0:
                    return False
                self._changed.wait(left)
        return True

    def drop_pending(self) -> list[Callable[[], None]]:
        """Remove and return the jobs that have not started."""
        with self._cond:
            jobs = list(self._jobs)
            self._jobs.clear()
            self._changed.notify_all()
            return jobs

    def close(self) -> None:
        """Let idle threads exit; running jobs finish on their own."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
