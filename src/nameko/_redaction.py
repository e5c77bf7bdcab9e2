"""Keeping secrets out of what we print, log and send.

How it works. A value is treated as a secret for one of two reasons, and
every function here returns a masked copy (``********``), never changing
its input:

* **By name.** A config key, the name in a ``name=value`` pair or a query
  parameter is split into words (``AUTH_HEADER`` -> auth, header;
  ``apiKey`` -> api, key; ``SMTP.pass`` -> pass). It is secret when a word
  is one of `SECRET_WORDS` (``key`` not after ``routing``, ``public``...),
  or the name contains one of the long words of `SECRET_SUBSTRINGS`
  (``SMTPPASSWORD``), unless its last word says it names *about* a secret
  rather than the secret itself (``TOKEN_URL``, ``PASSWORD_FILE``,
  ``PASSWORD_RETRIES``: `NOT_SECRET_LAST_WORDS`). Under a secret key every
  value is masked, at any depth (lists, nested mappings keep their shape
  and keys), except ``true``/``false``/``null``.
* **By value.** Wherever a string appears, under any key or in free text:
  the userinfo of a URL (``amqp://user:********@host``,
  ``https://********@sentry.example/1``), the credential after an HTTP auth
  scheme (``Bearer ********``), the value of a ``name=value`` pair whose
  name is secret, a JWT, the default of a ``${SECRET_NAME:default}``
  placeholder, and tokens of a few services with a recognisable prefix
  (GitHub, Slack, Stripe, AWS access keys, GitLab, Google API keys). A
  config value that is one opaque high-entropy word (`looks_random`) is
  masked too; free text is not judged on entropy (too many false alarms).

Query strings (access log, spans) only get the by-name rule on their
parameter names, plus a few names that only mean a credential in a URL
(`QUERY_SECRET_NAMES`); the names stay, the values go. That path runs per
request, so a target without ``?`` returns at once and name decisions are
cached.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from nameko._urls import MASK

__all__ = [
    "MASK",
    "NOT_SECRET_LAST_WORDS",
    "QUERY_SECRET_NAMES",
    "SECRET_SUBSTRINGS",
    "SECRET_WORDS",
    "is_secret_name",
    "looks_random",
    "mask_values",
    "redact_config",
    "redact_query",
    "redact_target",
    "redact_text",
]

#: words of a name that make it secret (compared lowercased, whole words)
SECRET_WORDS = frozenset(
    [
        "pass",
        "passwd",
        "password",
        "passwords",
        "pwd",
        "pw",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "credential",
        "credentials",
        "creds",
        "auth",
        "authorization",
        "apikey",
        "key",
        "keys",
        "privatekey",
        "dsn",
        "sig",
        "signature",
        "cookie",
        "jwt",
        "otp",
    ]
)
#: parts of a name that make it secret wherever they occur (``SMTPPASSWORD``)
SECRET_SUBSTRINGS = ("password", "passwd", "secret", "token", "credential", "apikey", "privatekey")
#: a last word that makes a name describe a secret, not hold one
NOT_SECRET_LAST_WORDS = frozenset(
    [
        "url",
        "uri",
        "urls",
        "uris",
        "endpoint",
        "host",
        "hostname",
        "port",
        "file",
        "path",
        "dir",
        "directory",
        "timeout",
        "ttl",
        "retries",
        "expiry",
        "expires",
        "length",
        "size",
        "type",
        "enabled",
        "name",
        "user",
        "username",
        "scheme",
        "algorithm",
        "prefix",
        "count",
        "interval",
        "version",
        "format",
        "mode",
        "header_name",
        "field",
        "location",
    ]
)
#: ``<word> key`` pairs that are not secrets
_NOT_SECRET_KEYS = frozenset(
    ["routing", "public", "partition", "sort", "cache", "primary", "foreign"]
)
#: query parameter names that are credentials in a URL though not in config
QUERY_SECRET_NAMES = frozenset({"code", "sid", "session", "sessionid"})

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#]*)@")
_AUTH_SCHEME = re.compile(
    r"\b(?P<scheme>Bearer|Basic|Digest|Token|Bot|ApiKey|Negotiate)(?P<space>\s+)"
    r"(?P<credential>[A-Za-z0-9._~+/=-]{8,})",
    re.IGNORECASE,
)
_PAIR = re.compile(
    r"(?<![\w.])(?P<name>[A-Za-z_][\w.-]*)(?P<eq>\s*=\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,)\"']+)"
)
# what usage text writes for a value (KEY=VALUE, token=<token>), or our own mask
_METAVARIABLE = re.compile(r"[A-Z][A-Z_]*|<[^<>]*>|\.\.\.|\*{8}")
_PLACEHOLDER_DEFAULT = re.compile(r"\$\{(?P<name>[A-Za-z_][\w.-]*):(?P<default>[^{}'\"]*)")
_JWT = re.compile(r"\beyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*")
_PREFIXED_TOKEN = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|AKIA[0-9A-Z]{16}|AIza[\w-]{35}|glpat-[\w-]{20,})"
)
_OPAQUE = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_LETTER_RUN = re.compile(r"[a-z]{4,}|[A-Z]{4,}")


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a config key / parameter called ``name`` holds a secret."""
    words = [word.lower() for word in _WORD.findall(name)]
    if not words or words[-1] in NOT_SECRET_LAST_WORDS:
        return False
    for index, word in enumerate(words):
        if word in SECRET_WORDS:
            after_qualifier = index > 0 and words[index - 1] in _NOT_SECRET_KEYS
            if not (word in ("key", "keys") and after_qualifier):
                return True
    joined = "".join(words)
    return any(part in joined for part in SECRET_SUBSTRINGS)


def looks_random(value: str) -> bool:
    """Whether ``value`` is one opaque word that can only be a generated
    token: 32+ characters of a token alphabet with upper and lower case
    letters and digits, at least 4 bits of entropy per character, at most
    40% of it in runs of 4+ letters of one case, and at most 30% of
    its letters vowels (words, even ``CamelCaseNames2024``, fail one of
    these; so do hex digests, UUIDs, paths and dotted names)."""
    if len(value) < 32 or not _OPAQUE.fullmatch(value):
        return False
    if value.islower() or value.isupper() or not any(c.isdigit() for c in value):
        return False
    if sum(map(len, _LETTER_RUN.findall(value))) > 0.4 * len(value):
        return False
    letters = [c for c in value.lower() if c.isalpha()]
    if sum(c in "aeiou" for c in letters) > 0.3 * len(letters):
        return False
    counts = [value.count(char) for char in set(value)]
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts)
    return entropy >= 4.0


def redact_text(text: str) -> str:
    """``text`` with every secret found by value masked (see the module doc)."""
    if "://" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _PAIR.sub(_mask_pair, text)
    if "${" in text:
        text = _PLACEHOLDER_DEFAULT.sub(_mask_placeholder, text)
    text = _AUTH_SCHEME.sub(_mask_credential, text)
    text = _JWT.sub(MASK, text)
    return _PREFIXED_TOKEN.sub(MASK, text)


def redact_config(value: Any, key: Any = None) -> Any:
    """A copy of ``value`` (a config mapping, or anything in one) fit to
    print: everything under a secret key masked, and secrets by value in
    every string. ``key`` is the name ``value`` is found under, if any."""
    return _redact(value, isinstance(key, str) and is_secret_name(key))


def mask_values(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of ``value`` with each of ``secrets`` (known secret strings,
    e.g. what secret-named environment variables gave) masked wherever it
    appears in a string; ones shorter than 4 characters are left alone."""
    known = sorted((s for s in set(secrets) if len(s) >= 4), key=len, reverse=True)
    if not known:
        return value
    return _replace_known(value, known)


def redact_query(query: str) -> str:
    """``a=1&token=abc`` -> ``a=1&token=********``: values of parameters
    whose names look secret masked, names and order kept."""
    if not query or "=" not in query:
        return query
    pairs = query.split("&")
    if not any(_is_secret_parameter(pair.partition("=")[0]) for pair in pairs):
        return query  # the common case: names seen before, answered by the cache
    return "&".join(_mask_parameter(pair) for pair in pairs)


def redact_target(target: str) -> str:
    """An HTTP request target (``/path?query``) with `redact_query` applied."""
    if "?" not in target:
        return target
    path, _, query = target.partition("?")
    return f"{path}?{redact_query(query)}"


# -- helpers ------------------------------------------------------------------


def _redact(value: Any, secret: bool) -> Any:
    if isinstance(value, Mapping):
        return {
            k: _redact(v, secret or (isinstance(k, str) and is_secret_name(k)))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [_redact(item, secret) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if value is None or isinstance(value, bool):
        return value  # says whether a secret is set, not what it is
    if secret and isinstance(value, (str, bytes, int, float)):
        return MASK
    if isinstance(value, str):
        return MASK if looks_random(value) else redact_text(value)
    return value


def _replace_known(value: Any, known: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _replace_known(v, known) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_replace_known(item, known) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, str):
        for secret in known:
            value = value.replace(secret, MASK)
    return value


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match["userinfo"]
    user, colon, _ = userinfo.partition(":")
    if colon:  # user:password -> the user stays (it tells which account)
        return f"{match['scheme']}{user}:{MASK}@"
    return f"{match['scheme']}{MASK}@"  # a lone userinfo is a key (DSNs)


def _mask_pair(match: re.Match[str]) -> str:
    if not is_secret_name(match["name"]) or _METAVARIABLE.fullmatch(match["value"]):
        return match[0]
    return f"{match['name']}{match['eq']}{MASK}"


def _mask_placeholder(match: re.Match[str]) -> str:
    if not is_secret_name(match["name"]) or not match["default"]:
        return match[0]
    return f"${{{match['name']}:{MASK}"


def _mask_credential(match: re.Match[str]) -> str:
    credential = match["credential"]
    if credential == MASK or credential.isalpha() and len(credential) < 20:
        return match[0]  # a word ("Basic authentication"), not a credential
    return f"{match['scheme']}{match['space']}{MASK}"


def _mask_parameter(pair: str) -> str:
    name, eq, value = pair.partition("=")
    if not eq or not value or not _is_secret_parameter(name):
        return pair
    return f"{name}={MASK}"


@lru_cache(maxsize=1024)
def _is_secret_parameter(name: str) -> bool:
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    return name.lower() in QUERY_SECRET_NAMES or is_secret_name(name)
