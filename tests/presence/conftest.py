"""Every presence test runs on both brokers."""

from tests.both_brokers import config, start  # noqa: F401 (fixtures)
