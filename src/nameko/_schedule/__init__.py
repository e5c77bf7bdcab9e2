"""Schedules that fire once per cluster (docs/architecture.md D28).

* `lease`: the leader election: a queue per schedule with
  ``x-single-active-consumer``, holding one lease message; the instance
  whose consumer holds it unacked is the leader.
* `loop`: the wall-clock loop shared by ``@timer(..., singleton=True)``
  and ``@cron``: ticks are instants with an identity (their due time), and
  only the leader fires them.
* `entrypoint`: ``@cron(expression, tz=None, singleton=True)``.

The pure half (parsing cron expressions, next fire times, DST) is
`nameko._protocol.cron`. This package imports nothing at import time, so
that `nameko._timer` can use `lease` and `loop` without a cycle.
"""
