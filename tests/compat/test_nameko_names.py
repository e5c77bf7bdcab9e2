"""Every public name of nameko 2.14.1 and 3.0.0rc11 imports from shimeji, or
is listed in LACKING with the reason.

The snapshots in tests/compat/data/ hold names only (made with
scripts/nameko-names from the released packages). A name counts as public
when nameko's module lists it in ``__all__``, defines it, or imports it from
nameko itself (code imports such names through that module too: shimeji
keeps them importable through `nameko._reexports`).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from nameko._reexports import REEXPORTS

DATA = Path(__file__).parent / "data"
SNAPSHOTS = ("nameko-2.14.1-names.json", "nameko-3.0.0rc11-names.json")

OWN_CLI = "shimeji's CLI is its own argparse program (SPEC 10); nameko's internals are not"
CLICK = "nameko 3's click-based CLI internals; shimeji's CLI is argparse with the same commands"
KOMBU_POLLING = "nameko 2.14's kombu polling internals of the standalone client; no equivalent"


def _each(reason: str, module: str, names: str) -> dict[str, str]:
    return {f"{module}:{name}": reason for name in names.split()}  # noqa: SIM905


# "module" for a whole module, "module:name" for one name
LACKING: dict[str, str] = {
    "nameko.cli.actions": OWN_CLI,
    "nameko.cli.code": OWN_CLI,
    "nameko.cli.commands": OWN_CLI,
    "nameko.cli.click_arguments": CLICK,
    "nameko.cli.click_options": CLICK,
    "nameko.cli.click_paramtypes": CLICK,
    "nameko.cli.utils": CLICK,
    "nameko.cli.utils.code": CLICK,
    "nameko.cli.utils.config": CLICK,
    "nameko.cli.utils.import_services": CLICK,
    **_each(
        CLICK,
        "nameko.cli",
        "CommandError ConfigurationError argument_services cli option_backdoor_port "
        "option_broker option_config_file option_define option_interface setup_config",
    ),
    **_each(
        "YAML loading lives in nameko._config_yaml (a safe loader)",
        "nameko.cli.main",
        "IMPLICIT_ENV_VAR_MATCHER RECURSIVE_ENV_VAR_MATCHER env_var_constructor "
        "setup_yaml_parser commands",
    ),
    **_each(
        OWN_CLI,
        "nameko.cli.run",
        "AMQP_URI_CONFIG_KEY MISSING_MODULE_TEMPLATE is_entrypoint is_type logger config",
    ),
    "nameko.cli.shell:Shell": "an IPython name nameko 2.14 imported; ShellRunner.ipython "
    "starts IPython with start_ipython",
    **_each(
        "pytest hooks and helpers of nameko's eventlet plugin; ours are in nameko.testing.pytest",
        "nameko.testing.pytest",
        "config parse_config_option pytest_configure pytest_sessionstart",
    ),
    **_each(
        "the reply-queue-expired check on reconnect (SPEC 12.4) is not built yet",
        "nameko.rpc",
        "ReplyQueueExpiredWithPendingReplies",
    ),
    "nameko.standalone.rpc:ReplyQueueExpiredWithPendingReplies": "as nameko.rpc's, not built yet",
    "nameko.web.server:HttpOnlyProtocol": "an eventlet.wsgi protocol class; the server is ours",
    "nameko.web.websocket:IDENTIFY_WEBSOCKET_RULES": "the hub's routing is internal (nameko._web)",
    **_each(
        KOMBU_POLLING,
        "nameko.standalone.rpc",
        "ConsumeEvent PollingQueueConsumer SingleThreadedReplyListener",
    ),
}


def snapshot_names() -> list[tuple[str, str]]:
    pairs = set()
    for snapshot in SNAPSHOTS:
        for module, names in json.loads((DATA / snapshot).read_text()).items():
            pairs.add((module, ""))
            pairs.update((module, name) for name in names)
    return sorted(pairs)


def shimeji_has(module: str, name: str) -> bool:
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError:
        return False
    return not name or hasattr(imported, name) or _is_submodule(module, name)


def _is_submodule(module: str, name: str) -> bool:
    try:
        importlib.import_module(f"{module}.{name}")
    except ModuleNotFoundError:
        return False
    return True


def listed(module: str, name: str) -> bool:
    return module in LACKING or (bool(name) and f"{module}:{name}" in LACKING)


@pytest.mark.parametrize(("module", "name"), snapshot_names(), ids=lambda v: v or "<module>")
def test_a_nameko_name_imports_or_is_listed_as_lacking(module, name):
    if listed(module, name):
        return  # the next test keeps the list honest
    assert shimeji_has(module, name), f"{module}.{name} is missing and not in LACKING"


@pytest.mark.parametrize("entry", sorted(LACKING))
def test_every_lacking_entry_is_still_lacking(entry):
    module, _, name = entry.partition(":")
    assert not shimeji_has(module, name), f"{entry} exists now: take it out of LACKING"


@pytest.mark.parametrize("module", sorted(REEXPORTS))
def test_reexported_names_are_importable_but_not_our_api(module):
    imported = importlib.import_module(module)
    for name in REEXPORTS[module]:
        assert getattr(imported, name) is not None
        assert name not in getattr(imported, "__all__", ())
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        imported.no_such_name  # noqa: B018


# Names nameko 2.14.1's modules hold because they import them from other
# packages (scripts/nameko-names --imported). werkzeug's are ours too (the same
# objects: plugins import ``Response`` from nameko.web.handlers and check
# ``isinstance`` against it); the others belong to what shimeji replaced.
IMPORTED = "nameko-2.14.1-imported.json"
FOREIGN_ORIGINS: dict[str, str] = {
    "eventlet": "no eventlet: shimeji runs on OS threads and asyncio",
    "greenlet": "no greenlets",
    "kombu": "shimeji's AMQP client is its own (pamqp); kombu objects would drive nothing",
    "amqp": "py-amqp's exceptions: shimeji's AMQP client is its own",
    "six": "Python 3 only",
    "mock": "the `mock` backport; unittest.mock is in the standard library",
    "requests": "helpers of nameko's management-API client; shimeji's testing.rabbit "
    "uses rabbitmqctl (HTTPError is kept: fixtures raise it)",
    "pkg_resources": "setuptools' deprecated API; the CLI reads importlib.metadata",
    "yaml": "the module object itself: import yaml",
    "wrapt": "the module object itself: import wrapt",
}


def imported_names() -> list[tuple[str, str, str]]:
    snapshot = json.loads((DATA / IMPORTED).read_text())
    return sorted((m, n, origin) for m, names in snapshot.items() for n, origin in names.items())


def resolve(origin: str) -> object:
    module, _, qualname = origin.partition(":")
    value: object = importlib.import_module(module)
    for part in filter(None, qualname.split(".")):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(("module", "name", "origin"), imported_names(), ids=str)
def test_a_name_nameko_imported_is_the_same_object_or_foreign(module, name, origin):
    top = origin.partition(".")[0].partition(":")[0]
    if top == "werkzeug":
        assert getattr(importlib.import_module(module), name) is resolve(origin)
    elif not shimeji_has(module, name):
        assert top in FOREIGN_ORIGINS, f"{module}.{name} (from {origin}) missing, no reason given"


def test_werkzeug_names_import_the_way_plugins_import_them():
    from werkzeug.exceptions import HTTPException as WerkzeugHTTPException

    from nameko.web.handlers import Response
    from nameko.web.server import HTTPException, Request

    assert Response(b"x", status=201).status_code == 201
    assert issubclass(HTTPException, Exception) and HTTPException is WerkzeugHTTPException
    assert Request.from_values("/p?q=1").args["q"] == "1"


def test_a_reexported_class_is_patchable_through_the_module(monkeypatch):
    import nameko.web.server

    class Wrapped:
        pass

    monkeypatch.setattr(nameko.web.server, "HTTPException", Wrapped)
    from nameko.web.server import HTTPException

    assert HTTPException is Wrapped
    monkeypatch.undo()
    from nameko.web.server import HTTPException

    assert HTTPException is not Wrapped
