"""nameko-slack 0.0.6, unchanged, on shimeji (pip install --no-deps).

Its `Slack` dependency provider reads ``config["SLACK"]`` (``TOKEN``, or
``BOTS`` by bot name) in ``setup()`` and gives workers a ``SlackClient``.
Its tests pick the nameko 3 style when ``nameko.config.patch`` exists:
``patch = nameko.config.patch(config); patch.start()``, then
``ServiceContainer(Service)`` with no config, and ``patch.stop()`` at
teardown, the `unittest.mock.patch` protocol.
"""

from __future__ import annotations

import nameko_slack
import pytest
from nameko_slack import constants
from nameko_slack.web import Slack
from slackclient import SlackClient

import nameko
from nameko.containers import ServiceContainer
from nameko.exceptions import ConfigurationError
from nameko.testing.services import dummy
from nameko.testing.utils import get_extension
from tests.compat.ext_support import assert_installed_on_shimeji


class Service:
    name = "service"

    slack_api = Slack()
    alice = Slack("Alice")

    @dummy
    def dummy(self):
        pass


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("nameko-slack", "0.0.6")
    assert nameko_slack.web.Slack is Slack


def test_a_started_config_patch_configures_a_nameko_3_container_until_stopped():
    config = {constants.CONFIG_KEY: {"TOKEN": "xxx-000", "BOTS": {"Alice": "aaa-111"}}}
    config_patch = nameko.config.patch(config)
    assert config_patch.start() is nameko.config
    try:
        container = ServiceContainer(Service)  # nameko 3: the global config
        providers = {p.attr_name: p for p in container.dependencies}
        for provider in providers.values():
            provider.setup()
        assert isinstance(providers["slack_api"].client, SlackClient)
        assert providers["slack_api"].client.token == "xxx-000"
        assert providers["alice"].client.token == "aaa-111"
        assert get_extension(container, Slack, bot_name="Alice") is providers["alice"]
    finally:
        config_patch.stop()
    assert constants.CONFIG_KEY not in nameko.config  # restored
    config_patch.stop()  # a second stop is a no-op, as with mock.patch


def test_setup_without_its_config_key_is_a_configuration_error():
    config_patch = nameko.config.patch({"OTHER": 1})
    config_patch.start()
    try:
        container = ServiceContainer(Service)  # extensions hold it weakly
        provider = get_extension(container, Slack, bot_name=None)
        with pytest.raises(ConfigurationError, match="`SLACK` config key not found"):
            provider.setup()
    finally:
        config_patch.stop()
