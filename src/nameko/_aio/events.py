"""Awaitable event dispatch: what ``EventDispatcher`` injects into an
``async def`` worker, and the asyncio standalone dispatcher's core.

``await dispatch(event_type, event_data)`` returns once the broker has
confirmed the event (nameko's guarantee, without blocking the loop):
``asyncio.gather`` of many dispatches keeps them all in flight at once.
The publish itself is the core publisher's pipelined one; only its confirm
is awaited here. The rare recoveries (a connection lost before the confirm,
an exchange that went away) publish again on the loop's executor, since
that path blocks.
"""

from __future__ import annotations

from nameko._aio.bridge import awaitable, in_executor
from nameko._messaging.core_publisher import ConfirmWait

__all__ = ["confirmed"]


async def confirmed(wait: ConfirmWait) -> None:
    """Await what ``wait()`` would block for: the confirm, then its settling."""
    if wait.outcome is None:
        return
    try:
        await awaitable(wait.outcome)
    except Exception as exc:
        if not wait.recovers(exc):
            raise
        await in_executor(wait.republish)
