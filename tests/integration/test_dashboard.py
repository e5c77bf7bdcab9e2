"""`nameko dashboard` in a real headless Chromium (D29): a `nameko run`
service and the dashboard as processes on RabbitMQ; the page shows the
service, its rates move with traffic, the screenshot is checked pixel by
pixel, and the service's goodbye empties the page."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time

import pytest

from nameko._presence.page import STATE_COLOURS
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from tests.browser import Chromium
from tests.integration.conftest import SRC, wait_until_serving
from tests.png import read_png
from tests.waiting import wait_until

# Not skipped without Chromium: scripts/test installs it (scripts/ensure-chromium)
# before this tier, and a skip would hide a CI machine that lost it.
pytestmark = pytest.mark.rabbit

TIMEOUT = 20
SERVICE = '''\
from nameko.rpc import rpc


class Greeter:
    name = "greeter"

    @rpc
    def hello(self, name):
        """Greet someone."""
        return f"hello {name}"

    @rpc
    def fail(self):
        raise ValueError("no")

    @rpc
    def ping(self):
        return "pong"
'''


@pytest.fixture
def greeter(nameko_run, tmp_path, rabbit_uri):
    (tmp_path / "run0").mkdir()
    (tmp_path / "run0" / "greeter.py").write_text(SERVICE)
    proc = nameko_run(["greeter"])
    wait_until_serving({"AMQP_URI": rabbit_uri}, "greeter")
    return proc


@pytest.fixture
def dashboard_url(rabbit_uri, tmp_path):
    log = (tmp_path / "dashboard.log").open("wb")  # its log; stdout says where it is
    proc = subprocess.Popen(
        [sys.executable, "-m", "nameko", "dashboard", "--broker", rabbit_uri]
        + ["--address", "127.0.0.1:0", "--refresh", "0.5"],
        stdout=subprocess.PIPE,
        stderr=log,
        env=dict(os.environ, PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1"),
    )
    try:
        line = _first_line(proc, TIMEOUT)
        match = re.match(r"dashboard on (http://\S+) \(amqp://guest:\*+@", line)
        assert match, line
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        log.close()


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), "the dashboard printed nothing"
    return proc.stdout.readline().decode()


@pytest.fixture
def browser(tmp_path):
    chromium = Chromium(tmp_path / "profile", width=1200, height=800)
    yield chromium
    chromium.close()


def text_of(browser: Chromium, selector: str) -> str | None:
    return browser.evaluate(
        f"(n => n ? n.textContent : null)(document.querySelector({selector!r}))"
    )


def test_the_dashboard_shows_the_live_cluster(
    greeter, dashboard_url, browser, rabbit_uri, tmp_path
):
    started = time.monotonic()
    browser.navigate(dashboard_url)
    running = '[data-service="greeter"] [data-instance] .pill'
    wait_until(lambda: text_of(browser, running) == "running", TIMEOUT, what="greeter running")
    hello = '[data-entrypoint="greeter/rpc:hello"]'
    assert text_of(browser, hello + " .doc") == "Greet someone."
    assert text_of(browser, hello + " .sig") == "hello(name)"

    with ClusterRpcProxy({"AMQP_URI": rabbit_uri}, timeout=TIMEOUT) as proxy:
        for reply in [proxy.greeter.hello.call_async(i) for i in range(200)]:
            reply.result()
        for _ in range(3):
            with pytest.raises(RemoteError):
                proxy.greeter.fail()

    def rates_shown():
        return (
            text_of(browser, hello + " .calls") == "200"
            and float(text_of(browser, hello + " .rate") or 0) > 0
            and text_of(browser, '[data-entrypoint="greeter/rpc:fail"] .errors') == "3"
        )

    wait_until(rates_shown, TIMEOUT, what="the rates after traffic")
    assert text_of(browser, hello + " .mean") != "-" and text_of(browser, hello + " .p95") != "-"

    png = browser.screenshot()
    (tmp_path / "dashboard.png").write_bytes(png)  # kept with the test's files, for a look
    image = read_png(png)
    assert image.width == 1200 and image.height > 400
    colours = image.colours(step=2)
    assert len(colours) > 20, "a blank page"
    background = colours[(0xF6, 0xF8, 0xFA)]
    assert background > image.width * image.height / 16, colours.most_common(5)
    green = tuple(int(STATE_COLOURS["running"][i : i + 2], 16) for i in (1, 3, 5))
    assert colours[green] > 100, f"no running-green {green} in {colours.most_common(8)}"

    greeter.signal(signal.SIGTERM)  # its goodbye empties the page
    empty = "#services .empty"
    wait_until(lambda: text_of(browser, empty) is not None, TIMEOUT, what="the goodbye")
    assert greeter.wait() == 0
    assert time.monotonic() - started < 30
