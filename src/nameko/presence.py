"""Presence (shimeji): running service instances announce themselves.

``nameko run`` announces every service it runs (unless ``PRESENCE: false``)
on start, every ``PRESENCE_INTERVAL`` seconds (10) and on stop, with its
entrypoints, signatures, docstrings and call statistics, on the
``nameko-presence`` exchange (nameko 2.14 peers never see it). Read it with
``nameko cluster``, ``nameko dashboard``, or in Python::

    from nameko.presence import Roster

    with Roster({"AMQP_URI": "amqp://guest:guest@localhost"}) as roster:
        roster.discover()
        roster.wait_for(lambda seen: len(seen) >= 2, timeout=2)
        for seen in roster.instances():
            print(seen.message["service"], seen.message["host"], seen.message["pid"])

`Announcer` attaches to containers you run yourself (tests, embedding).
"""

from nameko._presence.announcer import (
    PRESENCE_CONFIG_KEY,
    PRESENCE_INTERVAL_CONFIG_KEY,
    Announcer,
)
from nameko._presence.roster import Roster, Seen
from nameko._presence.wire import EXCHANGE

__all__ = [
    "EXCHANGE",
    "PRESENCE_CONFIG_KEY",
    "PRESENCE_INTERVAL_CONFIG_KEY",
    "Announcer",
    "Roster",
    "Seen",
]
