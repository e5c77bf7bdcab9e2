"""One broker connection per container, shared by its messaging extensions."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from typing import Any

from nameko._broker import connect
from nameko._broker.base import Broker, BrokerClosed
from nameko._concurrency import Lock
from nameko._global_config import config as global_config
from nameko._global_config import given_or_global
from nameko._runtime.extensions import ProviderCollector, SharedExtension
from nameko._urls import join_urls, sanitize_url
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_AMQP_URI,
    DEFAULT_HEARTBEAT,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    MAX_MESSAGE_SIZE_CONFIG_KEY,
    TRANSPORT_OPTIONS_CONFIG_KEY,
)
from nameko.exceptions import ConfigurationError

__all__ = ["BrokerConnection", "amqp_uri", "broker_options", "config_with_uri", "open_broker"]

_log = logging.getLogger("nameko.messaging")


def amqp_uri(config: Mapping[str, Any]) -> str:
    """The broker URL. The global config (nameko 3) falls back to
    ``DEFAULT_AMQP_URI``; a 2.x config dict without one is an error. A list
    of URIs (the nodes of a cluster) becomes one ``;``-separated string."""
    try:
        return join_urls(config[AMQP_URI_CONFIG_KEY])
    except KeyError:
        if config is global_config:
            return DEFAULT_AMQP_URI
        raise ConfigurationError(
            f"{AMQP_URI_CONFIG_KEY} is not set: give a broker URL such as "
            "'amqp://guest:guest@localhost' or 'memory://'"
        ) from None


def config_with_uri(config: Mapping[str, Any] | None, uri: str | None) -> dict[str, Any]:
    """A copy of ``config`` (the global one when None) with nameko 3's
    ``uri=`` option as its ``AMQP_URI``."""
    merged = dict(given_or_global(config))
    if uri is not None:
        merged[AMQP_URI_CONFIG_KEY] = uri
    elif config is None:
        merged.setdefault(AMQP_URI_CONFIG_KEY, amqp_uri(global_config))
    return merged


def broker_options(config: Mapping[str, Any]) -> dict[str, Any]:
    heartbeat = config.get(HEARTBEAT_CONFIG_KEY)
    return {
        "heartbeat": DEFAULT_HEARTBEAT if heartbeat is None else heartbeat,
        "ssl": config.get(AMQP_SSL_CONFIG_KEY),
        "login_method": config.get(LOGIN_METHOD_CONFIG_KEY),
        "transport_options": config.get(TRANSPORT_OPTIONS_CONFIG_KEY),
        "max_message_size": config.get(MAX_MESSAGE_SIZE_CONFIG_KEY),
    }


def open_broker(config: Mapping[str, Any], connection_name: str) -> Broker:
    uri = amqp_uri(config)
    broker = connect(uri, connection_name=connection_name, **broker_options(config))
    _log.info("Connected to %s", sanitize_url(uri))
    return broker


class BrokerConnection(SharedExtension, ProviderCollector):
    """The container's broker connection, opened on first use.

    Consumers register as providers so that on a graceful stop the
    connection closes only once the last of them has finished.
    """

    def __init__(self) -> None:
        super().__init__()
        self._broker: Broker | None = None
        self._closed = False
        self._failed: tuple[float, Exception] | None = None  # when the last attempt failed, why
        self._lock = Lock()

    def setup(self) -> None:
        self._closed = False

    @property
    def broker(self) -> Broker:
        broker = self._broker  # hot path (every reply, every publish): no lock once open
        if broker is not None:
            return broker
        asked = time.monotonic()
        with self._lock:
            if self._closed:
                # e.g. a worker abandoned by `kill` finishing late: a connection
                # opened now would outlive its container and reconnect for ever
                raise BrokerClosed(f"the connection of {self._connection_name()} is closed")
            if self._broker is None:
                self._broker = self._open(asked)
            return self._broker

    def _open(self, asked: float) -> Broker:
        """Connect, unless an attempt that failed ended after ``asked``: the
        extensions set up together then share that attempt's error instead
        of each starting its own round of retries (three extensions were
        three rounds, ``retry 3 of 3`` followed by ``retry 1 of 3``)."""
        failed = self._failed
        if failed is not None and failed[0] >= asked:
            raise copy.copy(failed[1])
        try:
            return open_broker(self.container.config, self._connection_name())
        except Exception as exc:
            self._failed = (time.monotonic(), exc)
            raise

    @property
    def current(self) -> Broker | None:
        """The connection if it is open; never opens one (health checks, metrics)."""
        return self._broker

    def _connection_name(self) -> str:
        return f"nameko:{self.container.service_name}"

    def stop(self) -> None:
        self.wait_for_providers()
        self._close()

    def kill(self) -> None:
        self._close()

    def _close(self) -> None:
        with self._lock:
            broker, self._broker = self._broker, None
            self._closed = True
        if broker is not None:
            broker.close()
