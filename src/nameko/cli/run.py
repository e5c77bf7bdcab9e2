"""``nameko run``: discover services in modules and run them until stopped.

Stopping: SIGTERM or Ctrl-C stops gracefully (consumers cancelled, in-flight
workers finish, replies sent and acked) and exits 0; a second signal kills
the services (unacked messages go back to their queues) and exits at once
with status 1. ``SHUTDOWN_TIMEOUT`` (seconds, optional) bounds the graceful
stop: leftovers are then killed and requeued, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import logging
import os
import signal
import sys
import traceback
from importlib import import_module
from typing import TYPE_CHECKING, Any

from nameko._concurrency import Event, start_thread
from nameko._ops.address import OPS_ADDRESS_CONFIG_KEY, parse_address
from nameko._patching import import_services_unpatched
from nameko._redaction import redact_text
from nameko.cli._features import close_features, start_features
from nameko.cli._reload import Reloader
from nameko.cli._supervisor import process_index, supervise, watch_supervisor
from nameko.cli.config import add_config_options, setup_config, setup_logging
from nameko.cli.main import DEFAULT_BROKER
from nameko.exceptions import CommandError
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.runners import ServiceRunner

if TYPE_CHECKING:  # the backdoor's modules (code, socketserver...) load only with --backdoor-port
    from nameko.cli._backdoor import Backdoor

NAME = "run"
HELP = "Run nameko services"
SHUTDOWN_TIMEOUT_CONFIG_KEY = "SHUTDOWN_TIMEOUT"
PROCESSES_CONFIG_KEY = "PROCESSES"
WEB_REUSE_PORT_CONFIG_KEY = "WEB_REUSE_PORT"

_log = logging.getLogger("nameko.cli.run")


def init_parser(parser: Any) -> None:
    parser.add_argument(
        "services", nargs="+", metavar="module[:ServiceClass]", help="services to run"
    )
    add_config_options(parser, DEFAULT_BROKER)
    parser.add_argument(
        "--backdoor-port",
        metavar="[HOST:]PORT",
        help="serve a Python console with `runner` in scope on this port (loopback only "
        "unless HOST is given) to clients that send its token (kept in a file only this "
        "user can read); connect with `nameko backdoor [HOST:]PORT`",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart the services (gracefully) when a Python file under the current "
        "directory or a --reload-dir changes; a file that does not compile is reported and "
        "the running code stays",
    )
    parser.add_argument(
        "--reload-dir", action="append", default=[], metavar="DIR", help="also watch DIR"
    )
    parser.add_argument(
        "--processes",
        type=_positive,
        metavar="N",
        help=f"run the services in N supervised processes, each with its own connection and "
        f"worker pool (default: the config's {PROCESSES_CONFIG_KEY}, else 1); a process "
        "that dies is restarted, SIGTERM stops them all gracefully",
    )
    parser.add_argument(
        "--ops-address",
        metavar="[HOST:]PORT",
        help=f"serve /healthz, /readyz and Prometheus /metrics on this address (loopback "
        f"unless HOST is given; 0.0.0.0 for Kubernetes probes); overrides the config's "
        f"{OPS_ADDRESS_CONFIG_KEY}. With --processes N, process i serves PORT+i",
    )
    parser.set_defaults(main=main)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def process_count(args: Any, config: dict[str, Any]) -> int:
    """``--processes``, else the config's PROCESSES, else 1 (always 1 in a child)."""
    if process_index() is not None:
        return 1
    count = args.processes or config.get(PROCESSES_CONFIG_KEY) or 1
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise CommandError(f"{PROCESSES_CONFIG_KEY} must be a whole number of at least 1")
    return count


def main(args: Any) -> int:
    backdoor = _backdoor_address(args.backdoor_port)
    if "." not in sys.path:
        sys.path.insert(0, ".")
    config = setup_config(args)
    if getattr(args, "ops_address", None):
        config[OPS_ADDRESS_CONFIG_KEY] = args.ops_address  # the flag wins
    if config.get(OPS_ADDRESS_CONFIG_KEY) not in (None, ""):
        parse_address(config[OPS_ADDRESS_CONFIG_KEY])  # a typo fails now, not in N children
    setup_logging(config)
    services = import_services_unpatched(args.services, import_services)  # refuses eventlet
    count = process_count(args, config)
    if count > 1:
        return supervise(count)  # the children import and run the services
    index = process_index()
    if index is not None:
        config.setdefault(WEB_REUSE_PORT_CONFIG_KEY, True)  # the processes share the address
        if backdoor is not None and backdoor[1]:
            backdoor = (backdoor[0], backdoor[1] + index)
        _own_ops_port(config, index)
    reloader = None
    if args.reload or args.reload_dir:
        reloader = Reloader([".", *args.reload_dir], on_change=lambda: None)
    status = run(services, config, backdoor, reloader)
    if reloader is not None and reloader.restart_requested:
        _log.info("restarting: %s", redact_text(" ".join(sys.orig_argv)))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, sys.orig_argv)  # the same command, with the new code
    return status


def _own_ops_port(config: dict[str, Any], index: int) -> None:
    """Child ``index`` of ``--processes`` serves PORT+index (port 0: any free
    port): each process is its own scrape target and probe (D26)."""
    address = config.get(OPS_ADDRESS_CONFIG_KEY)
    if address is None or address == "":
        return
    host, port = parse_address(address)
    if port:
        config[OPS_ADDRESS_CONFIG_KEY] = f"[{host}]:{port + index}"


def _backdoor_address(option: str | None) -> tuple[str, int] | None:
    if option is None:
        return None
    from nameko.cli._backdoor import parse_backdoor_address

    try:
        host, port, host_given = parse_backdoor_address(option)
    except ValueError as exc:
        raise CommandError(f"--backdoor-port: {exc}") from None
    if host_given and host not in ("127.0.0.1", "localhost", "::1"):
        _log.warning(
            "the backdoor on %s:%s can be reached from other machines: whoever has its "
            "token can run any Python code",
            host,
            port,
        )
    return host, port


def import_services(path: str) -> list[type]:
    module_name, _, class_name = path.partition(":")
    if module_name.endswith(".py") and os.path.exists(module_name):
        raise CommandError(
            f"Failed to find service, did you mean '{module_name[:-3].replace('/', '.')}'?"
        )
    module = _import(module_name)
    if class_name:
        try:
            cls = getattr(module, class_name)
        except AttributeError:
            raise CommandError(_no_such_class(module, module_name, class_name)) from None
        if not isinstance(cls, type):
            raise CommandError("Service must be a class.")
        return [cls]
    found = [
        cls for _, cls in inspect.getmembers(module, inspect.isclass) if _looks_like_service(cls)
    ]
    if not found:
        raise CommandError(
            f"Failed to find anything that looks like a service in module '{module_name}'"
        )
    return _without_imported_bases(found, module.__name__)


def _without_imported_bases(found: list[type], module_name: str) -> list[type]:
    """Drop a class imported into the module only to be subclassed there.

    Base-class kits (``from kit import Service; class Mine(Service)``) put
    their base, entrypoints and all, in the module's namespace; running it
    too would start a second service that serves the same routes and
    queues. A class defined in the module, or an imported one that nothing
    here extends (a module that gathers services to run), still runs, and
    ``module:Class`` still runs exactly that class.
    """
    defined_here = [cls for cls in found if cls.__module__ == module_name]
    kept = []
    for cls in found:
        subclasses = [
            other.__qualname__
            for other in defined_here
            if other is not cls and issubclass(other, cls)
        ]
        if cls.__module__ != module_name and subclasses:
            _log.info(
                "not running %s.%s: a base class of %s",
                cls.__module__,
                cls.__qualname__,
                ", ".join(subclasses),
            )
            continue
        kept.append(cls)
    return kept


def _no_such_class(module: Any, module_name: str, class_name: str) -> str:
    """nameko's message, and the service classes the module does have."""
    text = f"Failed to find service class '{class_name}' in module '{module_name}'"
    there = sorted(
        name
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if _looks_like_service(cls)
    )
    if not there:
        return f"{text}: it has no class with entrypoints"
    close = difflib.get_close_matches(class_name, there, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{text}: it has {', '.join(there)}{hint}"


def _import(module_name: str) -> Any:
    try:
        return import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CommandError(str(exc)) from None
        raise  # an import inside the module failed: show the traceback
    except SyntaxError as exc:
        # what Python prints for a script: file, line, the code and a caret;
        # the frames of this command and of importlib say nothing more
        block = "".join(traceback.format_exception_only(exc)).rstrip()
        raise CommandError(f"cannot import {module_name!r}:\n{block}") from None


def _looks_like_service(cls: type) -> bool:
    return any(hasattr(value, ENTRYPOINT_EXTENSIONS_ATTR) for _, value in inspect.getmembers(cls))


class _ForcedExit(Exception):
    pass


class _Signals:
    """First SIGTERM/SIGINT: graceful stop in the background. Second: force."""

    def __init__(self, runner: ServiceRunner, shutdown_timeout: float | None) -> None:
        self.runner = runner
        self.shutdown_timeout = shutdown_timeout
        self.received = 0
        self.stopped = Event()
        self.timed_out = False  # the graceful stop overran SHUTDOWN_TIMEOUT

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum: int, frame: Any) -> None:
        self.received += 1
        if signum == signal.SIGINT:
            print(file=sys.stderr)  # keep ^C on its own line
        if self.received > 1:
            raise _ForcedExit(signal.Signals(signum).name)
        _log.info(
            "%s received: stopping (send it again to exit at once)", signal.Signals(signum).name
        )
        start_thread(self._stop, "graceful-stop")

    def restart(self) -> None:
        """A graceful stop that `main` follows with a restart (``--reload``)."""
        self.stop("stopping for the reload: in-flight work finishes first")

    def stop(self, why: str = "") -> None:
        """A graceful stop for a reason other than a signal."""
        if why:
            _log.info("%s", why)
        start_thread(self._stop, "graceful-stop")

    def _stop(self) -> None:
        start_thread(self._deadline, "shutdown-deadline")
        self.runner.stop()
        self.stopped.set()

    def _deadline(self) -> None:
        if self.shutdown_timeout is not None and not self.stopped.wait(self.shutdown_timeout):
            self.timed_out = True
            _log.warning(
                "graceful stop took over %ss: killing, unfinished messages are requeued",
                self.shutdown_timeout,
            )
            self.runner.kill()


def run(
    services: list[type],
    config: dict[str, Any],
    backdoor: tuple[str, int] | None = None,
    reloader: Reloader | None = None,
) -> int:
    runner = ServiceRunner(config)
    for cls in services:
        runner.add_service(cls)
    signals = _Signals(runner, config.get(SHUTDOWN_TIMEOUT_CONFIG_KEY))
    signals.install()
    door = _open_backdoor(runner, *backdoor) if backdoor is not None else None
    features = start_features(runner, config)
    try:
        runner.start()
        if process_index() is not None:  # a child of --processes
            start_thread(
                lambda: watch_supervisor(signals.stop, signals.stopped.wait),
                "supervisor-watch",
            )
        if reloader is not None:
            reloader.on_change = signals.restart
            reloader.start()
        runner.wait()
    except _ForcedExit as forced:
        _log.warning("%s received again: killing services", forced)
        killer = start_thread(runner.kill, "kill")
        killer.join(5)
        os._exit(1)  # at once, whatever threads are still running
    finally:
        close_features(features)
        if door is not None:
            door.close()
        if reloader is not None:
            reloader.stop()
    return 1 if signals.timed_out else 0  # supervisors should see unfinished work


def _open_backdoor(runner: ServiceRunner, host: str, port: int) -> Backdoor:
    from nameko.cli._backdoor import Backdoor
    from nameko.cli._backdoor_auth import secret_values

    try:
        door = Backdoor(host, port, {"runner": runner}, hidden=secret_values(runner.config))
    except OSError as exc:
        raise CommandError(
            f"cannot open the backdoor on {host}:{port}: {exc.strerror or exc}"
        ) from None
    bound_host, bound_port = door.address
    print(  # the token's file, never the token
        f"backdoor on {bound_host}:{bound_port}: nameko backdoor {bound_host}:{bound_port} "
        f"(token in {door.token_file})",
        flush=True,
    )
    return door


def setup_backdoor(runner: ServiceRunner, backdoor_port: int | str) -> Backdoor:
    """nameko's name: open the backdoor for ``runner`` on ``[host:]port``."""
    address = _backdoor_address(str(backdoor_port))
    assert address is not None
    return _open_backdoor(runner, *address)


import_service = import_services  # nameko's name for it
