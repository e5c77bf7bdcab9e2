"""Broker names (SPEC 3.1, 4.1, 4.4, Appendix B) and nameko.constants (SPEC 1.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nameko import constants
from nameko._protocol import names
from nameko._protocol.names import (
    BROADCAST,
    RPC_REPLY_QUEUE_TTL,
    SERVICE_POOL,
    SINGLETON,
    EventQueueSpec,
    event_exchange_name,
    event_handler_queue,
    event_queue_name,
    method_from_routing_key,
    parse_routing_key,
    reply_queue_arguments,
    reply_queue_name,
    rpc_binding_key,
    rpc_exchange_name,
    rpc_queue_name,
    rpc_routing_key,
    service_from_routing_key,
)

UUID = "2dc8296b-2d6a-4d3c-9d3f-8a9a9d3d1f00"


class TestRpcNames:
    def test_exchange_default(self):
        assert rpc_exchange_name({}) == "nameko-rpc"

    def test_exchange_from_config(self):
        assert rpc_exchange_name({"rpc_exchange": "other-rpc"}) == "other-rpc"

    def test_request_queue(self):
        assert rpc_queue_name("svc_a") == "rpc-svc_a"

    def test_routing_and_binding_keys(self):
        assert rpc_routing_key("svc_a", "hello") == "svc_a.hello"
        assert rpc_binding_key("svc_a") == "svc_a.*"

    def test_reply_queue(self):
        assert reply_queue_name("svc_a", UUID) == f"rpc.reply-svc_a-{UUID}"
        assert (
            reply_queue_name(names.STANDALONE_RPC_PROXY_NAME, UUID)
            == f"rpc.reply-standalone_rpc_proxy-{UUID}"
        )
        assert (
            reply_queue_name(names.STANDALONE_RPC_CLIENT_NAME, UUID)
            == f"rpc.reply-standalone_rpc_client-{UUID}"
        )

    def test_reply_queue_ttl(self):
        assert RPC_REPLY_QUEUE_TTL == 300000
        assert reply_queue_arguments() == {"x-expires": 300000}
        # a fresh dict each time: callers may mutate theirs
        assert reply_queue_arguments() is not reply_queue_arguments()

    def test_templates_match_nameko_rpc_module(self):
        assert names.RPC_QUEUE_TEMPLATE.format("x") == "rpc-x"
        assert names.RPC_REPLY_QUEUE_TEMPLATE.format("x", "y") == "rpc.reply-x-y"

    @pytest.mark.parametrize(
        ("routing_key", "method"),
        [("svc_a.hello", "hello"), ("svc_a.nosuch", "nosuch"), ("a.b.c", "c"), ("plain", "plain")],
    )
    def test_method_from_routing_key(self, routing_key, method):
        assert parse_routing_key(routing_key) == method
        assert method_from_routing_key(routing_key) == method

    def test_service_from_routing_key(self):
        assert service_from_routing_key("svc_a.hello") == "svc_a"
        assert service_from_routing_key("plain") == ""

    @given(
        service=st.from_regex(r"[a-z_][a-z0-9_\-]{0,20}", fullmatch=True),
        method=st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
    )
    def test_routing_key_round_trip(self, service, method):
        key = rpc_routing_key(service, method)
        assert parse_routing_key(key) == method
        assert service_from_routing_key(key) == service


class TestEventNames:
    def test_exchange(self):
        assert event_exchange_name("svc_a") == "svc_a.events"

    def test_handler_type_values(self):
        assert (SERVICE_POOL, SINGLETON, BROADCAST) == ("service_pool", "singleton", "broadcast")

    def test_queue_names_match_appendix_b(self):
        args = ("svc_a", "thing_happened", "svc_b")
        assert (
            event_queue_name(SERVICE_POOL, *args, "pool_handler")
            == "evt-svc_a-thing_happened--svc_b.pool_handler"
        )
        assert event_queue_name(SINGLETON, *args, "single") == "evt-svc_a-thing_happened"
        assert (
            event_queue_name(
                BROADCAST, *args, "broadcast_handler", "77d41cbf518b46ffb412d80953e39e9b"
            )
            == "evt-svc_a-thing_happened--svc_b.broadcast_handler-77d41cbf518b46ffb412d80953e39e9b"
        )

    def test_unknown_handler_type(self):
        with pytest.raises(ValueError, match="unknown event handler type"):
            event_queue_name("nope", "a", "b", "c", "d")

    @pytest.mark.parametrize("reliable", [True, False])
    def test_pool_and_singleton_flags(self, reliable):
        for handler_type in (SERVICE_POOL, SINGLETON):
            spec = event_handler_queue(
                handler_type, "src", "evt", "svc", "meth", reliable_delivery=reliable
            )
            assert spec.durable is True
            assert spec.auto_delete is (not reliable)
            assert spec.exclusive is False
            assert spec.exchange == "src.events"
            assert spec.routing_key == "evt"

    def test_broadcast_unreliable_flags(self):
        spec = event_handler_queue(
            BROADCAST,
            "src",
            "evt",
            "svc",
            "meth",
            reliable_delivery=False,
            broadcast_identifier="abc",
        )
        assert spec == EventQueueSpec(
            name="evt-src-evt--svc.meth-abc",
            exchange="src.events",
            routing_key="evt",
            durable=True,
            auto_delete=True,
            exclusive=True,
        )

    def test_broadcast_reliable_flags(self):
        spec = event_handler_queue(
            BROADCAST, "src", "evt", "svc", "meth", broadcast_identifier="custom"
        )
        assert (spec.durable, spec.auto_delete, spec.exclusive) == (True, False, False)

    def test_spec_is_frozen(self):
        spec = event_handler_queue(SINGLETON, "src", "evt", "svc", "meth")
        with pytest.raises(AttributeError):
            spec.name = "x"  # type: ignore[misc]


EXPECTED_CONSTANTS = {
    "AMQP_URI_CONFIG_KEY": "AMQP_URI",
    "WEB_SERVER_CONFIG_KEY": "WEB_SERVER_ADDRESS",
    "RPC_EXCHANGE_CONFIG_KEY": "rpc_exchange",
    "SERIALIZER_CONFIG_KEY": "serializer",
    "SERIALIZERS_CONFIG_KEY": "SERIALIZERS",
    "ACCEPT_CONFIG_KEY": "ACCEPT",
    "HEARTBEAT_CONFIG_KEY": "HEARTBEAT",
    "AMQP_SSL_CONFIG_KEY": "AMQP_SSL",
    "TRANSPORT_OPTIONS_CONFIG_KEY": "TRANSPORT_OPTIONS",
    "LOGIN_METHOD_CONFIG_KEY": "LOGIN_METHOD",
    "MAX_WORKERS_CONFIG_KEY": "max_workers",
    "PARENT_CALLS_CONFIG_KEY": "parent_calls_tracked",
    "DEFAULT_MAX_WORKERS": 10,
    "DEFAULT_PARENT_CALLS_TRACKED": 10,
    "DEFAULT_SERIALIZER": "json",
    "DEFAULT_RETRY_POLICY": {"max_retries": 3},
    "DEFAULT_HEARTBEAT": 60,
    "DEFAULT_TRANSPORT_OPTIONS": {
        "max_retries": 3,
        "interval_start": 2,
        "interval_step": 1,
        "interval_max": 5,
    },
    "CALL_ID_STACK_CONTEXT_KEY": "call_id_stack",
    "AUTH_TOKEN_CONTEXT_KEY": "auth_token",
    "LANGUAGE_CONTEXT_KEY": "language",
    "USER_ID_CONTEXT_KEY": "user_id",
    "USER_AGENT_CONTEXT_KEY": "user_agent",
    "HEADER_PREFIX": "nameko",
    "NON_PERSISTENT": 1,
    "PERSISTENT": 2,
    "PREFETCH_COUNT_CONFIG_KEY": "PREFETCH_COUNT",
    "DEFAULT_PREFETCH_COUNT": 10,
    "DEFAULT_AMQP_URI": "pyamqp://guest:guest@localhost",
}


@pytest.mark.parametrize(("name", "value"), sorted(EXPECTED_CONSTANTS.items()))
def test_constant_values(name, value):
    assert getattr(constants, name) == value


def test_constants_all_is_exactly_the_contract():
    assert sorted(constants.__all__) == sorted(EXPECTED_CONSTANTS)
