"""Events (pub-sub) in nameko's wire format (SPEC 4).

A service dispatches an event to its topic exchange ``<source>.events`` with
the event type as routing key and the serialised event data as body;
handlers consume queues bound to that exchange, named per handler type.

* `exchange`: the exchange description and the config keys that govern it.
* `dispatcher`: `EventDispatcher` (a dependency) and the standalone
  ``event_dispatcher``.
* `handler`: `EventHandler` / ``@event_handler`` (an entrypoint).
"""
