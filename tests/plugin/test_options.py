"""The plugin's command-line options, seen from an inner pytest session."""

from __future__ import annotations

import ssl

OPTIONS_PROBE = """
import json, os

def test_options(request):
    names = ["RABBIT_AMQP_URI", "RABBIT_API_URI", "AMQP_SSL_PORT", "AMQP_SSL_OPTIONS",
             "blocking_detection", "suppress_nameko_eventlet_notification"]
    values = {name: request.config.getoption(name) for name in names}
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump(values, out)

def test_ssl_options(rabbit_ssl_options):
    with open(os.environ["PROBE_OUT"] + ".ssl", "w") as out:
        json.dump(rabbit_ssl_options, out)
"""


def probe(pytester, run_inner, monkeypatch, *args):
    import json

    out = pytester.path / "probe.json"
    monkeypatch.setenv("PROBE_OUT", str(out))
    pytester.makepyfile(test_probe=OPTIONS_PROBE)
    run_inner(*args).assert_outcomes(passed=2)
    ssl_options = json.loads((out.parent / "probe.json.ssl").read_text())
    return json.loads(out.read_text()), ssl_options


def test_defaults(pytester, run_inner, monkeypatch):
    values, ssl_options = probe(pytester, run_inner, monkeypatch)
    assert values == {
        "RABBIT_AMQP_URI": "pyamqp://guest:guest@localhost:5672/",
        "RABBIT_API_URI": "http://guest:guest@localhost:15672",
        "AMQP_SSL_PORT": 5671,
        "AMQP_SSL_OPTIONS": [
            ["ca_certs", "certs/cacert.pem"],
            ["certfile", "certs/clientcert.pem"],
            ["keyfile", "certs/clientkey.pem"],
            ["cert_reqs", "CERT_REQUIRED"],
        ],
        "blocking_detection": False,
        "suppress_nameko_eventlet_notification": False,
    }
    assert ssl_options == {
        "ca_certs": "certs/cacert.pem",
        "certfile": "certs/clientcert.pem",
        "keyfile": "certs/clientkey.pem",
        "cert_reqs": ssl.CERT_REQUIRED,  # the name becomes the ssl constant
    }


def test_every_option_and_alias(pytester, run_inner, monkeypatch):
    values, ssl_options = probe(
        pytester, run_inner, monkeypatch,
        "--rabbit-amqp-uri", "amqp://u:p@rabbit:5673/ignored",
        "--rabbit-ctl-uri", "http://u:p@rabbit:15673",
        "--amqp-ssl-port", "5674",
        "--amqp-ssl-option", "certfile=other.pem",
        "--amqp-ssl-option", "cert_reqs=CERT_NONE",
        "--amqp-ssl-option", "check_hostname",  # bare: True
        "--amqp-ssl-option", "ciphers=[1, 2]",  # YAML
        "--blocking-detection",
        "--suppress-nameko-eventlet-notification",
    )  # fmt: skip
    assert values["RABBIT_AMQP_URI"] == "amqp://u:p@rabbit:5673/ignored"
    assert values["RABBIT_API_URI"] == "http://u:p@rabbit:15673"
    assert values["AMQP_SSL_PORT"] == 5674
    assert values["blocking_detection"] is True
    assert values["suppress_nameko_eventlet_notification"] is True
    assert ssl_options == {
        "ca_certs": "certs/cacert.pem",
        "certfile": "other.pem",
        "keyfile": "certs/clientkey.pem",
        "cert_reqs": ssl.CERT_NONE,
        "check_hostname": True,
        "ciphers": [1, 2],
    }


def test_the_other_aliases(pytester, run_inner, monkeypatch):
    values, _ = probe(
        pytester, run_inner, monkeypatch,
        "--amqp-uri", "amqp://a:b@c:1/", "--rabbit-api-uri", "http://a:b@c:2",
    )  # fmt: skip
    assert (values["RABBIT_AMQP_URI"], values["RABBIT_API_URI"]) == (
        "amqp://a:b@c:1/",
        "http://a:b@c:2",
    )


def test_help_says_why_the_eventlet_options_do_nothing(run_inner):
    result = run_inner("--help")
    text = " ".join(result.stdout.str().split())
    for option in ("--amqp-uri", "--rabbit-ctl-uri", "--amqp-ssl-port", "--amqp-ssl-option"):
        assert option in text
    assert "--blocking-detection accepted for nameko 2.x compatibility; does nothing" in text
    assert "--suppress-nameko-eventlet-notification accepted for nameko 2.x" in text
    assert "no eventlet monkey-patching" in text


def test_amqp_uri_may_name_several_nodes() -> None:
    """``--amqp-uri "amqp://u:p@h1:5672;amqp://h2:5673"`` (a cluster): each
    node gets the test's vhost."""
    from nameko.testing.pytest import _uri_on

    assert _uri_on("amqp://u:p@h1:5672/;amqp://h2:5673", "vh") == (
        "amqp://u:p@h1:5672/vh;amqp://u:p@h2:5673/vh"
    )
    assert _uri_on("amqp://u:p@h1:5672/", "vh") == "amqp://u:p@h1:5672/vh"
