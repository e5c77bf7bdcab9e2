"""The web server extension (public nameko 2.x path); see `nameko._web.server`."""

from nameko._reexports import reexported
from nameko._web.addresses import BindAddress, parse_address
from nameko._web.server import WebServer, WsgiApp

__all__ = ["BindAddress", "WebServer", "WsgiApp", "parse_address"]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
