"""``nameko shell``: a Python console with ``n`` to call services.

``n.rpc.service.method(...)`` (a started `ClusterRpcProxy`), ``n.rpc['a-b']``,
``n.dispatch_event(service, event_type, data)``, ``n.config``,
``n.disconnect()``. Without a terminal it reads statements from stdin and
stops at the first error (exit status 1), so it can be scripted.
"""

from __future__ import annotations

import code
import os
import sys
import types
from typing import Any

from nameko._urls import sanitize_url
from nameko.cli.config import add_config_options, setup_config
from nameko.cli.main import DEFAULT_BROKER

NAME = "shell"
HELP = "Interactive Python shell connected to the services"


def init_parser(parser: Any) -> None:
    add_config_options(parser, DEFAULT_BROKER)
    parser.add_argument(
        "--interface", choices=["bpython", "ipython", "plain"], help="preferred shell"
    )
    parser.set_defaults(main=main)


def make_helper(config: dict[str, Any]) -> types.ModuleType:
    from nameko.standalone.events import event_dispatcher
    from nameko.standalone.rpc import ClusterRpcProxy

    helper = types.ModuleType("nameko", "Use n.rpc.<service>.<method>(...) to call services")
    client = ClusterRpcProxy(config)
    helper.rpc = client.start()
    helper.dispatch_event = event_dispatcher(config)
    helper.config = config
    helper.disconnect = client.stop
    return helper


class _ScriptConsole(code.InteractiveConsole):
    """Stdin is not a terminal: the first failing statement ends the shell."""

    def showtraceback(self) -> None:
        super().showtraceback()
        sys.exit(1)

    def showsyntaxerror(self, filename: str | None = None, **kwargs: Any) -> None:
        super().showsyntaxerror(filename)
        sys.exit(1)


def main(args: Any) -> None:
    config = setup_config(args)
    banner = (
        f"Nameko Python {sys.version} shell on {sys.platform}\n"
        f"Broker: {sanitize_url(config['AMQP_URI'])}" + (" (from --config)" if args.config else "")
    )
    helper = make_helper(config)
    namespace = {"n": helper}
    try:
        if sys.stdin.isatty():
            _interactive(namespace, banner, args.interface)
        else:
            _ScriptConsole(namespace).interact(banner, exitmsg="")
    finally:
        helper.disconnect()


def _interactive(namespace: dict[str, Any], banner: str, preferred: str | None) -> None:
    startup = os.environ.get("PYTHONSTARTUP")
    if startup and os.path.isfile(startup):
        with open(startup) as f:
            exec(compile(f.read(), startup, "exec"), namespace)
    for name in [preferred] if preferred else ["bpython", "ipython", "plain"]:
        if name == "bpython" and _try(
            lambda: __import__("bpython").embed(namespace, banner=banner)
        ):
            return
        if name == "ipython" and _try(lambda: _ipython(namespace, banner)):
            return
    code.interact(banner, local=namespace)


def _ipython(namespace: dict[str, Any], banner: str) -> None:
    from IPython import start_ipython
    from traitlets.config import Config

    config = Config()
    config.TerminalInteractiveShell.banner2 = banner
    start_ipython(argv=[], user_ns=namespace, config=config)


def _try(start: Any) -> bool:
    try:
        start()
    except ImportError:
        return False
    return True
