"""Services, methods and events named in any language, over RabbitMQ.

RabbitMQ takes any UTF-8 queue or exchange name up to 255 bytes, and nameko
2.14 (through py-amqp) passed such names on; pamqp's stricter ASCII grammar
must not get in the way.
"""

from __future__ import annotations

from nameko.events import EventDispatcher, event_handler
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

TIMEOUT = 10


class 问候服务:
    name = "问候服务"
    dispatch = EventDispatcher()

    @rpc
    def 问好(self, 名字):
        self.dispatch("已问好", 名字)
        return f"你好, {名字}!"


class 记录服务:
    name = "记录服务"

    @event_handler("问候服务", "已问好")
    def 记下(self, 名字):
        return 名字


def test_a_service_named_in_chinese_answers_and_its_events_arrive(
    runner_factory, rabbit_config_uri
):
    runner = runner_factory(rabbit_config_uri, 问候服务, 记录服务)
    runner.start()
    [recorder] = [c for c in runner.containers if c.service_name == "记录服务"]
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        with entrypoint_waiter(recorder, "记下", timeout=TIMEOUT) as result:
            assert rpc["问候服务"].问好("世界") == "你好, 世界!"
    assert result.get() == "世界"
