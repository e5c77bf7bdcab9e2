"""Presence: running service instances announce themselves (D29).

Modules, bottom up: `wire` (pure: the messages), `describe` (a container's
entrypoints as data), `stats` (the worker observer counting calls, errors
and latency per entrypoint), `announcer` (the process side: announces on
start, every ``PRESENCE_INTERVAL`` seconds, on stop, and answers discovery
requests), `roster` (the listening side: who is there), `rates` (pure: call
and error rates from successive announcements), `dashboard` and `page` (the
web page of ``nameko dashboard``), `feature` (how ``nameko run`` attaches it).
"""
