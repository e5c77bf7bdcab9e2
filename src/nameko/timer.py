"""``@timer`` (public nameko 2.x path); see `nameko._timer` for the schedule."""

from nameko._timer import Timer, timer

__all__ = ["Timer", "timer"]
