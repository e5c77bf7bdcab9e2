"""`RabbitBroker` against the real RabbitMQ: what the contract suite cannot show.

Each test runs in its own vhost (``rabbit_uri``). Waits are on events with
timeouts; "nothing else arrived" is shown with a fence message through the
same FIFO queue, or with the broker's own counters (rabbitmqctl).
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pamqp import commands

from nameko._broker.base import (
    Binding,
    BrokerError,
    BrokerUnreachable,
    ConnectionLost,
    Delivery,
    Exchange,
    NotFound,
    PreconditionFailed,
    Properties,
    Queue,
    Unroutable,
)
from nameko._broker.rabbit import RabbitBroker
from nameko.testing._vhosts import rabbitmqctl
from tests.rabbit_admin import connection_pids, queue_counts
from tests.waiting import wait_until

WAIT = 10.0


class Inbox:
    """An ``on_message`` callback collecting deliveries (optionally acking)."""

    def __init__(self, ack: bool = True, hook: Callable[[Delivery], None] | None = None) -> None:
        self.ack, self.hook = ack, hook
        self.items: list[Delivery] = []
        self._cond = threading.Condition()

    def __call__(self, delivery: Delivery) -> None:
        if self.hook is not None:
            self.hook(delivery)
        if self.ack:
            delivery.ack()
        with self._cond:
            self.items.append(delivery)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Delivery]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(
                    f"{len(self.items)} deliveries, not {count}, within {timeout}s"
                )
            return list(self.items)

    def wait_for_body(self, body: bytes, timeout: float = WAIT) -> list[Delivery]:
        """The deliveries before the one with ``body`` (a fence)."""
        with self._cond:
            if not self._cond.wait_for(lambda: any(d.body == body for d in self.items), timeout):
                raise AssertionError(f"no {body!r} within {timeout}s")
            return self.items[: next(i for i, d in enumerate(self.items) if d.body == body)]


@pytest.fixture
def open_broker(rabbit_uri: str) -> Iterator[Callable[..., RabbitBroker]]:
    opened: list[RabbitBroker] = []

    def factory(**options: Any) -> RabbitBroker:
        broker = RabbitBroker(rabbit_uri, **options)
        opened.append(broker)
        return broker

    yield factory
    for broker in opened:
        broker.close()


@pytest.fixture
def broker(open_broker: Callable[..., RabbitBroker]) -> RabbitBroker:
    return open_broker()


def queue(name: str = "q", **arguments: Any) -> Queue:
    return Queue(name, durable=False, arguments=arguments)


def fence(broker: RabbitBroker, name: str, inbox: Inbox) -> list[Delivery]:
    body = b"fence-" + secrets.token_hex(4).encode()
    broker.publish("", name, body, Properties())
    return inbox.wait_for_body(body)


# -- basics ------------------------------------------------------------------


def test_publish_consume_round_trip(broker: RabbitBroker) -> None:
    topology = [
        Exchange("ex", durable=False),
        queue("q", **{"x-expires": 60000}),
        Binding("q", "ex", "a.*"),
    ]
    inbox = Inbox()
    broker.consume("q", inbox, prefetch=10, topology=topology)
    props = Properties(
        content_type="application/json",
        headers={"n": 7, "list": ["x", 1]},
        correlation_id="c1",
        delivery_mode=2,
    )
    broker.publish("ex", "a.b", b'{"x": 1}', props)
    [delivery] = inbox.wait_for(1)
    assert (delivery.body, delivery.exchange, delivery.routing_key, delivery.redelivered) == (
        b'{"x": 1}',
        "ex",
        "a.b",
        False,
    )
    assert delivery.properties == props


def test_prefetch_limits_unacked_deliveries(broker: RabbitBroker, rabbit_vhost: str) -> None:
    broker.declare([queue("q")])
    for i in range(10):
        broker.publish("", "q", b"%d" % i, Properties())
    inbox = Inbox(ack=False)
    broker.consume("q", inbox, prefetch=3)
    first = inbox.wait_for(3)
    wait_until(lambda: queue_counts(rabbit_vhost, "q") == (7, 3), what="7 ready and 3 unacked")
    assert len(inbox.items) == 3
    first[0].ack()
    assert [d.body for d in inbox.wait_for(4)] == [b"0", b"1", b"2", b"3"]


def test_reject_with_requeue_redelivers_flagged(broker: RabbitBroker) -> None:
    broker.declare([queue("q")])
    inbox = Inbox(ack=False)
    broker.consume("q", inbox)
    broker.publish("", "q", b"again", Properties())
    broker.publish("", "q", b"drop", Properties())
    again, drop = inbox.wait_for(2)
    again.reject(requeue=True)
    drop.reject(requeue=False)
    redelivered = inbox.wait_for(3)[2]
    assert (redelivered.body, redelivered.redelivered) == (b"again", True)
    redelivered.ack()
    assert [d.body for d in fence(broker, "q", inbox)][3:] == []


def test_mandatory_unroutable_fails_quickly(broker: RabbitBroker) -> None:
    broker.declare([Exchange("ex", durable=False)])
    started = time.monotonic()
    with pytest.raises(Unroutable) as info:
        broker.publish("ex", "nowhere", b"x", Properties(), mandatory=True)
    assert time.monotonic() - started < 1.0
    assert (info.value.exchange, info.value.routing_key) == ("ex", "nowhere")


def test_a_missing_exchange_is_not_found_and_the_broker_keeps_working(broker: RabbitBroker) -> None:
    inbox = Inbox()
    broker.consume("q", inbox, topology=[queue("q")])
    with pytest.raises(NotFound) as info:
        broker.publish("missing", "k", b"x", Properties())
    assert info.value.reply_code == 404
    broker.publish("", "q", b"after", Properties())
    assert [d.body for d in inbox.wait_for(1)] == [b"after"]


def test_publishes_behind_a_missing_exchange_are_resent(broker: RabbitBroker) -> None:
    """The broker discards what follows the failing publish on its channel:
    those publishes are re-sent on the reopened channel, nothing is lost."""
    inbox = Inbox()
    broker.consume("q", inbox, topology=[queue("q")])
    broker.publish("missing", "k", b"x", Properties(), confirm=False)
    for i in range(20):
        broker.publish("", "q", b"%d" % i, Properties(), confirm=False)
    broker.publish("", "q", b"last", Properties())
    assert [d.body for d in inbox.wait_for(21)] == [b"%d" % i for i in range(20)] + [b"last"]


def test_conflicting_declaration_is_precondition_failed(broker: RabbitBroker) -> None:
    broker.declare([queue("q", **{"x-max-length": 5})])
    with pytest.raises(PreconditionFailed) as info:
        broker.declare([queue("q", **{"x-max-length": 6})])
    assert info.value.reply_code == 406
    broker.declare([queue("q", **{"x-max-length": 5})])  # the control channel was reopened


def test_a_one_mebibyte_body(broker: RabbitBroker) -> None:
    body = secrets.token_bytes(1024 * 1024)
    inbox = Inbox()
    broker.consume("q", inbox, topology=[queue("q")])
    broker.publish("", "q", body, Properties())
    assert inbox.wait_for(1)[0].body == body


def test_twenty_threads_publishing_with_confirms(broker: RabbitBroker) -> None:
    inbox = Inbox()
    broker.consume("q", inbox, topology=[queue("q")])
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def publisher(n: int) -> None:
        try:
            start.wait()
            for i in range(50):
                broker.publish("", "q", b"%d-%d" % (n, i), Properties(), timeout=WAIT)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    bodies = [d.body for d in inbox.wait_for(1000)]
    assert sorted(bodies) == sorted(b"%d-%d" % (n, i) for n in range(20) for i in range(50))
    for n in range(20):  # each thread's messages stay in its order
        mine = [b for b in bodies if b.startswith(b"%d-" % n)]
        assert mine == [b"%d-%d" % (n, i) for i in range(50)]


def test_a_confirmed_publish_from_the_io_thread_raises(broker: RabbitBroker) -> None:
    outcome: list[BaseException | None] = []

    def on_message(delivery: Delivery) -> None:
        try:
            broker.publish("", "q", b"inner", Properties())
            outcome.append(None)
        except BrokerError as exc:
            outcome.append(exc)

    broker.consume("q", Inbox(hook=on_message), topology=[queue("q")])
    broker.publish("", "q", b"outer", Properties())
    wait_until(lambda: bool(outcome))
    assert isinstance(outcome[0], BrokerError)


# -- heartbeats and reconnection ----------------------------------------------


def test_a_cpu_bound_thread_does_not_starve_heartbeats(
    open_broker: Callable[..., RabbitBroker],
) -> None:
    broker = open_broker(heartbeat=1)
    reconnected = threading.Event()
    broker.add_reconnect_listener(reconnected.set)
    inbox = Inbox(ack=False)
    broker.consume("q", inbox, topology=[queue("q")])
    broker.publish("", "q", b"held", Properties())
    [held] = inbox.wait_for(1)

    def spin(seconds: float) -> None:  # pure Python: holds the GIL between switch intervals
        end = time.monotonic() + seconds
        total = 0
        while time.monotonic() < end:
            total += sum(i * i for i in range(1000))

    spinner = threading.Thread(target=spin, args=(3.0,))
    spinner.start()
    spinner.join()
    assert broker.is_connected and not reconnected.is_set()
    held.ack()
    assert [(d.body, d.redelivered) for d in fence(broker, "q", inbox)] == [(b"held", False)]


def test_a_killed_connection_is_restored(
    rabbit_vhost: str, open_broker: Callable[..., RabbitBroker], caplog: pytest.LogCaptureFixture
) -> None:
    name = f"shimeji-test-{secrets.token_hex(4)}"
    broker = open_broker(
        connection_name=name, transport_options={"interval_start": 0.1, "interval_step": 0.1}
    )
    reconnected = threading.Event()
    broker.add_reconnect_listener(reconnected.set)
    [connection] = connection_pids(name)

    stuck, release = threading.Event(), threading.Event()

    def hold_the_io_thread(delivery: Delivery) -> None:
        if delivery.body == b"block" and not delivery.redelivered:
            delivery.ack()  # queued on the I/O thread: the next publish is queued behind it
            stuck.set()
            release.wait(WAIT)

    inbox = Inbox(hook=hold_the_io_thread)
    broker.consume("q", inbox, topology=[queue("q")], prefetch=5)
    # unconfirmed: its confirm could be read after the delivery, which blocks the reader
    broker.publish("", "q", b"block", Properties(), confirm=False)
    assert stuck.wait(WAIT)

    outcome: list[BaseException | None] = []
    publisher = threading.Thread(target=lambda: outcome.append(_publish_outcome(broker)))
    publisher.start()
    with caplog.at_level(logging.INFO, logger="nameko._broker.rabbit"):
        # returns once the broker sent Connection.Close: from then on it ignores
        # our frames, so the queued publish cannot be confirmed
        rabbitmqctl("close_connection", connection, "closed by test")
        release.set()
        publisher.join(WAIT)
        assert len(outcome) == 1 and isinstance(outcome[0], ConnectionLost)
        assert reconnected.wait(WAIT)
    assert broker.is_connected
    assert any(r.levelno == logging.WARNING and "lost" in r.getMessage() for r in caplog.records)
    assert any(
        r.levelno == logging.INFO and "Reconnected" in r.getMessage() for r in caplog.records
    )
    assert all("guest:guest" not in r.getMessage() for r in caplog.records)

    broker.publish("", "q", b"after", Properties())  # the consumer was restored
    bodies = [(d.body, d.redelivered) for d in inbox.wait_for_body(b"after")]
    assert (b"block", True) in bodies  # its ack never reached the broker
    wait_until(lambda: len(connection_pids(name)) == 1, what="only the new connection is left")


def test_a_consumer_retries_declaring_its_deleted_queue_until_it_can(
    open_broker: Callable[..., RabbitBroker], caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting the queue also deletes the auto-delete exchange its binding
    needs (declared by somebody else): the re-declaration fails (404) and is
    retried with back-off until that exchange is back."""
    admin = open_broker()
    owner = open_broker(transport_options={"interval_start": 0.2, "interval_step": 0.2})
    exchange = Exchange("ex", "direct", durable=False, auto_delete=True)
    admin.declare([exchange])
    inbox = Inbox()
    owner.consume("q", inbox, topology=[queue("q"), Binding("q", "ex", "k")])
    with caplog.at_level(logging.INFO, logger="nameko._broker.rabbit"):
        admin.delete_queue("q")  # and with its last binding, "ex"
        wait_until(lambda: "could not consume queue 'q' again" in caplog.text, WAIT)
        admin.declare([exchange])
        wait_until(lambda: "consuming queue 'q' again" in caplog.text, WAIT)
    admin.publish("ex", "k", b"back", Properties(), mandatory=True)
    assert [d.body for d in inbox.wait_for(1)] == [b"back"]


def test_a_consumer_that_cannot_be_restored_after_a_reconnect_is_retried(
    open_broker: Callable[..., RabbitBroker], caplog: pytest.LogCaptureFixture
) -> None:
    """While the connection is down, the exchange its binding needs goes
    away: restoring the consumer fails (404) and is retried with back-off
    until the exchange is back, instead of leaving a silent consumer."""
    name = f"shimeji-test-{secrets.token_hex(4)}"
    admin = open_broker()
    owner = open_broker(
        connection_name=name, transport_options={"interval_start": 0.2, "interval_step": 0.2}
    )
    reconnected = threading.Event()
    owner.add_reconnect_listener(reconnected.set)
    exchange = Exchange("ex", "direct", durable=False)
    admin.declare([exchange])
    inbox = Inbox()
    owner.consume("q", inbox, topology=[queue("q"), Binding("q", "ex", "k")])
    admin._control([commands.Exchange.Delete(exchange="ex")])  # the seam has no delete_exchange
    with caplog.at_level(logging.INFO, logger="nameko._broker.rabbit"):
        [connection] = connection_pids(name)
        rabbitmqctl("close_connection", connection, "closed by test")
        assert reconnected.wait(WAIT)
        wait_until(lambda: "could not consume queue 'q' again" in caplog.text, WAIT)
        admin.declare([exchange])
        wait_until(lambda: "consuming queue 'q' again" in caplog.text, WAIT)
    admin.publish("ex", "k", b"back", Properties(), mandatory=True)
    assert [d.body for d in inbox.wait_for(1)] == [b"back"]


def _publish_outcome(broker: RabbitBroker) -> BaseException | None:
    try:
        broker.publish("", "q", b"lost", Properties(), timeout=WAIT)
    except BaseException as exc:
        return exc
    return None


def test_an_unreachable_broker(caplog: pytest.LogCaptureFixture) -> None:
    options = {
        "max_retries": 2,
        "interval_start": 0.01,
        "interval_step": 0.01,
        "interval_max": 0.05,
    }
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(BrokerUnreachable) as info:
        RabbitBroker("amqp://user:hunter2@127.0.0.1:1/v", transport_options=options)
    assert time.monotonic() - started < 5
    assert "hunter2" not in str(info.value) and "********" in str(info.value)
    retries = [r for r in caplog.records if "Retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all("hunter2" not in r.getMessage() for r in caplog.records)


def test_wrong_credentials_are_unreachable_without_the_password(rabbit_uri: str) -> None:
    uri = rabbit_uri.replace("guest:guest", "guest:wrong-secret")
    with pytest.raises(BrokerUnreachable) as info:
        RabbitBroker(uri, transport_options={"max_retries": 0})
    assert "ACCESS_REFUSED" in str(info.value) and "wrong-secret" not in str(info.value)


# -- TLS -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return directory


def tls_proxy(certificate: Path) -> int:
    """A TLS terminator in front of the plain RabbitMQ port; returns its port."""
    import socket
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))

    def pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                sock.close()

    def serve() -> None:
        with listener:
            client, _ = listener.accept()
            try:
                secure = context.wrap_socket(client, server_side=True)
            except ssl.SSLError:  # the client refused our certificate
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", 5672))
            threading.Thread(target=pump, args=(upstream, secure), daemon=True).start()
            pump(secure, upstream)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_amqps_with_a_verified_certificate(certificate: Path, rabbit_vhost: str) -> None:
    port = tls_proxy(certificate)
    uri = f"amqps://guest:guest@localhost:{port}/{rabbit_vhost}"
    broker = RabbitBroker(
        uri, ssl={"ca_certs": str(certificate / "cert.pem")}, transport_options={"max_retries": 0}
    )
    try:
        inbox = Inbox()
        broker.consume("q", inbox, topology=[queue("q")])
        body = secrets.token_bytes(300_000)  # several TLS records and frames both ways
        broker.publish("", "q", body, Properties())
        assert inbox.wait_for(1)[0].body == body
    finally:
        broker.close()


def test_amqps_refuses_an_unknown_certificate(certificate: Path, rabbit_vhost: str) -> None:
    port = tls_proxy(certificate)
    with pytest.raises(BrokerUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
        RabbitBroker(
            f"amqps://guest:guest@localhost:{port}/{rabbit_vhost}",
            ssl=True,
            transport_options={"max_retries": 0},
        )


# -- heartbeats against a broker that goes silent --------------------------------


class SilentBroker:
    """A fake AMQP server: completes the handshake with heartbeat=1, then
    reads and never answers. Counts the heartbeats each connection sends."""

    def __init__(self) -> None:
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.heartbeats: list[int] = []
        self.accepted = threading.Semaphore(0)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.heartbeats.append(0)
            self.accepted.release()
            threading.Thread(
                target=self._talk, args=(client, len(self.heartbeats) - 1), daemon=True
            ).start()

    def _talk(self, client: Any, index: int) -> None:
        from pamqp import commands, frame
        from pamqp.exceptions import UnmarshalingException
        from pamqp.heartbeat import Heartbeat

        buffer = b""

        def next_frame() -> Any:
            nonlocal buffer
            while True:
                try:
                    used, _, obj = frame.unmarshal(buffer)
                except UnmarshalingException:  # incomplete
                    data = client.recv(65536)
                    if not data:
                        raise EOFError() from None
                    buffer += data
                    continue
                buffer = buffer[used:]
                if isinstance(obj, Heartbeat):
                    self.heartbeats[index] += 1
                return obj

        def expect(kind: type) -> None:
            while not isinstance(next_frame(), kind):
                pass

        with client:
            client.recv(8)  # protocol header
            client.sendall(frame.marshal(commands.Connection.Start(mechanisms="PLAIN"), 0))
            expect(commands.Connection.StartOk)
            client.sendall(frame.marshal(commands.Connection.Tune(2047, 131072, 1), 0))
            expect(commands.Connection.Open)
            client.sendall(frame.marshal(commands.Connection.OpenOk(), 0))
            try:
                while True:  # count heartbeats until the client hangs up
                    next_frame()
            except (EOFError, OSError):
                pass

    def close(self) -> None:
        self.listener.close()


def test_a_silent_broker_is_declared_dead_and_reconnected(caplog: pytest.LogCaptureFixture) -> None:
    server = SilentBroker()
    reconnected = threading.Event()
    try:
        with caplog.at_level(logging.WARNING, logger="nameko._broker.rabbit"):
            broker = RabbitBroker(f"amqp://guest:guest@127.0.0.1:{server.port}/", heartbeat=1)
            broker.add_reconnect_listener(reconnected.set)
            assert server.accepted.acquire(timeout=WAIT)
            started = time.monotonic()
            assert server.accepted.acquire(timeout=WAIT)  # the client gave up and came back
            silent_for = time.monotonic() - started
            assert reconnected.wait(WAIT)
            broker.close()
    finally:
        server.close()
    assert 1.5 < silent_for < 4.0  # dead after 2 heartbeat intervals of silence
    assert server.heartbeats[0] >= 2  # it sent ours every half interval meanwhile
    assert any("missed heartbeats" in r.getMessage() for r in caplog.records)
