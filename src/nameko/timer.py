"""``@timer`` (public nameko 2.x path); see `nameko._timer` for the schedule."""

from nameko._reexports import reexported
from nameko._timer import Timer, timer

__all__ = ["Timer", "timer"]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
