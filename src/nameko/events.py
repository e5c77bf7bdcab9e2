"""Events: `EventDispatcher` and ``@event_handler`` (public nameko 2.x path).

Wire format per nameko 2.14; what we do differently (and why) is described
in `nameko._events.handler` and `nameko._events.dispatcher`.
"""

from nameko._events.dispatcher import EventDispatcher
from nameko._events.exchange import get_event_exchange
from nameko._events.handler import (
    BROADCAST,
    SERVICE_POOL,
    SINGLETON,
    EventHandler,
    EventHandlerConfigurationError,
    event_handler,
)
from nameko._reexports import reexported

__all__ = [
    "BROADCAST",
    "SERVICE_POOL",
    "SINGLETON",
    "EventDispatcher",
    "EventHandler",
    "EventHandlerConfigurationError",
    "event_handler",
    "get_event_exchange",
]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
