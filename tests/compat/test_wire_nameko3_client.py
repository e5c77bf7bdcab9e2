"""nameko 3's standalone client (shimeji's `ClusterRpcClient()`, config from
the global config) calling a real nameko 2.14.1 service on RabbitMQ."""

from __future__ import annotations

import re

import pytest

from nameko import config
from nameko.exceptions import MethodNotFound, RemoteError, UnknownService
from nameko.standalone.rpc import ClusterRpcClient
from tests.compat.test_wire_nameko214 import TIMEOUT, UUID, both_sides, nameko_python  # noqa: F401

pytestmark = [pytest.mark.rabbit, pytest.mark.compat]


def test_cluster_rpc_client_calls_nameko_2_14(both_sides, rabbit_uri):  # noqa: F811
    with config.patch({"AMQP_URI": rabbit_uri}):
        context = {"language": "fr", "user_id": 7}
        with ClusterRpcClient(context_data=context, timeout=TIMEOUT) as rpc:
            nameko = rpc.nameko_side
            assert nameko.hello("three") == "nameko_side says hello to three"
            calls = [nameko.hello.call_async(str(i)) for i in range(3)]
            assert [c.result() for c in calls] == [
                f"nameko_side says hello to {i}" for i in range(3)
            ]
            seen = nameko.context()
            assert (seen["language"], seen["user_id"]) == ("fr", 7)
            stack = [UUID.sub("<id>", entry) for entry in seen["stack"]]
            assert stack == ["standalone_rpc_client.<id>.<id>", "nameko_side.context.<id>"]
            # through nameko 2.14's RpcProxy to shimeji's service and back
            assert nameko.relay_hello("via") == "shimeji_side says hello to via"
            with pytest.raises(RemoteError, match=re.escape("ValueError ('bad thing', 42)")):
                nameko.boom()
            with pytest.raises(MethodNotFound):
                nameko.no_such_method()
            with pytest.raises(UnknownService):
                rpc.no_such_service.method()
