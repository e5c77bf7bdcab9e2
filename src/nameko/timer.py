"""``@timer`` (public nameko 2.x path; see `nameko._timer` for the schedule)
and shimeji's ``@cron`` (`nameko._schedule.entrypoint`; once per cluster, D28)."""

from nameko._reexports import reexported
from nameko._schedule.entrypoint import Cron, cron
from nameko._timer import Timer, timer

__all__ = ["Cron", "Timer", "cron", "timer"]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
