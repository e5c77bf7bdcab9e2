"""`nameko.testing.rabbit.Client`.

These are unit tests of the client against `FakeManagementApi` (a local
http.server imitating the management API's endpoints), because the shared
broker runs without the management plugin: they check the requests the
client sends and how it reads the answers, not RabbitMQ itself."""

from __future__ import annotations

import socket

import pytest

from nameko.testing.rabbit import Client, ManagementApiUnavailable


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_construction_fails_clearly_when_the_api_does_not_answer():
    port = closed_port()
    with pytest.raises(ManagementApiUnavailable) as raised:
        Client(f"http://guest:secret@127.0.0.1:{port}")
    assert str(raised.value) == (
        "Connection error for the RabbitMQ management HTTP API at "
        f"http://127.0.0.1:{port}/api/overview, is it enabled?"
    )
    assert "secret" not in str(raised.value)


def test_construction_checks_the_overview(fake_api):
    Client(fake_api.uri)
    assert fake_api.requests == [("GET", "/api/overview", None)]


def test_wrong_credentials_are_an_http_error(fake_api):
    with pytest.raises(ManagementApiUnavailable):
        Client(fake_api.uri.replace("guest:guest", "guest:wrong"))


def test_vhosts_and_permissions(fake_api):
    client = Client(fake_api.uri)
    client.create_vhost("v1")
    client.set_vhost_permissions("v1", "guest", ".*", "r.*", "w.*")
    assert {"name": "v1"} in client.get_all_vhosts()
    assert fake_api.permissions[("v1", "guest")] == {
        "configure": ".*",
        "read": "r.*",
        "write": "w.*",
    }
    client.delete_vhost("v1")
    assert "v1" not in fake_api.vhosts


def test_names_are_quoted_whole_so_the_default_vhost_works(fake_api):
    client = Client(fake_api.uri)
    client.get_queues("/")
    client.get_exchanges("/")
    assert fake_api.requests[-2:] == [
        ("GET", "/api/queues/%2F", None),
        ("GET", "/api/exchanges/%2F", None),
    ]


def test_queues_bindings_publish_and_get(fake_api):
    client = Client(fake_api.uri)
    client.create_queue("v", "q", durable=False, auto_delete=True)
    client.create_queue_binding("v", "ex", "q", "rk", arguments={"x": 1})
    assert client.get_queue("v", "q")["durable"] is False
    assert [q["name"] for q in client.get_queues("v")] == ["q"]
    assert client.get_queue_bindings("v", "q") == [
        {"vhost": "v", "source": "ex", "queue": "q", "routing_key": "rk", "arguments": {"x": 1}}
    ]
    assert client.publish("v", "ex", "rk", {"a": 1}) is True
    assert client.publish("v", "ex", "nowhere", "text") is False
    sent = fake_api.requests[-2][2]
    assert sent["payload"] == '{"a": 1}'
    assert sent["properties"] == {"content_type": "application/json"}
    assert client.get_messages("v", "q", requeue=True)[0]["payload"] == '{"a": 1}'
    assert fake_api.requests[-1][2]["ackmode"] == "ack_requeue_true"
    assert len(client.get_messages("v", "q")) == 1
    assert client.get_messages("v", "q") == []


def test_bytes_are_published_base64(fake_api):
    client = Client(fake_api.uri)
    client.publish("v", "ex", "rk", b"\x00\x01")
    sent = fake_api.requests[-1][2]
    assert (sent["payload"], sent["payload_encoding"]) == ("AAE=", "base64")


def test_connections(fake_api):
    client = Client(fake_api.uri)
    (connection,) = client.get_connections()
    client.delete_connection(connection["name"])
    assert client.get_connections() == []
    assert fake_api.requests[-2][1] == "/api/connections/127.0.0.1%3A1%20-%3E%20127.0.0.1%3A5672"


def test_missing_things_raise_http_errors(fake_api):
    import requests

    client = Client(fake_api.uri)
    with pytest.raises(requests.HTTPError):
        client.get_queue("v", "nope")
