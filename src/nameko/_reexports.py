"""Names nameko's modules expose only because they import them.

``from nameko.rpc import MethodNotFound`` works in nameko 2.14 and 3.0
because ``nameko/rpc.py`` happens to import it; user code and extensions
rely on such paths. shimeji's public modules stay thin, so each ends with a
module ``__getattr__`` (PEP 562) that resolves these names lazily from
where they live here. They are not in ``__all__``: they are not our API,
only nameko's accident, kept so that code written against it imports.

The list per module is nameko 2.14.1's and 3.0.0rc11's, checked by
tests/compat/test_nameko_names.py against snapshots of their public names,
and the werkzeug classes nameko's web modules had in their namespace
(plugins import ``Response`` or ``HTTPException`` from there): they resolve
to werkzeug's own objects, so ``isinstance`` checks agree.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["REEXPORTS", "reexported"]

_CONSTANTS = (
    "AMQP_SSL_CONFIG_KEY AMQP_URI_CONFIG_KEY CALL_ID_STACK_CONTEXT_KEY DEFAULT_AMQP_URI "
    "DEFAULT_HEARTBEAT DEFAULT_MAX_WORKERS DEFAULT_PARENT_CALLS_TRACKED DEFAULT_PREFETCH_COUNT "
    "DEFAULT_RETRY_POLICY DEFAULT_SERIALIZER DEFAULT_TRANSPORT_OPTIONS HEARTBEAT_CONFIG_KEY "
    "LOGIN_METHOD_CONFIG_KEY MAX_WORKERS_CONFIG_KEY PARENT_CALLS_CONFIG_KEY PERSISTENT "
    "PREFETCH_COUNT_CONFIG_KEY RPC_EXCHANGE_CONFIG_KEY SERIALIZER_CONFIG_KEY "
    "TRANSPORT_OPTIONS_CONFIG_KEY WEB_SERVER_CONFIG_KEY"
)
_EXCEPTIONS = (
    "CommandError ConfigurationError ConnectionNotFound ContainerBeingKilled IncorrectSignature "
    "MalformedRequest MethodNotFound RpcTimeout UnknownService UnserializableValueError "
    "deserialize serialize"
)
_EXTENSIONS = (
    "DependencyProvider ENTRYPOINT_EXTENSIONS_ATTR Entrypoint ProviderCollector SharedExtension "
    "is_dependency is_entrypoint iter_extensions"
)

# where a name lives in shimeji ("module:attribute", or "module" for a module)
_SOURCES: dict[str, str] = {
    **{name: f"nameko.constants:{name}" for name in _CONSTANTS.split()},
    **{name: f"nameko.exceptions:{name}" for name in _EXCEPTIONS.split()},
    **{name: f"nameko.extensions:{name}" for name in _EXTENSIONS.split()},
    "BadRequest": "werkzeug.exceptions:BadRequest",
    "HTTPException": "werkzeug.exceptions:HTTPException",
    "Map": "werkzeug.routing:Map",
    "Request": "werkzeug.wrappers:Request",
    "Response": "werkzeug.wrappers:Response",
    "Rule": "werkzeug.routing:Rule",
    "Client": "nameko.rpc:Client",
    "ConsumerCore": "nameko.amqp.consume:Consumer",
    "QueueConsumer": "nameko.messaging:QueueConsumer",
    "RESTRICTED_PUBLISHER_OPTIONS": "nameko.rpc:RESTRICTED_PUBLISHER_OPTIONS",
    "HTTPError": "requests.exceptions:HTTPError",
    "HeaderDecoder": "nameko.messaging:HeaderDecoder",
    "HeaderEncoder": "nameko.messaging:HeaderEncoder",
    "PublisherCore": "nameko.amqp.publish:Publisher",
    "ReplyListener": "nameko.rpc:ReplyListener",
    "RPC_REPLY_QUEUE_TEMPLATE": "nameko.rpc:RPC_REPLY_QUEUE_TEMPLATE",
    "RPC_REPLY_QUEUE_TTL": "nameko.rpc:RPC_REPLY_QUEUE_TTL",
    "ServiceProxy": "nameko.rpc:ServiceProxy",
    "SpawningProxy": "nameko.utils.concurrency:SpawningProxy",
    "SpawningSet": "nameko.utils.concurrency:SpawningSet",
    "UndeliverableMessage": "nameko.amqp:UndeliverableMessage",
    "WebServer": "nameko.web.server:WebServer",
    "WorkerContext": "nameko.containers:WorkerContext",
    "config": "nameko:config",
    "decode_from_headers": "nameko.messaging:decode_from_headers",
    "encode_to_headers": "nameko.messaging:encode_to_headers",
    "get_connection": "nameko.amqp:get_connection",
    "get_container_cls": "nameko.containers:get_container_cls",
    "get_rpc_exchange": "nameko.rpc:get_rpc_exchange",
    "get_service_name": "nameko.containers:get_service_name",
    "import_from_path": "nameko.utils:import_from_path",
    "make_timing_logger": "nameko.log_helpers:make_timing_logger",
    "new_call_id": "nameko.containers:new_call_id",
    "retry": "nameko.utils.retry",
    "sanitize_url": "nameko.utils:sanitize_url",
    "wait_for_call": "nameko.testing.utils:wait_for_call",
    "serialization": "nameko.serialization",
}

# the same name meaning different things in different modules
_OVERRIDES: dict[tuple[str, str], str] = {
    ("nameko.events", "Consumer"): "nameko.messaging:Consumer",
    ("nameko.events", "Publisher"): "nameko.messaging:Publisher",
    ("nameko.rpc", "Publisher"): "nameko.amqp.publish:Publisher",
    ("nameko.rpc", "Consumer"): "nameko.amqp.consume:Consumer",
    ("nameko.standalone.rpc", "Consumer"): "nameko.amqp.consume:Consumer",
    ("nameko.standalone.rpc", "Publisher"): "nameko.amqp.publish:Publisher",
    ("nameko.standalone.events", "Publisher"): "nameko.amqp.publish:Publisher",
}

REEXPORTS: dict[str, frozenset[str]] = {
    module: frozenset(names.split())
    for module, names in {
        "nameko.amqp.publish": "DEFAULT_RETRY_POLICY DEFAULT_TRANSPORT_OPTIONS PERSISTENT",
        "nameko.containers": "CALL_ID_STACK_CONTEXT_KEY ConfigurationError ContainerBeingKilled "
        "DEFAULT_MAX_WORKERS DEFAULT_PARENT_CALLS_TRACKED ENTRYPOINT_EXTENSIONS_ATTR "
        "MAX_WORKERS_CONFIG_KEY PARENT_CALLS_CONFIG_KEY SpawningSet config import_from_path "
        "is_dependency iter_extensions make_timing_logger serialization",
        "nameko.dependency_providers": "config",
        "nameko.events": "Consumer Publisher encode_to_headers",
        "nameko.extensions": "IncorrectSignature",
        "nameko.runners": "SpawningProxy get_container_cls get_service_name",
        "nameko.serialization": "config",
        "nameko.standalone.events": "AMQP_SSL_CONFIG_KEY AMQP_URI_CONFIG_KEY DEFAULT_AMQP_URI "
        "LOGIN_METHOD_CONFIG_KEY PERSISTENT Publisher config serialization",
        "nameko.messaging": "AMQP_SSL_CONFIG_KEY AMQP_URI_CONFIG_KEY ConsumerCore "
        "ContainerBeingKilled DEFAULT_AMQP_URI DEFAULT_HEARTBEAT DEFAULT_PREFETCH_COUNT "
        "DEFAULT_TRANSPORT_OPTIONS DependencyProvider Entrypoint HEARTBEAT_CONFIG_KEY "
        "LOGIN_METHOD_CONFIG_KEY PREFETCH_COUNT_CONFIG_KEY ProviderCollector PublisherCore "
        "SharedExtension TRANSPORT_OPTIONS_CONFIG_KEY config get_connection sanitize_url "
        "serialization",
        "nameko.rpc": "AMQP_SSL_CONFIG_KEY AMQP_URI_CONFIG_KEY Consumer ContainerBeingKilled "
        "DEFAULT_AMQP_URI DEFAULT_HEARTBEAT DEFAULT_PREFETCH_COUNT DEFAULT_SERIALIZER "
        "DependencyProvider Entrypoint HEARTBEAT_CONFIG_KEY HeaderDecoder HeaderEncoder "
        "LOGIN_METHOD_CONFIG_KEY MalformedRequest MethodNotFound PREFETCH_COUNT_CONFIG_KEY "
        "ProviderCollector Publisher QueueConsumer RPC_EXCHANGE_CONFIG_KEY "
        "SERIALIZER_CONFIG_KEY SharedExtension UndeliverableMessage UnknownService "
        "UnserializableValueError config decode_from_headers deserialize encode_to_headers "
        "get_connection serialization serialize",
        "nameko.standalone.rpc": "AMQP_SSL_CONFIG_KEY AMQP_URI_CONFIG_KEY "
        "CALL_ID_STACK_CONTEXT_KEY Client Consumer DEFAULT_AMQP_URI DEFAULT_HEARTBEAT "
        "DEFAULT_PREFETCH_COUNT Entrypoint HEARTBEAT_CONFIG_KEY LOGIN_METHOD_CONFIG_KEY "
        "PREFETCH_COUNT_CONFIG_KEY Publisher RESTRICTED_PUBLISHER_OPTIONS "
        "RPC_REPLY_QUEUE_TEMPLATE RPC_REPLY_QUEUE_TTL ReplyListener RpcTimeout ServiceProxy "
        "WorkerContext config encode_to_headers get_connection get_rpc_exchange new_call_id "
        "retry serialization",
        "nameko.testing.rabbit": "HTTPError",
        "nameko.testing.services": "wait_for_call",
        "nameko.testing.utils": "HTTPError",
        "nameko.timer": "Entrypoint",
        "nameko.web.handlers": "BadRequest Entrypoint Response Rule WebServer serialize",
        "nameko.web.server": "ConfigurationError HTTPException Map ProviderCollector Request "
        "SharedExtension WEB_SERVER_CONFIG_KEY config",
        "nameko.web.websocket": "ConnectionNotFound DependencyProvider Entrypoint "
        "MalformedRequest MethodNotFound ProviderCollector SharedExtension WebServer serialize",
    }.items()
}


def reexported(module: str, name: str) -> Any:
    """Resolve ``module.name`` for a module's ``__getattr__``; AttributeError
    (as Python would raise it) for anything else."""
    if name not in REEXPORTS.get(module, ()):
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    path, _, attribute = (_OVERRIDES.get((module, name)) or _SOURCES[name]).partition(":")
    target = importlib.import_module(path)
    return getattr(target, attribute) if attribute else target
