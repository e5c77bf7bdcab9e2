"""nameko 3's global config (`from nameko import config`) beside 2.x config dicts."""

from __future__ import annotations

import threading

import pytest
import yaml

import nameko
from nameko import config
from nameko._messaging.connection import amqp_uri, config_with_uri
from nameko.cli.main import main
from nameko.constants import DEFAULT_AMQP_URI
from nameko.containers import ServiceContainer, get_container_cls
from nameko.dependency_providers import Config
from nameko.events import event_handler
from nameko.exceptions import ConfigurationError
from nameko.rpc import rpc
from nameko.runners import ServiceRunner, run_services
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

TIMEOUT = 10


class Settings:
    name = "settings"
    config = Config()

    @rpc
    def get(self, key):
        return self.config.get(key)


def test_the_global_config_is_a_mapping_exported_by_the_package():
    assert isinstance(config, nameko.Config)
    assert nameko.config is config
    config.setup({"a": 1})
    assert dict(config) == {"a": 1}
    config.setup({"b": 2})  # replaces, does not merge
    assert dict(config) == {"b": 2}


def test_patch_restores_a_deep_copy_and_nests():
    config.setup({"LIMITS": {"rate": 1}, "keep": True})
    with config.patch({"LIMITS": {"rate": 2}}):
        assert config["LIMITS"] == {"rate": 2} and config["keep"] is True
        with config.patch({"extra": 3}, clear=True):
            assert dict(config) == {"extra": 3}
        config["LIMITS"]["rate"] = 99  # mutating inside the patch leaks nothing
    assert dict(config) == {"LIMITS": {"rate": 1}, "keep": True}


def test_patch_restores_when_the_block_raises():
    config.setup({"a": 1})
    with pytest.raises(KeyError), config.patch({"a": 2}):
        raise KeyError
    assert config["a"] == 1


def test_patch_decorates_functions_and_generators():
    @config.patch({"mode": "fn"})
    def read():
        return config["mode"]

    @config.patch({"mode": "gen"})
    def fixture_like():
        yield config["mode"]
        yield config["mode"]

    assert read() == "fn"
    assert list(fixture_like()) == ["gen", "gen"]
    assert "mode" not in config


def test_a_2x_config_dict_without_a_broker_is_an_error_the_global_one_has_a_default():
    with pytest.raises(ConfigurationError, match="AMQP_URI is not set"):
        amqp_uri({})
    assert amqp_uri(config) == DEFAULT_AMQP_URI
    assert config_with_uri(None, None)["AMQP_URI"] == DEFAULT_AMQP_URI
    with config.patch({"AMQP_URI": "memory://x"}):
        assert config_with_uri(None, None)["AMQP_URI"] == "memory://x"
        assert config_with_uri(None, "memory://y")["AMQP_URI"] == "memory://y"
        assert config_with_uri({}, "memory://z") == {"AMQP_URI": "memory://z"}


def test_a_container_without_config_reads_the_global_one(memory_config):
    with config.patch({**memory_config, "max_workers": 3, "colour": "blue"}):
        container = ServiceContainer(Settings)  # nameko 3 style
        assert container.config is config
        assert container.max_workers == 3
        container.start()
        try:
            # ... called by a 2.x-style client with an explicit dict
            with ClusterRpcProxy(dict(memory_config), timeout=TIMEOUT) as proxy:
                assert proxy.settings.get("colour") == "blue"
        finally:
            container.stop()


def test_the_global_config_is_read_at_use_so_patches_apply(memory_config):
    container_cls = get_container_cls()
    with config.patch({**memory_config, "colour": "red"}):
        assert container_cls is ServiceContainer
        runner = ServiceRunner()
        runner.add_service(Settings)
        runner.start()
        try:
            with ClusterRpcProxy(dict(memory_config), timeout=TIMEOUT) as proxy:
                assert proxy.settings.get("colour") == "red"
        finally:
            runner.stop()


@pytest.mark.parametrize("style", ["2.x", "3.x"])
def test_run_services_takes_a_config_first_or_none(memory_config, style):
    args = (Settings,) if style == "3.x" else (dict(memory_config, colour="green"), Settings)
    with config.patch({**memory_config, "colour": "green"}):
        with run_services(*args) as runner:
            assert [c.service_name for c in runner.containers] == ["settings"]
            with ClusterRpcProxy(dict(memory_config), timeout=TIMEOUT) as proxy:
                assert proxy.settings.get("colour") == "green"


def test_event_dispatcher_without_config_uses_the_global_one(memory_config):
    got = threading.Event()

    class Listener:
        name = "listener"

        @event_handler("src", "ping")
        def on_ping(self, payload):
            got.payload = payload
            got.set()

    with config.patch(memory_config), run_services(Listener):
        event_dispatcher()("src", "ping", {"n": 1})  # nameko 3: no config argument
        assert got.wait(TIMEOUT)
    assert got.payload == {"n": 1}


def _show_config(tmp_path, capsys, *flags):
    path = tmp_path / "config.yaml"
    path.write_text("AMQP_URI: memory://cli\nmax_workers: 4\nname: file\n")
    with pytest.raises(SystemExit) as exit_:
        main(["show-config", "-c", str(path), *flags])
    captured = capsys.readouterr()
    return exit_.value.code, captured


def test_define_overrides_the_file_reads_yaml_and_fills_the_global_config(tmp_path, capsys):
    code, out = _show_config(
        tmp_path, capsys, "-d", "max_workers=7", "--define", "DEBUG", "-d", "TAGS=[a, b]"
    )
    assert code == 0
    shown = yaml.safe_load(out.out)
    assert shown["max_workers"] == 7 and shown["DEBUG"] is True and shown["TAGS"] == ["a", "b"]
    assert shown["name"] == "file"
    assert config["max_workers"] == 7 and config["AMQP_URI"] == "memory://cli"


@pytest.mark.parametrize(
    ("define", "message"),
    [("=1", "--define wants KEY=VALUE"), ("K=[1,", "--define K: the value is not valid YAML")],
)
def test_a_bad_define_is_a_one_line_error(tmp_path, capsys, define, message):
    code, out = _show_config(tmp_path, capsys, "-d", define)
    assert code != 0
    assert message in out.err
    assert "Traceback" not in out.err


def test_patch_start_and_stop_like_mock_patch():
    config.setup({"a": 1})
    outer, inner = config.patch({"a": 2}), config.patch({"b": 3}, clear=True)
    assert outer.start() is config and config["a"] == 2
    inner.start()
    assert dict(config) == {"b": 3}
    inner.stop()
    assert dict(config) == {"a": 2}
    outer.stop()
    assert dict(config) == {"a": 1}
    outer.stop()  # never started again: a no-op, as with unittest.mock.patch
    assert dict(config) == {"a": 1}
