"""A nameko 2.x test suite that still patches in its conftest.py (as nameko
2.x's plugin advised): it stops after collection in one line, with status
2, instead of hanging in the first test that starts a service. Real eventlet
(the ``ext`` extra), in an inner pytest session."""

from __future__ import annotations

TEST = """
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy


class Pinger:
    name = "pinger"

    @rpc
    def ping(self):
        return "pong"


def test_ping(container_factory, memory_config):
    container_factory(Pinger, memory_config).start()
    with ClusterRpcProxy(memory_config, timeout=5) as n:
        assert n.pinger.ping() == "pong"
"""


def test_a_suite_that_patches_threads_stops_in_one_line(pytester, run_inner):
    pytester.makeconftest("import eventlet\neventlet.monkey_patch()\n")
    pytester.makepyfile(test_ping=TEST)
    result = run_inner(timeout=60)
    assert result.ret == 2
    refusals = [line.strip("! ") for line in result.outlines if "Error:" in line]
    assert refusals == [  # in pytest's banner of exclamation marks
        "_pytest.outcomes.Exit: Error: eventlet.monkey_patch() was called by module "
        "'conftest'; shimeji runs services on OS threads and cannot run with eventlet's "
        "patching: remove the call (see docs/migration.md)"
    ]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_suite_that_imports_eventlet_without_patching_runs(pytester, run_inner):
    pytester.makeconftest("import eventlet  # a helper uses eventlet.sleep, unpatched\n")
    pytester.makepyfile(test_ping=TEST)
    result = run_inner(timeout=60)
    result.assert_outcomes(passed=1)
