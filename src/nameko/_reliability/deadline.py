"""The ``Deadline`` dependency: a worker's view of its caller's deadline."""

from __future__ import annotations

import time
from typing import Any

from nameko._runtime.extensions import DependencyProvider
from nameko.exceptions import DeadlineExceeded

__all__ = ["CallBudget", "Deadline"]


class CallBudget:
    """What is left of the caller's budget for this worker.

    ``deadline`` is Unix time in seconds, or None when the caller set no
    timeout (then `remaining` is None and `check` never raises)."""

    __slots__ = ("deadline", "_where")

    def __init__(self, deadline: float | None, where: str = "") -> None:
        self.deadline = deadline
        self._where = where

    def remaining(self) -> float | None:
        """Seconds left (negative once passed), or None without a deadline."""
        return None if self.deadline is None else self.deadline - time.time()

    @property
    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def check(self) -> None:
        """Raise `DeadlineExceeded` if the caller has stopped waiting: for
        long loops that should give up rather than finish for nobody."""
        left = self.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceeded(f"{self._where}: the caller's deadline passed {-left:.3f} s ago")

    def __repr__(self) -> str:
        return f"<CallBudget remaining={self.remaining()!r}>"


class Deadline(DependencyProvider):
    """Injects a `CallBudget`: ``self.deadline.remaining()`` in an ``@rpc``
    method is the time until its caller gives up (None without a timeout).
    Nested calls inherit the budget on their own; this is for the method's
    own work (a database statement timeout, a loop that should stop)."""

    def get_dependency(self, worker_ctx: Any) -> CallBudget:
        where = f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}"
        return CallBudget(getattr(worker_ctx, "deadline", None), where)
