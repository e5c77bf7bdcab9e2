"""AMQP URI parsing."""

from __future__ import annotations

import pytest

from nameko._amqp.uri import AmqpParams, parse_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("amqp://guest:guest@localhost", ("localhost", 5672, "guest", "guest", "/", False)),
        ("amqp://u:p@rabbit:5673/", ("rabbit", 5673, "u", "p", "/", False)),
        ("amqp://u:p@rabbit//", ("rabbit", 5672, "u", "p", "/", False)),
        ("amqp://u:p@rabbit/%2F", ("rabbit", 5672, "u", "p", "/", False)),
        ("amqp://u:p@rabbit/my%2Fvhost", ("rabbit", 5672, "u", "p", "my/vhost", False)),
        ("amqp://u:p@rabbit/plain", ("rabbit", 5672, "u", "p", "plain", False)),
        ("pyamqp://u:p@rabbit/v", ("rabbit", 5672, "u", "p", "v", False)),
        ("amqps://u:p@rabbit/v", ("rabbit", 5671, "u", "p", "v", True)),
        ("amqps://u:p@rabbit:9999/v", ("rabbit", 9999, "u", "p", "v", True)),
        ("AMQP://u:p%40x@rabbit/v", ("rabbit", 5672, "u", "p@x", "v", False)),
        ("amqp://rabbit", ("rabbit", 5672, "guest", "guest", "/", False)),
        ("amqp://u:p@[::1]:5672/v", ("::1", 5672, "u", "p", "v", False)),
    ],
)
def test_parse_uri(uri: str, expected: tuple) -> None:
    params = parse_uri(uri)
    assert (
        params.host,
        params.port,
        params.username,
        params.password,
        params.vhost,
        params.tls,
    ) == expected


def test_the_password_never_shows() -> None:
    params = parse_uri("amqp://user:hunter2@rabbit/v")
    assert params.display == "amqp://user:********@rabbit/v"
    assert "hunter2" not in repr(params) and "hunter2" not in str(params)
    assert isinstance(params, AmqpParams)


@pytest.mark.parametrize(
    "uri", ["http://u:hunter2@rabbit/", "memory://", "amqp://u:hunter2@rabbit:notaport/"]
)
def test_bad_uris_are_refused_without_showing_the_password(uri: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_uri(uri)
    assert "hunter2" not in str(info.value)


def test_an_ssl_option_turns_tls_on_with_the_amqps_port() -> None:
    assert (
        parse_uri("amqp://u:p@rabbit/v", tls=True).tls,
        parse_uri("amqp://u:p@rabbit/v", tls=True).port,
    ) == (True, 5671)
    assert parse_uri("amqp://u:p@rabbit:5672/v", tls=True).port == 5672  # an explicit port stays
