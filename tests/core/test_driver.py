"""The I/O driver's calls from user threads, without a socket: between the
broker's Connection.Close and the end of the session, every operation
reports `NotConnected` (which the broker turns into `ConnectionLost`), never
the state machine's `ProtocolError`."""

from __future__ import annotations

from pamqp import commands

from nameko._amqp.driver import Driver, NotConnected
from nameko._amqp.uri import parse_uri
from nameko._broker.base import Properties
from tests.protocol.test_amqp_connection import encode, open_channel, open_connection


def _driver_with(conn) -> Driver:
    driver = Driver(parse_uri("amqp://guest:guest@127.0.0.1:1/"), handler=None)  # type: ignore[arg-type]
    driver._conn = conn  # as the I/O thread sets it once the handshake is done
    return driver


def _closed_by_the_broker():
    conn = open_connection()
    open_channel(conn, 1)
    close = commands.Connection.Close(320, "CONNECTION_FORCED", 0, 0)
    conn.receive_data(encode((0, close)), 0.0)
    assert not conn.is_ready
    return conn


def _publish(conn) -> None:
    conn.publish(1, "", "q", b"body", Properties())


def test_run_on_a_connection_the_broker_closed_raises_not_connected() -> None:
    driver = _driver_with(_closed_by_the_broker())
    try:
        driver.run(_publish)
    except NotConnected:
        pass
    else:
        raise AssertionError("run() went through on a closed connection")


def test_submit_on_a_connection_the_broker_closed_reports_not_connected() -> None:
    driver = _driver_with(_closed_by_the_broker())
    errors: list[Exception] = []
    try:  # uncontended: the caller runs it itself
        driver.submit(_publish, on_error=errors.append)
    except NotConnected:
        errors.append(NotConnected())
    with driver.lock:  # contended: queued for the I/O thread
        driver.submit(_publish, on_error=errors.append)
    driver._run_submitted()
    assert [type(e) for e in errors] == [NotConnected, NotConnected]
