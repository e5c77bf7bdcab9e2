"""`nameko run -c ... -d KEY=VALUE` with nameko 3-style and 2.x-style services in
one process, on the real RabbitMQ."""

from __future__ import annotations

from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import wait_until_serving

TIMEOUT = 30


def test_defines_reach_the_global_config_and_both_styles_call_each_other(nameko_run, rabbit_uri):
    proc = nameko_run(
        ["-d", "MARKUP=2", "--define", "GREETING=bonjour", "nameko3_services"],
        files=["nameko3_services.py"],
        config={"PRICES": {"tea": 3}, "MARKUP": 1},
    )
    broker = {"AMQP_URI": rabbit_uri}
    try:
        wait_until_serving(broker, "shop")
        with ClusterRpcProxy(broker, timeout=TIMEOUT) as rpc:
            assert rpc.prices.price("tea") == 6  # the define beat the file's MARKUP: 1
            assert rpc.shop.quote("tea") == {"price": 6, "greeting": "bonjour"}
    finally:
        proc.close()
    assert "Traceback" not in proc.output()
