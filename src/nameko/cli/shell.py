"""``nameko shell``: a Python console with ``n`` to call services.

``n.rpc.service.method(...)`` (a started `ClusterRpcProxy` seen through
`nameko.cli._shell.ShellRpc`: calls time out after ``--timeout`` seconds,
tab completion knows the services and methods the running instances
announce (`nameko._presence`), those of this session and the management
API's services, an unknown service suggests close names), ``n.rpc['a-b']``,
``n.dispatch_event(service, event_type, data)``, ``n.config``,
``n.disconnect()``. Without a terminal it reads statements from stdin and
stops at the first error (exit status 1), so it can be scripted.
"""

from __future__ import annotations

import code
import os
import sys
import traceback
import types
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from nameko._global_config import config
from nameko._rpc.dependency import RPC_TIMEOUT_CONFIG_KEY
from nameko._urls import first_url, sanitize_url
from nameko.cli._shell import (
    Announced,
    Catalogue,
    NoReply,
    ServiceStopped,
    ShellMethodNotFound,
    ShellRpc,
    ShellUnknownService,
    rpc_services_from_management_api,
)
from nameko.cli.config import add_config_options, setup_config
from nameko.cli.main import DEFAULT_BROKER
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcClient, ClusterRpcProxy

__all__ = [
    "AMQP_URI_CONFIG_KEY",
    "SHELLS",
    "ClusterRpcClient",
    "ClusterRpcProxy",
    "ShellRunner",
    "config",
    "event_dispatcher",
    "interact",
    "main",
    "make_nameko_helper",
]

NAME = "shell"
HELP = "Interactive Python shell connected to the services"
SHELLS = ["bpython", "ipython", "plain"]
DEFAULT_TIMEOUT = 30.0
interact = code.interact
#: errors the shell explains in one line instead of a traceback
SHELL_ERRORS = (NoReply, ServiceStopped, ShellMethodNotFound, ShellUnknownService)


def init_parser(parser: Any) -> None:
    add_config_options(parser, DEFAULT_BROKER)
    parser.add_argument("--interface", choices=SHELLS, help="preferred shell")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help=f"how long n.rpc calls wait for a reply (default: the config's "
        f"{RPC_TIMEOUT_CONFIG_KEY}, else {DEFAULT_TIMEOUT:g}; 0 waits for ever)",
    )
    parser.add_argument(
        "--management-api",
        metavar="URL",
        help="RabbitMQ management API to list services from (default: the broker's "
        "host, port 15672; ignored when it does not answer)",
    )
    parser.set_defaults(main=main)


class NamekoHelper(types.ModuleType):
    """The ``n`` of the shell (a module, as in nameko)."""

    rpc: ShellRpc
    dispatch_event: Callable[[str, str, Any], None]
    config: Mapping[str, Any]
    disconnect: Callable[[], None]


def make_nameko_helper(
    config: Mapping[str, Any], timeout: float | None = None, management_api: str | None = None
) -> NamekoHelper:
    """The ``n`` of the shell: ``rpc``, ``dispatch_event``, ``config``, ``disconnect``."""
    helper = NamekoHelper("nameko", "Use n.rpc.<service>.<method>(...) to call services")
    client = ClusterRpcProxy(config, timeout=timeout)
    amqp_uri = first_url(config[AMQP_URI_CONFIG_KEY])  # the management API of the first node
    cluster = client.start()
    roster = _listen_to_announcements(config)
    announced = Announced(roster) if roster is not None else None
    catalogue = Catalogue(
        partial(rpc_services_from_management_api, amqp_uri, management_api),
        announced,
        announced.stopped if announced is not None else None,
    )
    helper.rpc = ShellRpc(cluster, catalogue, timeout)
    helper.dispatch_event = event_dispatcher(config)
    helper.config = config

    def disconnect() -> None:
        client.stop()
        if roster is not None:
            roster.close()

    helper.disconnect = disconnect
    return helper


def _listen_to_announcements(config: Mapping[str, Any]) -> Any:
    """A started presence `Roster`, or None: completion is a help, never a reason to fail."""
    from nameko._presence.roster import Roster

    try:
        return Roster(config).start()
    except Exception:
        return None


def call_timeout(args: Any, config: Mapping[str, Any]) -> float | None:
    """``--timeout``, else the config's RPC_TIMEOUT, else 30 s; 0 means none."""
    timeout = args.timeout
    if timeout is None:
        timeout = config.get(RPC_TIMEOUT_CONFIG_KEY) or DEFAULT_TIMEOUT
    return float(timeout) or None


def main(args: Any) -> None:
    config = setup_config(args)
    timeout = call_timeout(args, config)
    waits = f"calls wait {timeout:g} s for a reply" if timeout else "calls wait for ever"
    banner = (
        f"Nameko Python {sys.version} shell on {sys.platform}\n"
        f"Broker: {sanitize_url(config[AMQP_URI_CONFIG_KEY])}"
        + (" (from --config)" if args.config else "")
        + f"\nn.rpc.<service>.<method>(...): {waits} (--timeout)"
    )
    helper = make_nameko_helper(config, timeout, args.management_api)
    namespace = {"n": helper}
    try:
        if sys.stdin.isatty():
            ShellRunner(banner, namespace).start_shell(args.interface)
        else:
            _ScriptConsole(namespace).interact(banner, exitmsg="")
    finally:
        helper.disconnect()


#: the shell's errors are printed under the name a script would catch
_PUBLIC_NAMES = (
    (NoReply, "RpcTimeout"),
    (ShellMethodNotFound, "MethodNotFound"),
    (ShellUnknownService, "UnknownService"),
)


def _one_line(exc: BaseException) -> str:
    public = next(name for cls, name in _PUBLIC_NAMES if isinstance(exc, cls))
    return f"{public}: {exc}\n"


_OUR_FILES = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _without_our_frames(shown: traceback.TracebackException, skip: int = 0) -> None:
    """Drop the framework's frames (the proxy, the reply's decoding): what
    is left is the user's own frames and the exception's line, which holds
    all the remote error says."""
    frames = list(shown.stack)[skip:]
    shown.stack = traceback.StackSummary.from_list(
        [frame for frame in frames if not os.path.abspath(frame.filename).startswith(_OUR_FILES)]
    )
    for linked in (shown.__cause__, shown.__context__):
        if linked is not None:
            _without_our_frames(linked)


class _Console(code.InteractiveConsole):
    """The plain console: the shell's own errors in one line, not a traceback,
    and other errors without the framework's frames (`pdb.pm()` still sees
    them all)."""

    def showtraceback(self) -> None:
        exc_type, exc, tb = sys.exc_info()
        if isinstance(exc, SHELL_ERRORS):
            self.write(_one_line(exc))
            return
        if exc_type is None or exc is None:
            return
        sys.last_type, sys.last_value, sys.last_traceback = exc_type, exc, tb
        shown = traceback.TracebackException(exc_type, exc, tb)
        _without_our_frames(shown, skip=1)  # and the console's own frame, as Python does
        self.write("".join(shown.format()))


class _ScriptConsole(_Console):
    """Stdin is not a terminal: no prompts in the output, and the first failing
    statement ends the shell."""

    def raw_input(self, prompt: str = "") -> str:
        return input()

    def showtraceback(self) -> None:
        super().showtraceback()
        sys.exit(1)

    def showsyntaxerror(self, filename: str | None = None, **kwargs: Any) -> None:
        super().showsyntaxerror(filename)
        sys.exit(1)


class ShellRunner:
    """Starts the preferred console: bpython, IPython or the plain one."""

    def __init__(self, banner: str, context: dict[str, Any]) -> None:
        self.banner, self.context = banner, context

    def start_shell(self, name: str | None = None) -> None:
        self._run_startup_file()
        for candidate in [name] if name else SHELLS:
            try:
                getattr(self, candidate or "plain")()
                return
            except ImportError:
                continue
        self.plain()

    def bpython(self) -> None:
        import bpython

        bpython.embed(self.context, banner=self.banner)

    def ipython(self) -> None:
        from IPython import start_ipython
        from traitlets.config import Config

        ipython_config = Config()
        ipython_config.TerminalInteractiveShell.banner2 = self.banner
        start_ipython(argv=[], user_ns=self.context, config=ipython_config)

    def plain(self) -> None:
        _enable_completion(self.context)
        _Console(self.context).interact(self.banner, exitmsg="")

    def _run_startup_file(self) -> None:
        startup = os.environ.get("PYTHONSTARTUP")
        if startup and os.path.isfile(startup):
            with open(startup) as f:
                exec(compile(f.read(), startup, "exec"), self.context)


def _enable_completion(namespace: dict[str, Any]) -> None:
    """Tab completion in the plain console (``n.rpc.<tab>`` reads `dir()`)."""
    try:
        import readline
        import rlcompleter
    except ImportError:  # e.g. Windows without pyreadline
        return
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    readline.parse_and_bind("tab: complete")
