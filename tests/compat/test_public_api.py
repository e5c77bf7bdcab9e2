"""The public surface of SPEC section 1 is pinned: paths import, `__all__` is
exact, and the names nameko users import are there."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC = {
    "nameko": {"Config", "config", "__version__"},  # nameko 3: the global config
    "nameko.constants": {"AMQP_URI_CONFIG_KEY", "SERIALIZER_CONFIG_KEY", "DEFAULT_MAX_WORKERS"},
    "nameko.extensions": {
        "ENTRYPOINT_EXTENSIONS_ATTR",
        "Extension",
        "SharedExtension",
        "DependencyProvider",
        "ProviderCollector",
        "Entrypoint",
        "register_entrypoint",
        "iter_extensions",
        "is_extension",
        "is_dependency",
        "is_entrypoint",
    },
    "nameko.containers": {
        "ServiceContainer",
        "WorkerContext",
        "get_container_cls",
        "get_service_name",
        "new_call_id",
    },
    "nameko.runners": {"ServiceRunner", "run_services"},
    "nameko.rpc": {
        "rpc",
        "Rpc",
        "RpcConsumer",
        "RpcProxy",
        "ServiceRpc",
        "ClusterRpc",
        "Client",
        "Proxy",
        "RpcCall",
        "RESTRICTED_PUBLISHER_OPTIONS",
        "ReplyListener",
        "Responder",
        "ServiceProxy",
        "MethodProxy",
        "RpcReply",
        "get_rpc_exchange",
        "RPC_QUEUE_TEMPLATE",
        "RPC_REPLY_QUEUE_TEMPLATE",
        "RPC_REPLY_QUEUE_TTL",
    },
    "nameko.events": {
        "SERVICE_POOL",
        "SINGLETON",
        "BROADCAST",
        "EventHandlerConfigurationError",
        "EventDispatcher",
        "EventHandler",
        "event_handler",
    },
    "nameko.messaging": {
        "HeaderEncoder",
        "HeaderDecoder",
        "Publisher",
        "Consumer",
        "QueueConsumer",
        "consume",
    },
    "nameko.amqp": {"UndeliverableMessage", "get_connection", "get_producer"},
    "nameko.amqp.publish": {"Publisher", "UndeliverableMessage"},
    "nameko.amqp.consume": {"Consumer"},
    "nameko.timer": {"Timer", "timer", "Cron", "cron"},  # shimeji: cron (D28)
    "nameko.dependency_providers": {"Config", "DependencyProvider"},
    "nameko.contextdata": {"ContextDataProvider", "Language", "UserId", "UserAgent", "AuthToken"},
    "nameko.standalone.rpc": {
        "ClusterRpcProxy",
        "ServiceRpcProxy",
        "ClusterProxy",
        "StandaloneProxyBase",
        "ClusterRpcClient",
        "ServiceRpcClient",
    },
    "nameko.standalone.events": {"event_dispatcher", "get_event_exchange"},
    "nameko.standalone.aio": {  # shimeji: the asyncio clients
        "AsyncEventDispatcher",
        "ClusterRpcClient",
        "ClusterRpcProxy",
        "ServiceRpcClient",
        "ServiceRpcProxy",
        "event_dispatcher",
    },
    "nameko.exceptions": {
        "ExtensionNotFound",
        "RpcTimeout",
        "ReplyQueueExpiredWithPendingReplies",
        "ContainerBeingKilled",
        "DeadlineExceeded",  # shimeji
        "DeliveryLimitExceeded",  # shimeji
        "RemoteError",
        "BadRequest",
        "MalformedRequest",
        "MethodNotFound",
        "IncorrectSignature",
        "UnknownService",
        "UnserializableValueError",
        "ConfigurationError",
        "CommandError",
        "ConnectionNotFound",
        "registry",
        "get_module_path",
        "safe_for_serialization",
        "serialize",
        "deserialize",
        "deserialize_to_instance",
    },
    "nameko.ops": {"OPS_ADDRESS_CONFIG_KEY", "OpsEndpoint", "serve_ops"},  # shimeji, D26
    "nameko.reliability": {  # shimeji
        "CallBudget",
        "Deadline",
        "DeadlineExceeded",
        "DeliveryLimitExceeded",
        "RetryPolicy",
    },
    "nameko.tracing": {"JsonFormatter", "TraceContextFilter", "TRACING_CONFIG_KEY"},  # shimeji
    "nameko.presence": {  # shimeji
        "EXCHANGE",
        "PRESENCE_CONFIG_KEY",
        "PRESENCE_INTERVAL_CONFIG_KEY",
        "Announcer",
        "Roster",
        "Seen",
    },
    "nameko.serialization": {"setup"},
    "nameko.utils": {"REDACTED", "get_redacted_args", "import_from_path", "sanitize_url"},
    "nameko.utils.retry": {"retry", "RetryDelay"},
    "nameko.utils.concurrency": {"fail_fast_imap", "SpawningProxy", "SpawningSet"},
    "nameko.log_helpers": {"make_timing_logger"},
    "nameko.testing.services": {
        "worker_factory",
        "entrypoint_hook",
        "entrypoint_waiter",
        "EntrypointWaiterTimeout",
        "MockDependencyProvider",
        "replace_dependencies",
        "restrict_entrypoints",
        "Once",
        "once",
        "dummy",
    },
    "nameko.testing.utils": {
        "ResourcePipeline",
        "get_extension",
        "get_container",
        "wait_for_call",
        "wait_for_worker_idle",
        "assert_stops_raising",
        "MockCallArgs",
        "unpack_mock_call",
        "AnyInstanceOf",
        "ANY_PARTIAL",
        "DummyProvider",
        "find_free_port",
    },
    "nameko.testing.waiting": {"WaitResult", "wait_for_call"},
    "nameko.testing.websocket": {"make_virtual_socket"},
    "nameko.testing.rabbit": {"Client"},
    "nameko.cli.main": {"main", "setup_parser"},
    "nameko.web.handlers": {"HttpRequestHandler", "http"},
    "nameko.web.server": {"BindAddress", "WebServer", "WsgiApp", "parse_address"},
    "nameko.web.websocket": {
        "SocketInfo",
        "Connection",
        "WebSocketServer",
        "WebSocketHubProvider",
        "WebSocketHub",
        "WebSocketRpc",
        "rpc",
    },
}


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_public_path_imports_with_exact_all(path):
    module = importlib.import_module(path)
    assert hasattr(module, "__all__"), f"{path} has no __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{path}.__all__ names missing attributes: {missing}"
    assert PUBLIC[path] <= set(module.__all__), PUBLIC[path] - set(module.__all__)


def test_nameko_3_names():
    # nameko 3 made ServiceRpc/ClusterRpcProxy aliases of RpcProxy/ClusterRpcClient;
    # shimeji keeps both families, each giving its own proxy objects
    from nameko.rpc import RESTRICTED_PUBLISHER_OPTIONS, Client, Proxy, RpcProxy, ServiceRpc

    assert Proxy is Client
    assert ServiceRpc is not RpcProxy
    assert RESTRICTED_PUBLISHER_OPTIONS == (
        "exchange",
        "routing_key",
        "mandatory",
        "reply_to",
        "correlation_id",
    )


@pytest.mark.parametrize(
    "obj,params",
    [
        ("nameko.containers:ServiceContainer", ["service_cls", "config"]),
        (
            "nameko.containers:WorkerContext",
            ["container", "service", "entrypoint", "args", "kwargs", "data"],
        ),
        ("nameko.extensions:Entrypoint", ["expected_exceptions", "sensitive_arguments", "kwargs"]),
        (
            "nameko.web.handlers:HttpRequestHandler",
            ["method", "url", "expected_exceptions", "sensitive_arguments", "kwargs"],
        ),
        ("nameko.runners:run_services", ["config", "services", "kill_on_exit"]),
        ("nameko.rpc:RpcProxy", ["target_service", "options"]),
        (
            "nameko.standalone.rpc:ClusterRpcProxy",
            ["config", "context_data", "timeout", "reply_listener_cls", "options"],
        ),
        ("nameko.standalone.rpc:ServiceRpcProxy", ["service_name", "args", "kwargs"]),
        (
            "nameko.standalone.rpc:ClusterRpcClient",
            ["context_data", "timeout", "publisher_options"],
        ),
        ("nameko.standalone.rpc:ServiceRpcClient", ["service_name", "args", "kwargs"]),
        (
            "nameko.standalone.aio:ClusterRpcProxy",
            ["config", "context_data", "timeout", "options"],
        ),
        (
            "nameko.standalone.aio:ServiceRpcProxy",
            ["service_name", "config", "context_data", "timeout", "options"],
        ),
        ("nameko.standalone.aio:ClusterRpcClient", ["context_data", "timeout", "options"]),
        ("nameko.standalone.aio:ServiceRpcClient", ["service_name", "args", "kwargs"]),
        ("nameko.rpc:ClusterRpc", ["publisher_options"]),
        ("nameko.rpc:ServiceRpc", ["target_service", "publisher_options"]),
        (
            "nameko.rpc:Client",
            ["publish", "register_for_reply", "context_data", "service_name", "method_name"],
        ),
        ("nameko.rpc:RpcCall", ["correlation_id", "send_request", "get_response"]),
        (
            "nameko.rpc:ServiceProxy",
            ["worker_ctx", "service_name", "reply_listener", "options"],
        ),
        (
            "nameko.rpc:MethodProxy",
            ["worker_ctx", "service_name", "method_name", "reply_listener", "options"],
        ),
        (
            "nameko.rpc:Responder",
            ["amqp_uri", "exchange", "serializer", "message", "ssl", "login_method"],
        ),
        (
            "nameko.amqp.consume:Consumer",
            [
                "amqp_uri",
                "ssl",
                "login_method",
                "queues",
                "callbacks",
                "heartbeat",
                "prefetch_count",
                "accept",
                "consumer_options",
            ],
        ),
        (
            "nameko.testing.services:entrypoint_hook",
            ["container", "method_name", "context_data", "timeout"],
        ),
        (
            "nameko.testing.services:entrypoint_waiter",
            ["container", "method_name", "timeout", "callback"],
        ),
    ],
)
def test_signatures(obj, params):
    path, _, name = obj.partition(":")
    target = getattr(importlib.import_module(path), name)
    signature = inspect.signature(target)
    assert [p for p in signature.parameters if p != "self"] == params


def test_constants_are_exact():
    from nameko import constants as c

    assert c.SERIALIZER_CONFIG_KEY == "serializer"
    assert c.DEFAULT_TRANSPORT_OPTIONS == {
        "max_retries": 3,
        "interval_start": 2,
        "interval_step": 1,
        "interval_max": 5,
    }
    assert (c.DEFAULT_MAX_WORKERS, c.DEFAULT_PARENT_CALLS_TRACKED, c.DEFAULT_HEARTBEAT) == (
        10,
        10,
        60,
    )
    assert c.HEADER_PREFIX == "nameko"
