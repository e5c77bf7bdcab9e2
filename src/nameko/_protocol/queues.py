"""Which queue type a service's queues get: the ``QUEUE_TYPE`` config key.

Opt-in quorum queues. ``QUEUE_TYPE`` is either one type for every
service (``classic``, the default, or ``quorum``) or a mapping from service
name to type, where ``"*"`` sets the type of the services not named. Only a
service's shared, long-lived queues follow it: its RPC request queue
``rpc-<service>`` and the queues of its ``SERVICE_POOL`` and ``SINGLETON``
event handlers. Reply queues (``x-expires``, one per client) and broadcast
handlers' queues (one per instance, often exclusive) stay classic, and so
do the auto-delete queues of handlers with ``reliable_delivery=False``.

A classic queue is declared with no arguments, byte for byte what nameko
2.14 declares. A queue keeps the type it was created with: declaring it with
another type fails (406), which `queue_type_mismatch` turns into a message
that says what to change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nameko.exceptions import ConfigurationError

__all__ = [
    "CLASSIC",
    "QUEUE_TYPE_CONFIG_KEY",
    "QUORUM",
    "QueueTypeMismatch",
    "queue_arguments",
    "queue_type_for",
    "queue_type_mismatch",
]

QUEUE_TYPE_CONFIG_KEY = "QUEUE_TYPE"
CLASSIC, QUORUM = "classic", "quorum"
QUEUE_TYPES = (CLASSIC, QUORUM)
DEFAULT_ENTRY = "*"
QUEUE_TYPE_ARGUMENT = "x-queue-type"


class QueueTypeMismatch(ConfigurationError):
    """A service's queue exists with another type than ``QUEUE_TYPE`` asks for."""


def queue_type_for(config: Mapping[str, Any], service_name: str) -> str:
    """The queue type ``config`` gives ``service_name``'s queues."""
    value = config.get(QUEUE_TYPE_CONFIG_KEY)
    if isinstance(value, Mapping):
        value = value.get(service_name, value.get(DEFAULT_ENTRY))
    if value is None:
        return CLASSIC
    if not isinstance(value, str) or value.lower() not in QUEUE_TYPES:
        raise ConfigurationError(
            f"{QUEUE_TYPE_CONFIG_KEY} must be {' or '.join(QUEUE_TYPES)}, or a mapping "
            f"of service names to one of them ('{DEFAULT_ENTRY}' for the others), not {value!r}"
        )
    return value.lower()


def queue_arguments(queue_type: str, *, auto_delete: bool = False) -> dict[str, Any]:
    """Declare arguments of a service queue: none for classic (as nameko
    2.14). An auto-delete queue (an event handler with
    ``reliable_delivery=False``) stays classic whatever the type: quorum
    queues must be kept, and such a handler asked for no guarantee."""
    if queue_type == CLASSIC or auto_delete:
        return {}
    return {QUEUE_TYPE_ARGUMENT: queue_type}


_CURRENT = re.compile(r"current is (?:the value '([^']*)'|none)")


def queue_type_mismatch(queue: str, asked: str, reply_text: str) -> QueueTypeMismatch | None:
    """The error for the broker's refusal ``reply_text`` (a 406) of
    ``queue`` declared as ``asked``, if the queue type is what differs."""
    if f"'{QUEUE_TYPE_ARGUMENT}'" not in reply_text or "inequivalent" not in reply_text:
        return None
    found = _CURRENT.search(reply_text)
    existing = (found.group(1) or CLASSIC) if found else "another type"
    return QueueTypeMismatch(
        f"queue {queue!r} exists as a {existing} queue, but {QUEUE_TYPE_CONFIG_KEY} asks for "
        f"{asked}. A queue keeps its type: set {QUEUE_TYPE_CONFIG_KEY} to {existing} for this "
        "service, or stop every instance, delete the queue (its messages are lost) and "
        "start again. Instances with different types would never share one queue."
    )
