"""``@retry``: call again on failure, with (optionally growing) pauses."""

from __future__ import annotations

import functools
from collections.abc import Callable
from time import sleep
from typing import Any

__all__ = ["RetryDelay", "retry"]


class RetryDelay:
    """Successive delays ``delay * backoff**n``, capped at ``max_delay``."""

    def __init__(self, delay: float, backoff: float, max_delay: float | None) -> None:
        self.delay = delay
        self.backoff = backoff
        self.max_delay = max_delay

    def next(self) -> float:
        """The next delay (and advance)."""
        current = self.delay
        self.delay *= self.backoff
        if self.max_delay is not None:
            current = min(current, self.max_delay)
        return current


def retry(
    wrapped: Callable[..., Any] | None = None,
    for_exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    max_attempts: int | None = 3,
    delay: float = 1,
    backoff: float = 1,
    max_delay: float | None = None,
) -> Any:
    """Decorator (bare or with arguments): re-call on ``for_exceptions``.

    The function runs up to ``max_attempts + 1`` times (forever with None);
    the last failure propagates. As in nameko, one `RetryDelay` is shared by
    all calls of the decorated function, so the backoff keeps growing across
    calls rather than restarting for each.
    """
    if wrapped is None:
        return functools.partial(
            retry,
            for_exceptions=for_exceptions,
            max_attempts=max_attempts,
            delay=delay,
            backoff=backoff,
            max_delay=max_delay,
        )

    delays = RetryDelay(delay, backoff, max_delay)

    @functools.wraps(wrapped)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        failures = 0
        while True:
            try:
                return wrapped(*args, **kwargs)
            except for_exceptions:
                failures += 1
                if max_attempts is not None and failures > max_attempts:
                    raise
            # The module-level name, looked up at call time: tests (ours and
            # extensions') patch ``nameko.utils.retry.sleep`` to skip the waits.
            sleep(delays.next())

    return wrapper
