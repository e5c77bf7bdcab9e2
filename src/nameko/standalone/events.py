"""Dispatch events from code that is not a service (public nameko 2.x path).

Unlike nameko 2.14, ``event_dispatcher`` declares the source service's event
exchange (unless ``DECLARE_EVENT_EXCHANGES`` is false), so dispatching works
before that service has ever started; see `nameko._events.dispatcher`.
"""

from nameko._events.dispatcher import event_dispatcher
from nameko._events.exchange import get_event_exchange
from nameko._reexports import reexported

__all__ = ["event_dispatcher", "get_event_exchange"]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
