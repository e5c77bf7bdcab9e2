"""nameko 2.x service modules that still bring eventlet (or gevent) along.

A module that patches threads (``eventlet.monkey_patch()``, gevent's
``patch_all()``) used to serve and then crash on SIGTERM; `nameko run` now
refuses it before connecting, in one line with exit status 2. A module that
only imports eventlet, or uses ``eventlet.sleep`` and ``GreenPool`` without
patching, runs as before; patching that leaves threads alone runs with one
warning. Real eventlet and gevent (the ``ext`` extra), in real `nameko run`
processes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import SRC, NamekoProcess, wait_until_serving

TIMEOUT = 30
GUIDE = "(see docs/migration.md)"

SERVICE = """\
from nameko.rpc import rpc


class Greeter:
    name = "greeter"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def hello(self, who):
        return "hello " + who
"""

GREEN_TOOLS = """\
import eventlet
from nameko.rpc import rpc


class Greeter:
    name = "greeter"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def hello(self, who):
        eventlet.sleep(0.01)
        pool = eventlet.GreenPool(2)
        return list(pool.imap(str.upper, [who, who]))
"""


def nameko_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nameko", "run", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )


def ours(stderr: str) -> list[str]:
    """Our lines and any traceback, not eventlet's deprecation warning (printed
    when a module imports it)."""
    lines = stderr.splitlines()
    return [
        line for line in lines if line.startswith(("Error", "Traceback")) or "has patched" in line
    ]


@pytest.mark.parametrize(
    ("files", "culprit"),
    [
        (
            {"svc.py": "import eventlet\neventlet.monkey_patch()\n" + SERVICE},
            "eventlet.monkey_patch() was called by module 'svc'",
        ),
        (  # the call is in a module the service imports
            {
                "greening.py": "from eventlet import monkey_patch\nmonkey_patch()\n",
                "svc.py": "import greening\n" + SERVICE,
            },
            "eventlet.monkey_patch() was called by module 'greening'",
        ),
        (
            {"svc.py": "from gevent import monkey\nmonkey.patch_all()\n" + SERVICE},
            "gevent.monkey.patch_all() was called by module 'svc'",
        ),
    ],
)
def test_patched_threads_are_refused_in_one_line(tmp_path, files, culprit):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = nameko_run(tmp_path, "--broker", "memory://", "svc")
    assert result.returncode == 2
    library = "gevent" if "gevent" in culprit else "eventlet"
    assert ours(result.stderr) == [
        f"Error: {culprit}; shimeji runs services on OS threads and cannot run with "
        f"{library}'s patching: remove the call {GUIDE}"
    ]
    assert "Connected to" not in result.stdout + result.stderr  # nothing started


def test_patching_before_the_services_are_imported_is_refused_too(tmp_path):
    """A wrapper script that patches, then hands over to the CLI."""
    (tmp_path / "svc.py").write_text(SERVICE)
    wrapper = (
        "import sys, eventlet; eventlet.monkey_patch()\n"
        "from nameko.cli.main import main\n"
        "sys.argv = ['nameko', 'run', '--broker', 'memory://', 'svc']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert ours(result.stderr) == [
        "Error: eventlet.monkey_patch() was called before the service modules were imported "
        "(a sitecustomize or wrapper?); shimeji runs services on OS threads and cannot run "
        f"with eventlet's patching: remove the call {GUIDE}"
    ]


def test_a_module_that_only_imports_eventlet_serves_and_stops_cleanly(tmp_path, rabbit_uri):
    """``eventlet.sleep`` and ``GreenPool`` without patching happen to work:
    no warning, calls answered, SIGTERM exits 0."""
    (tmp_path / "svc.py").write_text(GREEN_TOOLS)
    proc = NamekoProcess(tmp_path, ["--broker", rabbit_uri, "svc"], tmp_path / "run.log")
    try:
        wait_until_serving({"AMQP_URI": rabbit_uri}, "greeter", "ping", TIMEOUT)
        with ClusterRpcProxy({"AMQP_URI": rabbit_uri}, timeout=TIMEOUT) as rpc:
            assert rpc.greeter.hello("ann") == ["ANN", "ANN"]
        proc.signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        assert ours(proc.output()) == []
    finally:
        proc.close()


def test_patching_that_leaves_threads_alone_warns_once_and_serves(tmp_path, rabbit_uri):
    patched = "import eventlet\neventlet.monkey_patch(socket=True)\n"
    (tmp_path / "svc.py").write_text(patched + SERVICE)
    proc = NamekoProcess(tmp_path, ["--broker", rabbit_uri, "svc"], tmp_path / "run.log")
    try:
        wait_until_serving({"AMQP_URI": rabbit_uri}, "greeter", "ping", TIMEOUT)
        with ClusterRpcProxy({"AMQP_URI": rabbit_uri}, timeout=TIMEOUT) as rpc:
            assert rpc.greeter.hello("bob") == "hello bob"
        proc.signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        assert ours(proc.output()) == [
            "eventlet has patched socket (by module 'svc'); shimeji runs services on OS "
            f"threads and gains nothing from it: remove the call {GUIDE}"
        ]
    finally:
        proc.close()
