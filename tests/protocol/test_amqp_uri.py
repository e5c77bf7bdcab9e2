"""AMQP URI parsing."""

from __future__ import annotations

import pytest

from nameko._amqp.uri import AmqpParams, parse_uri, parse_uris
from nameko._urls import sanitize_url


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


# -- several brokers ------------------------------------------------

THREE = ["amqp://u:p@h1:5672/vh", "amqp://u:p@h2:5673/vh", "amqp://u:p@h3:5674/vh"]


def addresses(value) -> list[tuple[str, int, str, str, str]]:
    return [(n.host, n.port, n.username, n.password, n.vhost) for n in parse_uris(value)]


EXPECTED = [
    ("h1", 5672, "u", "p", "vh"),
    ("h2", 5673, "u", "p", "vh"),
    ("h3", 5674, "u", "p", "vh"),
]


@pytest.mark.parametrize(
    "value",
    [
        THREE,
        ";".join(THREE),
        ",".join(THREE),
        " ; ".join(THREE),
        "amqp://u:p@h1:5672/vh;amqp://h2:5673;amqp://h3:5674",  # kombu's short form
        "amqp://u:p@h1:5672/vh;h2:5673;h3:5674",
        "amqp://u:p@h1:5672/vh, amqp://h2:5673, amqp://h3:5674",
        [THREE[0], "amqp://h2:5673/vh;amqp://h3:5674"],
    ],
    ids=["list", "semicolons", "commas", "spaces", "short", "hosts", "short-commas", "mixed"],
)
def test_several_brokers(value) -> None:
    assert addresses(value) == EXPECTED


def test_one_uri_is_one_node() -> None:
    assert addresses("amqp://u:p@h1:5672/vh") == EXPECTED[:1]
    assert addresses(["amqp://u:p@h1:5672/vh"]) == EXPECTED[:1]


def test_a_later_node_may_have_its_own_credentials_and_vhost() -> None:
    nodes = parse_uris("amqp://u:p@h1/vh;amqp://x:y@h2/other")
    assert [(n.username, n.password, n.vhost) for n in nodes] == [
        ("u", "p", "vh"),
        ("x", "y", "other"),
    ]


@pytest.mark.parametrize("password", ["p;w", "p,w", "p;h2:5673"])
def test_separators_inside_a_password_do_not_split(password: str) -> None:
    """(A password should be percent-encoded; an unencoded one still works.)"""
    nodes = parse_uris(f"amqp://u:{password}@h1/vh")
    assert [(n.host, n.password) for n in nodes] == [("h1", password)]


def test_tls_applies_to_every_node() -> None:
    assert [n.tls for n in parse_uris(";".join(THREE), tls=True)] == [True] * 3
    assert [n.tls for n in parse_uris("amqps://u:p@h1/vh;h2")] == [True, True]


def test_no_password_shows_for_any_node() -> None:
    value = "amqp://u:s3cret@h1/vh;amqp://x:t0ps3cret@h2/vh;h3"
    shown = [repr(n) for n in parse_uris(value)] + [sanitize_url(value)]
    shown.append(sanitize_url(value.split(";")))
    assert not any("s3cret" in text for text in shown), shown
    assert sanitize_url(value) == (
        "amqp://u:********@h1/vh;amqp://x:********@h2/vh;amqp://u:********@h3/vh"
    )


def test_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no AMQP URI"):
        parse_uris([])


def test_a_bad_node_is_refused_without_showing_any_password() -> None:
    with pytest.raises(ValueError) as info:
        parse_uris("amqp://u:s3cret@h1/vh;http://u:s3cret@h2/vh")
    assert "s3cret" not in str(info.value)
