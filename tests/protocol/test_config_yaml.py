"""YAML config loading with env-var substitution (SPEC 9.1)."""

from __future__ import annotations

import io
import os
from contextlib import contextmanager

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from nameko import _config_yaml
from nameko._config_yaml import (
    NESTED_LOOKUP_ERROR,
    load_config,
    setup_yaml_parser,
    substitute_env_vars,
)
from nameko._protocol import codecs
from nameko._protocol.errors import DecodeError
from nameko.exceptions import ConfigurationError

PREFIX = "SHIMEJI_TEST_"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def nested(monkeypatch):
    monkeypatch.setattr(_config_yaml, "NESTED_DEFAULTS", True)


@pytest.fixture
def not_nested(monkeypatch):
    monkeypatch.setattr(_config_yaml, "NESTED_DEFAULTS", False)


def load(text: str) -> dict:
    return load_config(io.StringIO(text))


class TestSubstitution:
    def test_set_variable(self, monkeypatch):
        monkeypatch.setenv(PREFIX + "HOST", "rabbit")
        assert load(f"KEY: ${{{PREFIX}HOST}}") == {"KEY": "rabbit"}

    def test_set_but_empty_wins_over_default(self, monkeypatch):
        monkeypatch.setenv(PREFIX + "EMPTY", "")
        # '' re-parsed as YAML is None
        assert load(f"KEY: ${{{PREFIX}EMPTY:default}}") == {"KEY": None}
        assert load(f"KEY: !raw_env_var ${{{PREFIX}EMPTY:default}}") == {"KEY": ""}

    def test_unset_without_default_is_none(self):
        assert load(f"KEY: ${{{PREFIX}UNSET}}") == {"KEY": None}

    @pytest.mark.parametrize(
        ("default", "value"),
        [("12", 12), ("1234.5660", 1234.566), ("true", True), ("[1, 2]", [1, 2]), ("a b", "a b")],
    )
    def test_default_is_typed(self, default, value):
        assert load(f"KEY: ${{{PREFIX}UNSET:{default}}}") == {"KEY": value}

    def test_variable_value_is_typed(self, monkeypatch):
        monkeypatch.setenv(PREFIX + "LIST", "[A,B,C]")
        monkeypatch.setenv(PREFIX + "PORT", "5672")
        assert load(f"A: ${{{PREFIX}LIST}}\nB: ${{{PREFIX}PORT}}") == {
            "A": ["A", "B", "C"],
            "B": 5672,
        }

    def test_raw_env_var_keeps_the_string(self):
        assert load(f"KEY: !raw_env_var ${{{PREFIX}UNSET:1234.5660}}") == {"KEY": "1234.5660"}

    @pytest.mark.parametrize("quoted", ['"${H:quoted}"', "'${H:quoted}'"])
    def test_quoted_scalars_untouched(self, quoted):
        assert load(f"KEY: {quoted}") == {"KEY": "${H:quoted}"}

    def test_explicit_tag_on_quoted_scalar(self):
        assert load(f'KEY: !env_var "${{{PREFIX}X:default value}}"') == {"KEY": "default value"}

    def test_surrounding_text_and_several_placeholders(self, monkeypatch):
        monkeypatch.setenv(PREFIX + "B", "bee")
        text = f"KEY: prefix-${{{PREFIX}H:localhost}}-${{{PREFIX}B}}-suffix"
        assert load(text) == {"KEY": "prefix-localhost-bee-suffix"}

    def test_amqp_uri_example(self, monkeypatch):
        monkeypatch.setenv(PREFIX + "RABBIT", "guest:guest@rabbit")
        text = f"AMQP_URI: pyamqp://${{{PREFIX}RABBIT}}:5672/"
        assert load(text) == {"AMQP_URI": "pyamqp://guest:guest@rabbit:5672/"}

    @pytest.mark.parametrize("value", ["${ bad }", "${}", "${A B}", "${unclosed:x"])
    def test_not_placeholders_kept_verbatim(self, value):
        assert substitute_env_vars(value) == value

    def test_unchanged_value_is_not_reparsed(self):
        # matches the implicit resolver but holds no placeholder: stays a string
        assert load("KEY: ${ 12 }") == {"KEY": "${ 12 }"}

    def test_keys_are_substituted_too(self, monkeypatch):
        monkeypatch.setenv(PREFIX + "K", "name")
        assert load(f"${{{PREFIX}K}}: 1") == {"name": 1}

    def test_plain_values_unaffected(self):
        assert load("A: plain\nB: 3\nC: $HOME\nD: '{x}'") == {
            "A": "plain",
            "B": 3,
            "C": "$HOME",
            "D": "{x}",
        }

    def test_nested_structures(self):
        assert load(f"A:\n  - ${{{PREFIX}U:1}}\n  - b: ${{{PREFIX}U:x}}") == {"A": [1, {"b": "x"}]}

    def test_self_referencing_variable(self, monkeypatch):
        monkeypatch.setenv(PREFIX + "LOOP", f"a${{{PREFIX}LOOP}}")
        with pytest.raises(ConfigurationError, match="does not terminate"):
            load(f"KEY: ${{{PREFIX}LOOP}}")


class TestNesting:
    def test_nested_defaults(self, nested):
        text = f"KEY: ${{{PREFIX}URI:pyamqp://${{{PREFIX}USER:guest}}@${{{PREFIX}HOST:localhost}}}}"
        assert load(text) == {"KEY": "pyamqp://guest@localhost"}

    def test_nested_inner_variable_set(self, nested, monkeypatch):
        monkeypatch.setenv(PREFIX + "HOST", "rabbit")
        text = f"KEY: ${{{PREFIX}URI:pyamqp://${{{PREFIX}USER:guest}}@${{{PREFIX}HOST:localhost}}}}"
        assert load(text) == {"KEY": "pyamqp://guest@rabbit"}

    def test_outer_variable_set_skips_default(self, nested, monkeypatch):
        monkeypatch.setenv(PREFIX + "URI", "memory://")
        text = f"KEY: ${{{PREFIX}URI:pyamqp://${{{PREFIX}USER:guest}}@host}}"
        assert load(text) == {"KEY": "memory://"}

    def test_braces_in_default(self, nested):
        text = f"KEY: ${{{PREFIX}URL:https://example.com/{{path}}}}"
        assert load(text) == {"KEY": "https://example.com/{path}"}

    def test_unbalanced_default_is_not_a_placeholder(self, nested):
        assert substitute_env_vars("${X:{a}", nested=True) == "${X:{a}"

    def test_without_regex_nesting_is_an_error(self, not_nested):
        text = f"KEY: ${{{PREFIX}A:x${{{PREFIX}B}}}}"
        with pytest.raises(ConfigurationError) as info:
            load(text)
        assert str(info.value) == NESTED_LOOKUP_ERROR
        assert NESTED_LOOKUP_ERROR == (
            "Nested environment variable lookup requires the `regex` module"
        )

    def test_without_regex_flat_defaults_work(self, not_nested):
        assert load(f"KEY: ${{{PREFIX}A:flat}}-${{{PREFIX}B:x}}") == {"KEY": "flat-x"}

    def test_gate_follows_regex_availability(self):
        import importlib.util

        expected = importlib.util.find_spec("regex") is not None
        assert expected is _config_yaml.NESTED_DEFAULTS


class TestLoadConfig:
    def test_from_path(self, tmp_path):
        path = tmp_path / "config.yaml"
        path.write_text("AMQP_URI: ${SHIMEJI_TEST_URI:memory://}\nmax_workers: 2\n")
        assert load_config(path) == {"AMQP_URI": "memory://", "max_workers": 2}
        assert load_config(str(path)) == {"AMQP_URI": "memory://", "max_workers": 2}

    def test_from_binary_stream(self):
        assert load_config(io.BytesIO(b"A: 1")) == {"A": 1}

    @pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
    def test_empty_document(self, text):
        assert load(text) == {}

    @pytest.mark.parametrize("text", ["- a\n- b", "just text", "3"])
    def test_not_a_mapping(self, text):
        with pytest.raises(ConfigurationError, match="mapping"):
            load(text)


class TestParserSetup:
    def test_registers_on_safe_loader(self):
        setup_yaml_parser()
        assert yaml.safe_load(f"A: ${{{PREFIX}U:5}}") == {"A": 5}
        assert "!env_var" in yaml.SafeLoader.yaml_constructors
        assert "!raw_env_var" in yaml.SafeLoader.yaml_constructors

    def test_idempotent(self):
        for _ in range(3):
            setup_yaml_parser()
        resolvers = yaml.SafeLoader.yaml_implicit_resolvers[None]
        assert sum(tag == "!env_var" for tag, _ in resolvers) == 1

    def test_message_bodies_never_expand_variables(self, monkeypatch):
        setup_yaml_parser()
        monkeypatch.setenv(PREFIX + "SECRET", "hunter2")
        body = f"a: ${{{PREFIX}SECRET}}\nb: !env_var x".encode()
        with pytest.raises(DecodeError, match="env_var"):  # unknown tag in a body
            codecs.decode(body, "application/x-yaml", "utf-8", ["yaml"])
        plain = f"a: ${{{PREFIX}SECRET}}".encode()
        assert codecs.decode(plain, "application/x-yaml", "utf-8", ["yaml"]) == {
            "a": f"${{{PREFIX}SECRET}}"
        }


@contextmanager
def environ(name: str, value: str | None):
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


names = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True).map(lambda n: PREFIX + "H_" + n)
values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
free_text = st.text(max_size=20).filter(lambda t: "${" not in t and "$" not in t[-1:])


@given(name=names, value=values, before=free_text, after=free_text)
def test_set_variable_substituted_verbatim(name, value, before, after):
    with environ(name, value):
        assert substitute_env_vars(f"{before}${{{name}}}{after}") == before + value + after


@given(
    name=names,
    default=st.text(max_size=20).filter(lambda t: "}" not in t and "{" not in t and "$" not in t),
    nested_mode=st.booleans(),
)
def test_unset_variable_uses_default(name, default, nested_mode):
    with environ(name, None):
        assert substitute_env_vars(f"${{{name}:{default}}}", nested=nested_mode) == default


@given(text=st.text(max_size=40).filter(lambda t: "${" not in t))
def test_text_without_placeholders_unchanged(text):
    assert substitute_env_vars(text) == text
