"""Literal names and defaults shared with nameko 2.14 (and the few 3.x additions).

The values are part of the compatibility contract: config keys are read from
users' config files and context keys travel on the wire as headers.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ACCEPT_CONFIG_KEY",
    "AMQP_SSL_CONFIG_KEY",
    "AMQP_URI_CONFIG_KEY",
    "AUTH_TOKEN_CONTEXT_KEY",
    "CALL_ID_STACK_CONTEXT_KEY",
    "DEFAULT_AMQP_URI",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_WORKERS",
    "DEFAULT_PARENT_CALLS_TRACKED",
    "DEFAULT_PREFETCH_COUNT",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_SERIALIZER",
    "DEFAULT_TRANSPORT_OPTIONS",
    "HEADER_PREFIX",
    "HEARTBEAT_CONFIG_KEY",
    "LANGUAGE_CONTEXT_KEY",
    "LOGIN_METHOD_CONFIG_KEY",
    "MAX_WORKERS_CONFIG_KEY",
    "NON_PERSISTENT",
    "PARENT_CALLS_CONFIG_KEY",
    "PERSISTENT",
    "PREFETCH_COUNT_CONFIG_KEY",
    "RPC_EXCHANGE_CONFIG_KEY",
    "SERIALIZERS_CONFIG_KEY",
    "SERIALIZER_CONFIG_KEY",
    "TRANSPORT_OPTIONS_CONFIG_KEY",
    "USER_AGENT_CONTEXT_KEY",
    "USER_ID_CONTEXT_KEY",
    "WEB_SERVER_CONFIG_KEY",
]

# -- config keys -------------------------------------------------------------

AMQP_URI_CONFIG_KEY = "AMQP_URI"
WEB_SERVER_CONFIG_KEY = "WEB_SERVER_ADDRESS"
RPC_EXCHANGE_CONFIG_KEY = "rpc_exchange"
SERIALIZER_CONFIG_KEY = "serializer"  # lower-case on purpose: nameko reads this spelling
SERIALIZERS_CONFIG_KEY = "SERIALIZERS"
ACCEPT_CONFIG_KEY = "ACCEPT"
HEARTBEAT_CONFIG_KEY = "HEARTBEAT"
AMQP_SSL_CONFIG_KEY = "AMQP_SSL"
TRANSPORT_OPTIONS_CONFIG_KEY = "TRANSPORT_OPTIONS"
LOGIN_METHOD_CONFIG_KEY = "LOGIN_METHOD"
MAX_WORKERS_CONFIG_KEY = "max_workers"
PARENT_CALLS_CONFIG_KEY = "parent_calls_tracked"
PREFETCH_COUNT_CONFIG_KEY = "PREFETCH_COUNT"  # nameko 3.x only
# shimeji only (kept out of __all__, which is exactly nameko's)
MAX_MESSAGE_SIZE_CONFIG_KEY = "MAX_MESSAGE_SIZE"

# -- defaults ----------------------------------------------------------------

DEFAULT_MAX_WORKERS = 10
DEFAULT_PARENT_CALLS_TRACKED = 10
DEFAULT_SERIALIZER = "json"
DEFAULT_RETRY_POLICY: dict[str, Any] = {"max_retries": 3}
DEFAULT_HEARTBEAT = 60
DEFAULT_TRANSPORT_OPTIONS: dict[str, Any] = {
    "max_retries": 3,
    "interval_start": 2,
    "interval_step": 1,
    "interval_max": 5,
}
DEFAULT_PREFETCH_COUNT = 10  # nameko 3.x only
DEFAULT_AMQP_URI = "pyamqp://guest:guest@localhost"  # nameko 3.x only
# shimeji only, like MAX_MESSAGE_SIZE_CONFIG_KEY: RabbitMQ's own default (128 MiB)
DEFAULT_MAX_MESSAGE_SIZE = 128 * 1024 * 1024

# -- context data keys (travel as ``nameko.<key>`` headers) -------------------

CALL_ID_STACK_CONTEXT_KEY = "call_id_stack"
AUTH_TOKEN_CONTEXT_KEY = "auth_token"
LANGUAGE_CONTEXT_KEY = "language"
USER_ID_CONTEXT_KEY = "user_id"
USER_AGENT_CONTEXT_KEY = "user_agent"

HEADER_PREFIX = "nameko"

# -- AMQP delivery modes -------------------------------------------------------

NON_PERSISTENT = 1
PERSISTENT = 2
