"""``@http`` (public nameko 2.x path); see `nameko._web.handlers`."""

from nameko._reexports import reexported
from nameko._web.handlers import HttpRequestHandler, http

__all__ = ["HttpRequestHandler", "http"]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
