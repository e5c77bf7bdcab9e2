"""A small RabbitMQ management HTTP API client for tests (SPEC 11.4).

Needs the management plugin and `requests`; see `Client`.
"""

from nameko._reexports import reexported
from nameko.testing._rabbit_api import Client, ManagementApiUnavailable

__all__ = ["Client", "ManagementApiUnavailable"]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
