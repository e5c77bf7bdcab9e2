"""``@http`` (public nameko 2.x path); see `nameko._web.handlers`."""

from nameko._web.handlers import HttpRequestHandler, http

__all__ = ["HttpRequestHandler", "http"]
