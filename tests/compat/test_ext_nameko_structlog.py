"""nameko-structlog 0.2.2, unchanged, on shimeji (pip install --no-deps).

`StructlogDependency` reads ``container.config['STRUCTLOG']`` in ``setup()``
(an unknown ``PROCESSOR_NAME`` is nameko's `ConfigurationError`) and injects,
per worker, a structlog logger over the stdlib logger named
``worker_ctx.service_name``, bound with ``entrypoint=worker_ctx.call_id``, a
fresh ``log_transaction_id`` and the ``EXTRA_PARAMETERS``. It configures
structlog globally on first use (unless already configured).
"""

from __future__ import annotations

import json
import logging
import uuid

import nameko_structlog
import pytest
import structlog

from nameko.exceptions import ConfigurationError
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from tests.compat.ext_support import TIMEOUT, LogRecords, assert_installed_on_shimeji


class CallId(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx.call_id


class Greeter:
    name = "greeter"

    log = nameko_structlog.StructlogDependency()
    call_id = CallId()

    @rpc
    def greet(self, name):
        self.log.info("greeting %s", name, length=len(name))
        try:
            raise ValueError("oops")
        except ValueError:
            self.log.exception("handled")
        self.log.debug("quiet")  # below the logger's level: filtered
        return self.call_id


STRUCTLOG_CONFIG = {
    "INCLUDE_WORKER_NAME": True,
    "INCLUDE_LOG_TRANSACTION_ID": True,
    "PROCESSOR_NAME": "JSONRenderer",
    "PROCESSOR_OPTIONS": {"sort_keys": True},
    "EXTRA_PARAMETERS": {"pin": 1234, "env": "dev"},
}


@pytest.fixture(autouse=True)
def unconfigured_structlog():
    """The dependency configures structlog process-wide on first use."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("nameko-structlog", "0.2.2")


@pytest.mark.rabbit
def test_structlog_logger_per_worker_over_rpc(container_factory, rabbit_config):
    config = {**rabbit_config, "STRUCTLOG": STRUCTLOG_CONFIG}
    container = container_factory(Greeter, config)
    container.start()
    with (
        LogRecords("greeter", logging.INFO) as log,
        ClusterRpcProxy(config, timeout=TIMEOUT) as proxy,
    ):
        call_ids = [proxy.greeter.greet("ann"), proxy.greeter.greet("bob")]
    lines = [json.loads(message) for message in log.messages()]
    assert len(lines) == 4  # info + exception per call; debug filtered out
    assert [list(line) for line in lines[:1]] == [sorted(lines[0])]  # sort_keys
    transactions = []
    calls = zip(["ann", "bob"], call_ids, [lines[0:2], lines[2:4]], strict=True)
    for name, call_id, (info, exception) in calls:
        assert call_id.startswith("greeter.greet.")
        for line in (info, exception):
            assert line["entrypoint"] == call_id  # worker_ctx.call_id
            assert (line["pin"], line["env"]) == (1234, "dev")
            assert line["logger"] == "greeter"  # worker_ctx.service_name
            uuid.UUID(line["log_transaction_id"])
            assert line["timestamp"].endswith("Z")
        assert info["log_transaction_id"] == exception["log_transaction_id"]  # one per worker
        transactions.append(info["log_transaction_id"])
        assert (info["event"], info["level"], info["length"]) == (f"greeting {name}", "info", 3)
        assert exception["level"] == "error" and exception["event"] == "handled"
        assert exception["exception"].rstrip().endswith("ValueError: oops")
    assert len(set(transactions)) == 2
    assert [r.levelno for r in log.records] == [logging.INFO, logging.ERROR] * 2


def test_key_value_renderer_without_worker_name(container_factory, memory_config):
    config = {
        **memory_config,
        "STRUCTLOG": {
            "PROCESSOR_NAME": "KeyValueRenderer",
            "PROCESSOR_OPTIONS": {"key_order": ["event", "level"]},
            "INCLUDE_WORKER_NAME": False,
            "INCLUDE_LOG_TRANSACTION_ID": False,
        },
    }
    container = container_factory(Greeter, config)
    container.start()
    with LogRecords("greeter", logging.INFO) as log, entrypoint_hook(container, "greet") as greet:
        greet("kv")
    info = log.messages()[0]
    assert info.startswith("event='greeting kv' level='info' ")
    assert "length=2" in info and "logger='greeter'" in info
    assert "entrypoint=" not in info and "log_transaction_id=" not in info


def test_unknown_processor_is_a_configuration_error(container_factory, memory_config):
    config = {**memory_config, "STRUCTLOG": {"PROCESSOR_NAME": "ConsoleRenderer"}}
    container = container_factory(Greeter, config)
    with pytest.raises(ConfigurationError, match="Invalid `PROCESSOR_NAME` provided"):
        container.start()
