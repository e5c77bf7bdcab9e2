"""`RetryPolicy`: which failures are tried again, how often, how much later."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RetryPolicy", "as_retry_policy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Try a failed message again later, through the broker.

    ``on``: the exception classes worth retrying (default: any `Exception`).
    ``attempts``: how many attempts in all, the first included. The wait
    before attempt ``n + 1`` is ``delay * multiplier ** (n - 1)``, capped at
    ``max_delay``, then spread by ``jitter`` (0.2: anywhere from 80% to 120%
    of it, never above the cap) so that a burst of failures does not come
    back as a burst. A message that fails its last attempt, or with an
    error not in ``on``, goes to the entrypoint's dead-letter queue
    (``dead_letter=False``: dropped, as without a policy).
    """

    on: tuple[type[BaseException], ...] = (Exception,)
    attempts: int = 3
    delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.2
    dead_letter: bool = True
    _random: Any = field(default=None, repr=False, compare=False)  # tests pass a seeded one

    def __post_init__(self) -> None:
        on = self.on if isinstance(self.on, tuple) else (self.on,)
        object.__setattr__(self, "on", on)
        if not all(isinstance(c, type) and issubclass(c, BaseException) for c in on):
            raise TypeError(f"RetryPolicy(on=...) takes exception classes, not {self.on!r}")
        if self.attempts < 1:
            raise ValueError("RetryPolicy(attempts=...) must be at least 1")
        if self.delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy: delays must be >= 0 and the multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy(jitter=...) is a fraction from 0 to 1")

    def retries(self, exc: BaseException | None, attempt: int) -> bool:
        """Whether attempt ``attempt``, failed with ``exc``, gets another."""
        return exc is not None and isinstance(exc, self.on) and attempt < self.attempts

    def delay_for(self, attempt: int) -> float:
        """Seconds to wait after attempt ``attempt`` (1-based) failed."""
        base = min(self.max_delay, self.delay * self.multiplier ** max(0, attempt - 1))
        spread = (self._random or random).uniform(1 - self.jitter, 1 + self.jitter)
        return min(self.max_delay, base * spread)


def as_retry_policy(value: Any) -> RetryPolicy | None:
    """``retry=`` of an entrypoint: a `RetryPolicy`, a number of attempts,
    True (the defaults) or None/False (no retries)."""
    if value is None or value is False:
        return None
    if value is True:
        return RetryPolicy()
    if isinstance(value, RetryPolicy):
        return value
    if isinstance(value, int):
        return RetryPolicy(attempts=value)
    raise TypeError(f"retry= takes a RetryPolicy or a number of attempts, not {value!r}")
