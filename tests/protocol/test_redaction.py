"""nameko._redaction: what is masked, by name and by value, and what must stay."""

from __future__ import annotations

import random
import string

import pytest

from nameko._redaction import (
    MASK,
    is_secret_name,
    looks_random,
    mask_values,
    redact_config,
    redact_query,
    redact_target,
    redact_text,
)

M = MASK
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
RANDOM = "q8ZfK2mV9xT4rL7wN1pB6sD3hJ5gC0yA"  # 32 characters, mixed case and digits


@pytest.mark.parametrize(
    "name",
    [
        "PASSWORD",
        "password",
        "db_password",
        "keyfile_password",
        "SMTPPASSWORD",
        "pass",
        "pwd",
        "passwd",
        "DB_PWD",
        "secret",
        "client_secret",
        "SECRET_KEY_BASE",
        "token",
        "access_token",
        "API_TOKEN",
        "credentials",
        "CREDENTIALS",
        "credential",
        "auth",
        "AUTH_HEADER",
        "Authorization",
        "api_key",
        "apikey",
        "apiKey",
        "APIKey",
        "X-Api-Key",
        "private_key",
        "PRIVATE_KEY",
        "SIGNING_KEY",
        "key",
        "SENTRY_DSN",
        "dsn",
        "sig",
        "signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "session_cookie",
        "tokens",
    ],
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "AMQP_URI",
        "max_workers",
        "keyfile",
        "certfile",
        "ROUTING_KEY",
        "public_key",
        "PASSWORD_RETRIES",
        "TOKEN_URL",
        "password_file",
        "AUTH_ENABLED",
        "username",
        "user",
        "author",
        "monkey",
        "passport",
        "compass",
        "bypass_cache",
        "OAUTH_CLIENT_ID",
        "KEY_PREFIX",
        "SECRETS_DIR",
        "host",
        "",
        "page",
        "q",
    ],
)
def test_ordinary_names(name):
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    "text,shown",
    [
        # URLs: a password goes, the user and the host stay; a lone userinfo is a key
        ("amqp://guest:guest@rabbit:5672/prod", f"amqp://guest:{M}@rabbit:5672/prod"),
        ("amqp://u:p@ss@h1/vh;amqp://u2:p2@h2", f"amqp://u:{M}@h1/vh;amqp://u2:{M}@h2"),
        ("redis://:s3cr3t@cache:6379/0", f"redis://:{M}@cache:6379/0"),
        ("https://0123abcd@o1.ingest.sentry.io/42", f"https://{M}@o1.ingest.sentry.io/42"),
        ("see https://example.com/docs?page=2 now", "see https://example.com/docs?page=2 now"),
        ("amqp://rabbit:5672/", "amqp://rabbit:5672/"),
        ("user@example.com", "user@example.com"),
        # HTTP auth schemes
        ("Bearer abc.def-123456", f"Bearer {M}"),
        ("Authorization: Basic Ym9iOnNlY3JldA==", f"Authorization: Basic {M}"),
        ("token 0123456789abcdef", f"token {M}"),
        ("Basic authentication is off", "Basic authentication is off"),
        ("a Bearer token", "a Bearer token"),
        # name=value pairs, names kept
        ("host=db user=app password=hunter2 port=5432", f"host=db user=app password={M} port=5432"),
        ("Server=db;Pwd=hunter2;Database=app", f"Server=db;Pwd={M};Database=app"),
        ("nameko run -d API_TOKEN=abc123 svc", f"nameko run -d API_TOKEN={M} svc"),
        (
            "tool --password=abc123 --db-pwd=x9 --host=db",
            f"tool --password={M} --db-pwd={M} --host=db",
        ),
        ("https://api.example/x?api_key=abc&n=1", f"https://api.example/x?api_key={M}&n=1"),
        ("password='two words' x=1", f"password={M} x=1"),
        ("max_workers=10 a=b", "max_workers=10 a=b"),
        ("--define wants KEY=VALUE", "--define wants KEY=VALUE"),  # usage text, not a secret
        ("token=<token> password=...", "token=<token> password=..."),
        ("x == y", "x == y"),
        # placeholders: the default of a secret-named variable
        ("bad placeholder '${DB_PASSWORD:hunter2'", f"bad placeholder '${{DB_PASSWORD:{M}'"),
        # not a placeholder default: a colon after a broken name, then usage text
        (
            "bad placeholder '${PASSWORD@localhost': write ${NAME} or ${NAME:default}",
            "bad placeholder '${PASSWORD@localhost': write ${NAME} or ${NAME:default}",
        ),
        ("${SMTP_PASS:hunter2}", f"${{SMTP_PASS:{M}}}"),
        ("${PORT:8000}", "${PORT:8000}"),
        # JWTs and prefixed tokens, alone or inside text
        (JWT, M),
        (f"got {JWT} from idp", f"got {M} from idp"),
        ("ghp_" + "a1B2" * 9, M),
        ("AKIAIOSFODNN7EXAMPLE", M),
        ("xoxb-1234-5678-abcdefgh", M),
        # ordinary text
        ("", ""),
        ("orders.placed", "orders.placed"),
        ("/etc/ssl/client.pem", "/etc/ssl/client.pem"),
        ("myapp.services:OrderService", "myapp.services:OrderService"),
    ],
)
def test_redact_text(text, shown):
    assert redact_text(text) == shown


def test_redact_config_by_key_at_any_depth():
    config = {
        "AMQP_URI": "amqp://app:pw@rabbit.example:5672/prod",
        "AUTH_HEADER": "Bearer abc123def456",
        "CREDENTIALS": {"user": "bob", "key": "k", "nested": [{"deep": "x"}]},
        "SMTP": {"host": "smtp.example", "port": 587, "pass": "hunter2", "tls": True},
        "SENTRY_DSN": "https://0123abcd@sentry.example/1",
        "tokens": ["a", "b"],
        "API_KEYS": ("k1", "k2"),
        "PASSWORD": 123456,
        "PIN_SECRET": None,
        "AUTH_ENABLED": True,
        "max_workers": 10,
        "ratio": 0.5,
        "debug": False,
        "HOSTS": ["a.example", "b.example"],
        "DB_URIS": {"orders": "postgresql://orders:S3cr3t@db.example/orders"},
        "WEBHOOK": "https://hooks.example/T0/B0?sig=abcdef",
        "OPAQUE": RANDOM,
        "NAME": "OrderServiceWithAVeryLongName2024",
    }
    assert redact_config(config) == {
        "AMQP_URI": f"amqp://app:{M}@rabbit.example:5672/prod",
        "AUTH_HEADER": M,
        "CREDENTIALS": {"user": M, "key": M, "nested": [{"deep": M}]},
        "SMTP": {"host": "smtp.example", "port": 587, "pass": M, "tls": True},
        "SENTRY_DSN": M,
        "tokens": [M, M],
        "API_KEYS": (M, M),
        "PASSWORD": M,
        "PIN_SECRET": None,
        "AUTH_ENABLED": True,
        "max_workers": 10,
        "ratio": 0.5,
        "debug": False,
        "HOSTS": ["a.example", "b.example"],
        "DB_URIS": {"orders": f"postgresql://orders:{M}@db.example/orders"},
        "WEBHOOK": f"https://hooks.example/T0/B0?sig={M}",
        "OPAQUE": M,
        "NAME": "OrderServiceWithAVeryLongName2024",
    }


def test_redact_config_does_not_change_its_input():
    config = {"SMTP": {"pass": "hunter2"}, "list": ["Bearer abc123def456"]}
    redact_config(config)
    assert config == {"SMTP": {"pass": "hunter2"}, "list": ["Bearer abc123def456"]}


def test_redact_config_with_the_key_it_is_under():
    assert redact_config(["a", 1, True], key="secrets") == [M, M, True]
    assert redact_config("plain", key="host") == "plain"


@pytest.mark.parametrize(
    "value",
    [
        "0123456789abcdef0123456789abcdef01234567",  # a hex digest: needs a secret name
        "123e4567-e89b-12d3-a456-426614174000",  # a UUID
        "orders_service_rpc_queue_v2_with_a_long_name",
        "SomeVeryLongCamelCaseClassNameWithoutDigits",
        "Short1Mixed",
        "aaaaaaaaaaaaaaaaBBBBBBBBBBBBBBBB1111",  # long but not random
    ],
)
def test_values_that_do_not_look_random(value):
    assert not looks_random(value)


def test_most_generated_tokens_look_random():
    """A bonus rule: a secret-named key masks any token; this one catches
    most opaque tokens under ordinary keys (~90% of 32-character ones)."""
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits
    generated = ["".join(rng.choice(alphabet) for _ in range(32)) for _ in range(2000)]
    assert sum(map(looks_random, generated)) > 0.8 * len(generated)
    assert looks_random(RANDOM)


def test_mask_values_masks_known_secrets_anywhere():
    config = {"OPTIONS": "hunter2", "URL": "smtp://mail?pw=hunter2", "n": 1, "l": ["hunter2"]}
    assert mask_values(config, {"hunter2", "x"}) == {
        "OPTIONS": M,
        "URL": f"smtp://mail?pw={M}",
        "n": 1,
        "l": [M],
    }
    assert mask_values(config, set()) is config


@pytest.mark.parametrize(
    "query,shown",
    [
        ("", ""),
        ("page=2&sort=name", "page=2&sort=name"),
        ("token=abc", f"token={M}"),
        ("a=1&access_token=abc&b=2", f"a=1&access_token={M}&b=2"),
        ("api_key=k&apikey=k&password=p", f"api_key={M}&apikey={M}&password={M}"),
        (
            "X-Amz-Signature=ff&X-Amz-Credential=c&X-Amz-Date=1",
            f"X-Amz-Signature={M}&X-Amz-Credential={M}&X-Amz-Date=1",
        ),
        ("sig=abc&code=xyz&state=s", f"sig={M}&code={M}&state=s"),
        ("access%5Ftoken=abc", f"access%5Ftoken={M}"),
        ("token=&flag", "token=&flag"),  # nothing to mask
        ("q=password", "q=password"),  # a secret-looking value, but an ordinary name
    ],
)
def test_redact_query(query, shown):
    assert redact_query(query) == shown


def test_redact_target():
    assert redact_target("/orders/1") == "/orders/1"
    assert redact_target("/x?token=abc&page=2") == f"/x?token={M}&page=2"
    assert redact_target("/x?") == "/x?"
