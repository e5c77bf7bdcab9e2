"""The plugin's own tests: each runs an inner pytest session in a subprocess
(pytester), where the installed plugin loads through its entry point as it
does for users."""

from __future__ import annotations

import pytest

from tests.plugin.fake_management_api import FakeManagementApi


def pytest_configure(config):
    # The brief's `pytest_plugins = ["pytester"]` is refused by pytest in a
    # conftest below the rootdir once the whole suite runs ("Defining
    # 'pytest_plugins' in a non-top-level conftest is no longer supported"),
    # so pytester is registered here instead, for this directory's tests.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture
def fake_api():
    """A stand-in for RabbitMQ's management HTTP API on a local port."""
    with FakeManagementApi() as api:
        yield api


QUIET = ("-p", "no:nameko_sqlalchemy", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")


@pytest.fixture
def run_inner(pytester):
    """run_inner(*args, timeout=60) -> the outcome of a pytest session in a
    subprocess, in pytester's folder, with this project's plugin loaded."""

    def run(*args, timeout=60):
        return pytester.runpytest_subprocess(*QUIET, "-q", *args, timeout=timeout)

    return run
