"""A small client for RabbitMQ's management HTTP API (SPEC 11.4).

Tests use it to look at and change broker state: vhosts, permissions,
queues, bindings, connections, and to publish or fetch messages through the
API. It needs the management plugin and the `requests` package; `requests`
is imported when a client is made, so that the pytest plugin (which imports
this module lazily anyway) loads where `requests` is not installed.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["Client", "ManagementApiUnavailable"]

#: (connect, read) seconds: a closed port answers at once, a live API within a second
DEFAULT_TIMEOUT = (3.0, 30.0)


class ManagementApiUnavailable(Exception):
    """The management API did not answer ``GET /api/overview``."""


def _quote(name: str) -> str:
    # vhost "/" must travel as %2F: every path segment is quoted in full
    return quote(name, safe="")


def _split(uri: str) -> tuple[str, tuple[str, str]]:
    """(``<scheme>://<host>:<port>/api/``, (user, password)) from a URI with credentials."""
    parts = urlsplit(uri)
    auth = (parts.username or "guest", parts.password or "guest")
    netloc = parts.hostname or "localhost"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    path = parts.path.rstrip("/")
    if not path.endswith("/api"):
        path += "/api"
    return urlunsplit((parts.scheme or "http", netloc, path + "/", "", "")), auth


class Client:
    """``Client("http://guest:guest@localhost:15672")``; raises
    `ManagementApiUnavailable` at once if the API does not answer."""

    def __init__(self, uri: str, timeout: Any = DEFAULT_TIMEOUT) -> None:
        import requests  # only here: see the module docstring

        self._base, auth = _split(uri)
        self._timeout = timeout
        self._session = requests.Session()
        self._session.auth = auth
        self._session.headers["content-type"] = "application/json"
        self._check()

    def _check(self) -> None:
        import requests

        try:
            self._request("GET", "overview")
        except requests.RequestException as exc:  # the cause stays chained
            raise ManagementApiUnavailable(
                "Connection error for the RabbitMQ management HTTP API at "
                f"{self._base}overview, is it enabled?"
            ) from exc

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(
            method,
            self._base + path,
            data=None if body is None else json.dumps(body),
            timeout=self._timeout,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def close(self) -> None:
        self._session.close()

    # -- connections ---------------------------------------------------------

    def get_connections(self) -> list[dict[str, Any]]:
        return self._request("GET", "connections")

    def delete_connection(self, name: str) -> None:
        self._request("DELETE", f"connections/{_quote(name)}")

    # -- vhosts and permissions ------------------------------------------------

    def get_all_vhosts(self) -> list[dict[str, Any]]:
        return self._request("GET", "vhosts")

    def create_vhost(self, vhost: str) -> None:
        self._request("PUT", f"vhosts/{_quote(vhost)}")

    def delete_vhost(self, vhost: str) -> None:
        self._request("DELETE", f"vhosts/{_quote(vhost)}")

    def set_vhost_permissions(
        self, vhost: str, username: str, configure: str, read: str, write: str
    ) -> None:
        body = {"configure": configure, "read": read, "write": write}
        self._request("PUT", f"permissions/{_quote(vhost)}/{_quote(username)}", body)

    # -- exchanges, queues, bindings -----------------------------------------

    def get_exchanges(self, vhost: str) -> list[dict[str, Any]]:
        return self._request("GET", f"exchanges/{_quote(vhost)}")

    def get_queues(self, vhost: str) -> list[dict[str, Any]]:
        return self._request("GET", f"queues/{_quote(vhost)}")

    def get_queue(self, vhost: str, name: str) -> dict[str, Any]:
        return self._request("GET", f"queues/{_quote(vhost)}/{_quote(name)}")

    def create_queue(self, vhost: str, name: str, **properties: Any) -> None:
        """``properties``: e.g. ``durable=False, auto_delete=True, arguments={...}``."""
        self._request("PUT", f"queues/{_quote(vhost)}/{_quote(name)}", properties)

    def get_queue_bindings(self, vhost: str, name: str) -> list[dict[str, Any]]:
        return self._request("GET", f"queues/{_quote(vhost)}/{_quote(name)}/bindings")

    def create_queue_binding(
        self,
        vhost: str,
        exchange: str,
        queue: str,
        routing_key: str,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        body = {"routing_key": routing_key, "arguments": arguments or {}}
        path = f"bindings/{_quote(vhost)}/e/{_quote(exchange)}/q/{_quote(queue)}"
        self._request("POST", path, body)

    # -- messages --------------------------------------------------------------

    def publish(
        self,
        vhost: str,
        exchange: str,
        routing_key: str,
        payload: Any,
        properties: dict[str, Any] | None = None,
    ) -> bool:
        """Publish through the API; True when the message was routed.

        A `str` goes as it is, `bytes` base64-encoded, anything else as JSON
        (with ``content_type`` application/json unless ``properties`` say)."""
        properties = dict(properties or {})
        if isinstance(payload, bytes):
            text, encoding = base64.b64encode(payload).decode(), "base64"
        elif isinstance(payload, str):
            text, encoding = payload, "string"
        else:
            text, encoding = json.dumps(payload), "string"
            properties.setdefault("content_type", "application/json")
        body = {
            "properties": properties,
            "routing_key": routing_key,
            "payload": text,
            "payload_encoding": encoding,
        }
        path = f"exchanges/{_quote(vhost)}/{_quote(exchange)}/publish"
        return bool(self._request("POST", path, body).get("routed"))

    def get_messages(
        self, vhost: str, queue: str, count: int = 1, requeue: bool = False
    ) -> list[dict[str, Any]]:
        """Take up to ``count`` messages (``requeue``: put them back)."""
        body = {
            "count": count,
            "requeue": requeue,  # RabbitMQ before 3.7
            "ackmode": "ack_requeue_true" if requeue else "ack_requeue_false",
            "encoding": "auto",
        }
        return self._request("POST", f"queues/{_quote(vhost)}/{_quote(queue)}/get", body)
