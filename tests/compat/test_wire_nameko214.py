"""Wire compatibility with a real nameko 2.14.1 on one RabbitMQ vhost.

`peers/peer_services.py` defines the same service twice (and
`peers/async_peer.py` a third time, as shimeji ``async def`` methods): ``nameko_side`` is
run by nameko 2.14.1 (in its own virtualenv, ``.venv-nameko``, made by
scripts/bootstrap) and ``shimeji_side`` by shimeji; each calls the other
through ``RpcProxy``. `peers/nameko_client.py` exercises one side with the
standalone client; it runs under both implementations too. Every client x
service pair must give the same results, with nameko-on-nameko as reference.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nameko.exceptions import UnknownService
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import assert_stops_raising

pytestmark = [pytest.mark.rabbit, pytest.mark.compat]

ROOT = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).parent / "peers"
NAMEKO_PYTHON = ROOT / ".venv-nameko" / "bin" / "python"
SHIMEJI_PYTHON = Path(sys.executable)
TIMEOUT = 60
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def peer_env(python: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if python == SHIMEJI_PYTHON:  # our package, wherever pytest found it
        import nameko

        env["PYTHONPATH"] = str(Path(nameko.__file__).parents[1])
    return env


@pytest.fixture(scope="module")
def nameko_python() -> Path:
    assert NAMEKO_PYTHON.exists(), "nameko 2.14.1 peer missing: run scripts/bootstrap"
    return NAMEKO_PYTHON


@contextmanager
def running_both_sides(config: dict, nameko_python: Path, log_path: Path) -> Iterator[None]:
    """nameko_side under nameko 2.14.1 (`nameko run`), shimeji_side under
    shimeji with ``config`` (its AMQP_URI is the peer's broker too)."""
    uri = config["AMQP_URI"]
    args = ["-m", "nameko", "run", "--broker", uri, "peer_services:NamekoSide"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(nameko_python), *args],
            cwd=PEERS,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=peer_env(nameko_python),
        )
    sys.path.insert(0, str(PEERS))
    try:
        import peer_services

        runner = ServiceRunner(config)
        runner.add_service(peer_services.ShimejiSide)
        runner.start()
        try:
            wait_for(uri, "nameko_side")
            wait_for(uri, "shimeji_side")
            yield
        finally:
            runner.stop()
    finally:
        sys.path.remove(str(PEERS))
        proc.terminate()
        proc.wait(TIMEOUT)


@pytest.fixture
def both_sides(rabbit_uri, nameko_python, tmp_path):
    with running_both_sides({"AMQP_URI": rabbit_uri}, nameko_python, tmp_path / "nameko-side.log"):
        yield


def wait_for(uri: str, service: str) -> None:
    with ClusterRpcProxy({"AMQP_URI": uri}, timeout=TIMEOUT) as rpc:
        assert_stops_raising(lambda: rpc[service].hello("ready"), UnknownService, timeout=TIMEOUT)


def run_client(python: Path, uri: str, service: str) -> dict:
    out = subprocess.run(
        [str(python), "nameko_client.py", uri, service],
        cwd=PEERS,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=peer_env(python),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def normalise(results: dict, service: str) -> dict:
    other = "shimeji_side" if service == "nameko_side" else "nameko_side"
    text = json.dumps(results, sort_keys=True)
    text = UUID.sub("<id>", text).replace(service, "<self>").replace(other, "<other>")
    return json.loads(text)


def check_reference(r: dict) -> None:
    """What nameko 2.14.1 answers, pinned so that equality can't be vacuous."""
    assert r["hello"] == {"ok": "<self> says hello to nameko"}
    assert r["echo"] == {
        "ok": {"args": [1, "two", [3]], "kwargs": {"k": {"nested": [None, True, 1.5]}}}
    }
    assert r["async_results"] == {
        "ok": ["<self> says hello to 0", "<self> says hello to 1", "<self> says hello to 2"]
    }
    assert r["boom"] == {
        "remote_error": ["ValueError", "('bad thing', 42)", "ValueError ('bad thing', 42)"]
    }
    assert r["missing"] == {"error": ["MethodNotFound", ["no_such_method"]]}
    assert r["signature"]["error"][0] == "IncorrectSignature"
    assert r["context"]["ok"]["language"] == "fr" and r["context"]["ok"]["user_id"] == 7
    assert r["context"]["ok"]["stack"] == ["standalone_rpc_proxy.call.<id>", "<self>.context.<id>"]
    theirs = r["relay_context"]["ok"]["theirs"]
    assert (theirs["language"], theirs["user_id"]) == ("fr", 7)  # survives the hop
    assert theirs["stack"] == [
        "standalone_rpc_proxy.call.<id>",
        "<self>.relay_context.<id>",
        "<other>.context.<id>",
    ]
    assert r["relay_hello"] == {"ok": "<other> says hello to via"}
    assert r["relay_boom"]["ok"] == {
        "type": "RemoteError",
        "str": "ValueError ('bad thing', 42)",
        "exc_type": "ValueError",
    }
    assert r["relay_missing"]["ok"] == {"type": "MethodNotFound", "args": ["no_such_method"]}
    assert r["relay_fanout"]["ok"] == [
        "<other> says hello to a",
        "<other> says hello to b",
        "<other> says hello to c",
    ]
    assert r["unknown_service"] == {"error": ["UnknownService", ["no_such_service"]]}


def test_every_client_and_service_pairing_agrees(both_sides, rabbit_uri, nameko_python):
    reference = normalise(run_client(nameko_python, rabbit_uri, "nameko_side"), "nameko_side")
    check_reference(reference)
    for python in (nameko_python, SHIMEJI_PYTHON):
        for service in ("nameko_side", "shimeji_side"):
            if (python, service) == (nameko_python, "nameko_side"):
                continue
            got = normalise(run_client(python, rabbit_uri, service), service)
            assert got == reference, f"{python.parent.parent.name} client -> {service} differs"


def test_an_async_shimeji_service_between_nameko_peers(both_sides, rabbit_uri, nameko_python):
    """nameko 2.14.1 client -> shimeji ``async def`` service -> nameko 2.14.1
    service (and back): the answers are nameko-on-nameko's."""
    import async_peer

    reference = normalise(run_client(nameko_python, rabbit_uri, "nameko_side"), "nameko_side")
    runner = ServiceRunner({"AMQP_URI": rabbit_uri})
    runner.add_service(async_peer.AsyncSide)
    runner.start()
    try:
        wait_for(rabbit_uri, "async_side")
        for python in (nameko_python, SHIMEJI_PYTHON):
            got = normalise(run_client(python, rabbit_uri, "async_side"), "async_side")
            assert got == reference, f"{python.parent.parent.name} client -> async_side differs"
    finally:
        runner.stop()


@pytest.mark.parametrize("first", ["nameko_side", "shimeji_side"])
def test_a_deadline_survives_a_nameko_hop(both_sides, rabbit_uri, first):
    """shimeji client (timeout 5 s) -> one side -> the other: nameko 2.14.1
    ignores the deadline but forwards its header as context data, so the
    shimeji service behind it still sees its caller's deadline."""
    with ClusterRpcProxy({"AMQP_URI": rabbit_uri}, timeout=5) as rpc:
        began = time.time()
        got = rpc[first].relay_deadline()
    assert got["mine"] == got["theirs"]
    assert began < got["mine"] <= began + 5.01
    with ClusterRpcProxy({"AMQP_URI": rabbit_uri}) as rpc:  # no timeout: no deadline
        assert rpc[first].relay_deadline() == {"mine": None, "theirs": None}


def test_queues_are_declared_like_nameko(both_sides, rabbit_vhost):
    """Appendix B: our service and reply queues match nameko's declarations."""
    out = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            rabbit_vhost,
            "name",
            "durable",
            "auto_delete",
            "exclusive",
            "arguments",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    queues = {}
    for line in out.splitlines():
        name, *props = line.split("\t")
        queues[UUID.sub("<id>", name)] = props
    assert queues["rpc-shimeji_side"] == queues["rpc-nameko_side"]
    assert queues["rpc.reply-shimeji_side-<id>"] == queues["rpc.reply-nameko_side-<id>"]
    assert "x-expires" in queues["rpc.reply-shimeji_side-<id>"][3]
