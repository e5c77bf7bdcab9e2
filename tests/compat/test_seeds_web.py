"""Our users' documents' HTTP examples, run as their users run them.

Each system is started with `nameko run` in its examples folder (the code
verbatim, see examples/seed001/README.md and examples/seed003/README.md) and
driven with `requests` the way the seed drives it with curl; the checks are
the seed's transcripts: status line, headers, bodies.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from nameko.containers import ServiceContainer
from nameko.testing.utils import find_free_port
from tests.integration.conftest import NamekoProcess
from tests.waiting import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED001 = EXAMPLES / "seed001"
SEED003 = EXAMPLES / "seed003"
NAMEKO_SCRIPT = Path(sys.executable).parent / "nameko"  # the console script users type
NAMEKO_214_SCRIPT = Path(__file__).resolve().parents[2] / ".venv-nameko" / "bin" / "nameko"
READY_TIMEOUT = 30
TEXT = "text/plain; charset=utf-8"
CURL_FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
HEX_ID = re.compile(r"[0-9a-f]{32}")
# seed 001's services share one Redis; ours is db 11 of the local server. Its
# keys are the services' own uuid4 ids, so nothing else there can clash with
# them: the test deletes the keys it made and flushes nothing.
REDIS_URI = "redis://127.0.0.1:6379/11"
# the seed's last transcript line, and the airport ids in it
SEED_001_TRIP = (
    """{"trip": "{'from': 'f2bddf0e506145f6ba0c28c247c54629', """
    """'to': '565000adcc774cfda8ca3a806baec6b5'}"}"""
)
SEED_001_IDS = ("f2bddf0e506145f6ba0c28c247c54629", "565000adcc774cfda8ca3a806baec6b5")


def header_names(response: requests.Response) -> set[str]:
    return {name.lower() for name in response.headers}


def assert_status_line(response: requests.Response, code: int, reason: str) -> None:
    """``HTTP/1.1 <code> <REASON>`` as curl -i prints it (werkzeug's upper-case reason)."""
    assert (response.raw.version, response.status_code, response.reason) == (11, code, reason)


@pytest.fixture
def run_nameko(tmp_path):
    """run_nameko(folder, services, config) -> `nameko run services --config
    <config>` in ``folder`` (the examples folder itself: the config file and
    the log go to tmp_path); ``config_first`` puts --config before the services."""
    started: list[NamekoProcess] = []

    def start(folder: Path, services: list[str], config: dict, config_first: bool = False):
        n = len(started)
        config_path = tmp_path / f"config{n}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        option = ["--config", str(config_path)]
        args = [*option, *services] if config_first else [*services, *option]
        started.append(NamekoProcess(folder, args, tmp_path / f"nameko{n}.log"))
        return started[-1]

    yield start
    for proc in started:
        proc.close()


def wait_for(proc: NamekoProcess, url: str, expected: str | None = None, status: int = 200):
    """Poll ``url`` until it answers ``status`` (with ``expected`` as its body, if given)."""

    def answered() -> bool:
        assert proc.proc.poll() is None, f"nameko run exited:\n{proc.output()}"
        try:
            response = requests.get(url, timeout=5)
        except requests.ConnectionError:
            return False
        return response.status_code == status and expected in (None, response.text)

    wait_until(answered, READY_TIMEOUT, interval=0.1, what=f"GET {url} answered {status}")


def stop_cleanly(*procs: NamekoProcess, tolerated: str | None = None) -> None:
    """SIGTERM, as Ctrl-C or `docker-compose down` would: each exits 0, and
    logged no traceback but those ending in the ``tolerated`` line."""
    for proc in procs:
        proc.signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(READY_TIMEOUT) == 0, proc.output()
        output = proc.output()
        expected = output.count(f"\n{tolerated}") if tolerated else 0
        assert output.count("Traceback (most recent call last)") == expected, output


# -- seed 001: gateway, airports and trips (examples/seed001) -----------------


@pytest.fixture
def seed_redis():
    """The Redis the seed's services share, and the keys they made, deleted after."""
    import redis  # redis-py 2.x, in the test extra (the seed 003 tests run without it)

    client = redis.StrictRedis.from_url(REDIS_URI, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"seed 001 needs Redis on 127.0.0.1:6379: {exc}")
    made: list[str] = []
    yield client, made
    if made:
        client.delete(*made)


def seed_001_processes(run_nameko, config, layout):
    if layout == "one process":  # nameko run gateway airports trips
        return [run_nameko(SEED001, ["gateway", "airports", "trips"], config)]
    # one container per service, as the seed's docker-compose runs them:
    # run.sh's `nameko run --config config.yml airports`
    return [
        run_nameko(SEED001, [service], config, config_first=True)
        for service in ("gateway", "airports", "trips")
    ]


@pytest.mark.rabbit
@pytest.mark.parametrize("layout", ["one process", "a process per service"])
def test_seed_001_travel_app_answers_the_seeds_curl_requests(
    run_nameko, rabbit_uri, seed_redis, layout
):
    assert importlib.util.find_spec("nameko_redis"), "nameko-redis missing: run scripts/bootstrap"
    store, made = seed_redis
    port = find_free_port()
    base = f"http://127.0.0.1:{port}"
    config = {
        "AMQP_URI": rabbit_uri,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "REDIS_URIS": {"development": REDIS_URI},
    }
    procs = seed_001_processes(run_nameko, config, layout)
    # ready when the gateway answers and both RPC services reply (an unknown
    # id is null: redis GET of a missing key)
    unknown = uuid.uuid4().hex
    wait_for(procs[0], f"{base}/airport/{unknown}", json.dumps({"airport": None}))
    wait_for(procs[0], f"{base}/trip/{unknown}", json.dumps({"trip": None}))

    def post(path, body):  # curl -i -d "<body>" localhost:8000/<path>
        response = requests.post(f"{base}{path}", data=body, headers=CURL_FORM, timeout=10)
        assert_status_line(response, 200, "OK")
        assert response.headers["Content-Type"] == TEXT
        assert response.headers["Content-Length"] == "32"
        assert header_names(response) == {"content-type", "content-length", "date"}
        assert HEX_ID.fullmatch(response.text), response.text  # the new id
        made.append(response.text)
        return response.text

    first = post("/airport", '{"airport": "first_airport"}')
    response = requests.get(f"{base}/airport/{first}", timeout=10)
    assert response.status_code == 200
    assert response.text == '{"airport": "first_airport"}'
    second = post("/airport", '{"airport": "second_airport"}')
    assert second != first

    trip = post("/trip", json.dumps({"airport_from": first, "airport_to": second}))
    response = requests.get(f"{base}/trip/{trip}", timeout=10)
    assert response.status_code == 200
    # redis-py 2.x stored the trips service's dict as str(dict): the seed's output
    seed_output = SEED_001_TRIP.replace(SEED_001_IDS[0], first).replace(SEED_001_IDS[1], second)
    assert response.text == seed_output

    assert store.get(first) == "first_airport"
    assert store.get(second) == "second_airport"
    assert store.get(trip) == str({"from": first, "to": second})
    # the gateway may have logged UnknownService while the others were starting
    stop_cleanly(*procs, tolerated="nameko.exceptions.UnknownService: Unknown service")


# -- seed 003: the HTTP examples of the nameko tutorial (examples/seed003) ----


def test_seed_003_advanced_http_status_headers_and_response(run_nameko, memory_config):
    """`nameko run advanced_http`, then the seed's curl -i requests."""
    port = find_free_port()
    base = f"http://127.0.0.1:{port}"
    proc = run_nameko(
        SEED003, ["advanced_http"], {**memory_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    )
    wait_for(proc, f"{base}/custom")

    response = requests.get(f"{base}/privileged", timeout=10)  # return 403, "Forbidden"
    assert_status_line(response, 403, "FORBIDDEN")
    assert response.headers["Content-Type"] == TEXT
    assert response.headers["Content-Length"] == "9"
    assert header_names(response) == {"content-type", "content-length", "date"}
    assert response.text == "Forbidden"

    response = requests.get(f"{base}/headers", timeout=10)  # return 201, {'Location': ...}, ""
    assert_status_line(response, 201, "CREATED")
    assert response.headers["Location"] == "https://www.example.com/widget/1"
    assert response.headers["Content-Type"] == TEXT
    assert response.headers["Content-Length"] == "0"
    assert header_names(response) == {"location", "content-type", "content-length", "date"}
    assert response.content == b""

    response = requests.get(f"{base}/custom", timeout=10)  # return Response("payload")
    assert_status_line(response, 200, "OK")
    assert response.headers["Content-Type"] == TEXT
    assert response.headers["Content-Length"] == "7"
    assert response.text == "payload"
    stop_cleanly(proc)


def test_seed_003_custom_exception_handler_answers_json_400(run_nameko, memory_config):
    """`nameko run http_exceptions`: the HttpEntrypoint subclass's
    response_from_exception turns InvalidArgumentsError into JSON."""
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/custom_exception"
    proc = run_nameko(
        SEED003, ["http_exceptions"], {**memory_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    )
    wait_for(proc, url, status=400)
    response = requests.get(url, timeout=10)
    assert_status_line(response, 400, "BAD REQUEST")
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == "72"
    assert header_names(response) == {"content-type", "content-length", "date"}
    # the seed printed Python 2's dict order; Python 3 keeps the code's order
    assert (
        response.text == '{"error": "INVALID_ARGUMENTS", "message": "Argument `foo` is required."}'
    )
    seed_body = '{"message": "Argument `foo` is required.", "error": "INVALID_ARGUMENTS"}'
    assert response.json() == json.loads(seed_body) and len(seed_body) == 72
    proc.signal(signal.SIGTERM)
    assert proc.wait(READY_TIMEOUT) == 0, proc.output()
    # the worker's error is still logged, with its traceback, as nameko logs it
    assert "InvalidArgumentsError: Argument `foo` is required." in proc.output()


@pytest.mark.parametrize(
    ("setting", "status", "reason", "body"),
    [
        ({}, 403, "FORBIDDEN", "FeatureNotEnabled"),  # config.get(..., False)
        ({"FOO_FEATURE_ENABLED": False}, 403, "FORBIDDEN", "FeatureNotEnabled"),
        ({"FOO_FEATURE_ENABLED": True}, 200, "OK", "foo"),
    ],
    ids=["unset", "false", "true"],
)
def test_seed_003_config_dependency_feature_flag(
    run_nameko, memory_config, setting, status, reason, body
):
    """The Config example, with FOO_FEATURE_ENABLED in the YAML given to `nameko run`."""
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/foo"
    config = {**memory_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", **setting}
    proc = run_nameko(SEED003, ["config_dependency"], config)
    wait_for(proc, url, status=status)
    response = requests.get(url, timeout=10)
    assert_status_line(response, status, reason)
    assert response.headers["Content-Type"] == TEXT
    assert response.headers["Content-Length"] == str(len(body))
    assert response.text == body
    stop_cleanly(proc)


def load_seed_http_module():
    """examples/seed003/http_get_post/http.py under a name that is not the
    standard library's `http` (see the next test for why it needs one)."""
    path = SEED003 / "http_get_post" / "http.py"
    spec = importlib.util.spec_from_file_location("seed003_http", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_003_http_py_get_and_post(container_factory, web_config, web_session):
    """http.py's HttpService answers the seed's two curl requests."""
    container: ServiceContainer = container_factory(load_seed_http_module().HttpService, web_config)
    container.start()

    response = web_session.get("/get/42")
    assert_status_line(response, 200, "OK")
    assert response.headers["Content-Type"] == TEXT
    assert response.headers["Content-Length"] == "13"
    assert header_names(response) == {"content-type", "content-length", "date"}
    # the seed's transcript shows {'value': 42}; json.dumps writes double
    # quotes (same length, 13: the quotes were changed after the fact)
    assert response.text == '{"value": 42}'

    response = web_session.post("/post", data="post body", headers=CURL_FORM)
    assert_status_line(response, 200, "OK")
    assert response.headers["Content-Type"] == TEXT
    assert response.headers["Content-Length"] == "19"
    assert response.text == "received: post body"

    assert web_session.get("/get/forty-two").status_code == 404  # <int:value> only


def test_seed_003_nameko_run_http_py_renamed(run_nameko, memory_config, tmp_path):
    """What a Python 3 user does with the seed's http.py: the same file under
    another name, then `nameko run` and the seed's curl requests."""
    folder = tmp_path / "app"
    folder.mkdir()
    shutil.copyfile(SEED003 / "http_get_post" / "http.py", folder / "http_service.py")
    port = find_free_port()
    base = f"http://127.0.0.1:{port}"
    proc = run_nameko(
        folder, ["http_service"], {**memory_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    )
    wait_for(proc, f"{base}/get/42", '{"value": 42}')
    response = requests.post(f"{base}/post", data="post body", headers=CURL_FORM, timeout=10)
    assert (response.status_code, response.text) == (200, "received: post body")
    stop_cleanly(proc)
    assert "starting services: http_service" in proc.output()  # the seed's console line


def nameko_run_http(script: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}"}))
    return subprocess.run(
        [str(script), "run", "http", "--config", str(config)],
        cwd=SEED003 / "http_get_post",
        capture_output=True,
        text=True,
        timeout=60,
    )


HTTP_CLASH = "ModuleNotFoundError: No module named 'http.server'; 'http' is not a package"


def test_seed_003_nameko_run_http_cannot_work_on_python_3(tmp_path):
    """The seed's `nameko run http` (written for Python 2) imports its http.py
    as `http`, the standard library's package in Python 3: werkzeug's
    `from http.server import ...` then finds the seed's module. It fails
    before any service starts, as it does with nameko 2.14.1 (next test)."""
    done = nameko_run_http(NAMEKO_SCRIPT, tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == HTTP_CLASH, done.stderr
    # from the seed's own import line (Python 3.10 names the file ./http.py)
    assert re.search(r'http_get_post/(\./)?http\.py", line 4, in <module>', done.stderr)


@pytest.mark.compat
def test_seed_003_nameko_run_http_fails_the_same_way_on_nameko_214(tmp_path):
    assert NAMEKO_214_SCRIPT.exists(), "nameko 2.14.1 peer missing: run scripts/bootstrap"
    done = nameko_run_http(NAMEKO_214_SCRIPT, tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == HTTP_CLASH, done.stderr
