"""Refuse to run services under eventlet's or gevent's monkey-patching.

How it works: nameko 2.x ran services on eventlet and patched the standard
library for them, so code written for it often calls
``eventlet.monkey_patch()`` (or gevent's ``patch_all()``) at the top of a
service module. shimeji runs workers, the AMQP I/O and the signal handling
on OS threads; once ``threading`` is patched those threads are greenlets on
one hub, and the process serves by luck, then dies on SIGTERM (eventlet:
"Cannot switch to MAINLOOP from MAINLOOP", exit 1) or hangs (gevent).

`nameko run` imports the service modules one by one through
`import_services_unpatched`: after each import it asks the libraries
themselves whether they patched anything, only if they are already in
``sys.modules`` (it never imports them). Patched threads end the command
before anything starts, in one line naming the module, with exit status 2.
Patching that leaves threads alone (``socket``, ``time``, ``select``,
``os``) works on OS threads and gains nothing: one warning line, and the
services run. The pytest plugin asks the same question once the tests are
collected (`refuse_patched_threads`): nameko 2.x's plugin told users to
patch in ``conftest.py``, and such a suite would otherwise hang in its first
test that starts a service.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from nameko.exceptions import CommandError

__all__ = [
    "GreenThreadsRefused",
    "Patching",
    "current_patching",
    "import_services_unpatched",
    "refuse_patched_threads",
]

_log = logging.getLogger("nameko.cli.run")

GUIDE = "see docs/migration.md"
# the names each library's own "is this patched?" function takes
_EVENTLET_MODULES = ("thread", "socket", "select", "time", "os", "subprocess", "builtins")
_GEVENT_MODULES = ("threading", "thread", "socket", "select", "time", "os", "ssl", "subprocess")
_THREADS = {"thread", "threading"}
_LIBRARY_PACKAGES = ("eventlet", "gevent", "greenlet", "dns", "zope")


class GreenThreadsRefused(CommandError):
    """Threads are patched: the services can't run. A status of its own (2),
    so a supervisor can tell it from a crash: restarting will not help."""

    exit_status = 2


@dataclass(frozen=True)
class Patching:
    library: str  # "eventlet" or "gevent"
    modules: tuple[str, ...]  # what it patched, in the library's own names

    @property
    def threads(self) -> bool:
        return bool(_THREADS & set(self.modules))

    @property
    def call(self) -> str:
        if self.library == "eventlet":
            return "eventlet.monkey_patch()"
        # patch_all() patches sockets too; patch_thread() alone does not
        return (
            "gevent.monkey.patch_all()" if "socket" in self.modules else "gevent's patch_thread()"
        )


def current_patching() -> list[Patching]:
    """What eventlet and gevent have patched in this process (never imports them)."""
    found = []
    eventlet_patcher = sys.modules.get("eventlet.patcher") if "eventlet" in sys.modules else None
    if eventlet_patcher is not None:
        patched = _ask(eventlet_patcher.is_monkey_patched, _EVENTLET_MODULES)
        if patched:
            found.append(Patching("eventlet", patched))
    gevent_monkey = sys.modules.get("gevent.monkey") if "gevent" in sys.modules else None
    if gevent_monkey is not None:
        patched = _ask(gevent_monkey.is_module_patched, _GEVENT_MODULES)
        if patched:
            found.append(Patching("gevent", patched))
    return found


def _ask(is_patched: Callable[[str], Any], names: tuple[str, ...]) -> tuple[str, ...]:
    patched = []
    for name in names:
        try:
            if is_patched(name):
                patched.append(name)
        except Exception:  # an older release that doesn't know the name
            continue
    return tuple(patched)


def import_services_unpatched(
    paths: list[str], import_services: Callable[[str], list[type]]
) -> list[type]:
    """``import_services(path)`` for each path, then refuse (or warn about)
    patching, naming the module whose import applied it."""
    services: list[type] = []
    seen = set(current_patching())
    for found in seen:
        _report(found, "before the service modules were imported (a sitecustomize or wrapper?)")
    for path in paths:
        known = set(sys.modules)
        services += import_services(path)
        for found in current_patching():
            if found not in seen:  # applied, or extended, by this module's import
                seen.add(found)
                _report(found, _culprit(path, set(sys.modules) - known))
    return services


def _culprit(path: str, new_modules: set[str]) -> str:
    """ "by module 'x'" when one newly imported module holds the patching API;
    otherwise the service module whose import it happened in."""
    suspects = _suspects(new_modules)
    if len(suspects) == 1:
        return f"by module '{suspects[0]}'"
    return f"while importing '{path.partition(':')[0]}'"


def refuse_patched_threads() -> str | None:
    """The one-line refusal when threads are patched now, else None; for a
    process that imported the culprit among everything else (a pytest run)."""
    for found in current_patching():
        if found.threads:
            suspects = _suspects(set(sys.modules))
            culprit = f"by module '{suspects[0]}'" if len(suspects) == 1 else "in this process"
            return _refusal(found, culprit)
    return None


def _suspects(names: set[str]) -> list[str]:
    """The modules among ``names`` (not the libraries' own) that hold
    ``eventlet``, ``monkey_patch``, ``gevent.monkey`` or ``patch_all``."""
    patchers = [id(obj) for obj in _patcher_objects()]
    return sorted(
        name
        for name in names
        if name.partition(".")[0] not in _LIBRARY_PACKAGES
        and _holds_any(sys.modules.get(name), patchers)
    )


def _holds_any(module: ModuleType | None, ids: list[int]) -> bool:
    namespace = getattr(module, "__dict__", None)  # sys.modules may hold odd objects
    if not isinstance(namespace, dict):
        return False
    return any(id(value) in ids for value in list(namespace.values()))


def _patcher_objects() -> list[Any]:
    objects: list[Any] = []
    for name, attrs in (
        ("eventlet", ("monkey_patch",)),
        ("eventlet.patcher", ("monkey_patch",)),
        ("gevent.monkey", ("patch_all", "patch_thread")),
    ):
        module = sys.modules.get(name)
        if module is not None:
            objects.append(module)
            objects.extend(getattr(module, attr, None) for attr in attrs)
    return [obj for obj in objects if obj is not None]


def _report(found: Patching, culprit: str) -> None:
    if found.threads:
        raise GreenThreadsRefused(_refusal(found, culprit))
    _log.warning(
        "%s has patched %s (%s); shimeji runs services on OS threads and gains nothing from it: "
        "remove the call (%s)",
        found.library,
        ", ".join(found.modules),
        culprit,
        GUIDE,
    )


def _refusal(found: Patching, culprit: str) -> str:
    return (
        f"{found.call} was called {culprit}; shimeji runs services on OS threads and "
        f"cannot run with {found.library}'s patching: remove the call ({GUIDE})"
    )
