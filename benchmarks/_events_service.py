"""Services hosted by ``nameko run`` for ``bench_events.py``.

The same module runs under shimeji and under nameko 2.14.1; ``bench_events.py``
starts each service in its own process (``_events_service:EventSource`` and
``_events_service:EventSink``), so the CPU of each can be read apart. Service
names end with ``$EVENTS_SUFFIX``, so both implementations share one vhost
without sharing exchanges or queues.

- ``events_source<suffix>.emit(count, start=0)`` dispatches ``count`` ``"tick"``
  events, payload ``{"seq": start + i}``, and returns ``count``.
- ``events_sink<suffix>`` counts the ``"tick"`` events of that source
  (``SERVICE_POOL``): ``count()`` is how many it handled, ``distinct()`` how
  many different sequence numbers it saw (a duplicate would make them differ),
  ``reset()`` starts again from zero.
"""

import os
import threading

from nameko.events import SERVICE_POOL, EventDispatcher, event_handler
from nameko.rpc import rpc

SUFFIX = os.environ.get("EVENTS_SUFFIX", "")
SOURCE = "events_source" + SUFFIX
SINK = "events_sink" + SUFFIX


class EventSource:
    name = SOURCE

    dispatch = EventDispatcher()

    @rpc
    def emit(self, count, start=0):
        for seq in range(start, start + count):
            self.dispatch("tick", {"seq": seq})
        return count


class EventSink:
    name = SINK

    lock = threading.Lock()  # nameko run monkey-patches first: a green lock under nameko
    handled = 0
    seen = set()

    @event_handler(SOURCE, "tick", handler_type=SERVICE_POOL)
    def on_tick(self, payload):
        cls = type(self)
        with cls.lock:
            cls.handled += 1
            cls.seen.add(payload["seq"])

    @rpc
    def count(self):
        return type(self).handled

    @rpc
    def distinct(self):
        return len(type(self).seen)

    @rpc
    def reset(self):
        cls = type(self)
        with cls.lock:
            cls.handled = 0
            cls.seen = set()
        return 0
