"""What ``nameko run`` loads for a service that uses only RPC.

Every module a process imports costs memory for its whole life and time at
start-up, so the run path loads what the service uses: no asyncio without an
``async def`` entrypoint, no backdoor console without ``--backdoor-port``, no
other subcommand's modules, no email package, no pydoc, no
importlib.metadata. Checked in a fresh interpreter, since this one has
imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# loaded by an RPC-only service before this change, each for one feature it does not use
UNUSED = (
    "asyncio",  # async def workers and proxies
    "code",  # the backdoor console
    "ssl",  # amqps:// only
    "email",  # one Date header of the ops endpoint
    "importlib.metadata",  # shimeji's version
    "pydoc",  # dotted paths in the config
    "logging.config",  # a LOGGING section in the config
    "nameko.cli.shell",  # other subcommands
    "nameko.cli.dashboard",
    "nameko.cli.dead_letters",
    "nameko.cli.cluster",
    "nameko._aio.workers",
)

PROGRAM = textwrap.dedent(
    """
    import json, sys
    from nameko.cli.main import setup_parser
    from nameko.rpc import rpc
    from nameko._runtime.container import ServiceContainer
    import nameko._broker.rabbit, nameko._presence.feature, nameko._ops.feature
    from nameko._presence.announcer import shimeji_version

    class Echo:
        name = "echo"

        @rpc
        def echo(self, value):
            return value

    setup_parser("run").parse_args(["run", "svc"])
    from nameko.cli.config import setup_logging

    setup_logging({})
    ServiceContainer(Echo, {"AMQP_URI": "memory://"})
    from nameko._amqp.driver import Driver
    from nameko._amqp.uri import parse_uri

    Driver(parse_uri("amqp://guest:guest@127.0.0.1:5672/"), None)  # never started
    shimeji_version()
    print(json.dumps(sorted(sys.modules)))
    """
)


def loaded_modules(program: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=os.environ, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_an_rpc_service_loads_nothing_it_does_not_use():
    loaded = loaded_modules(PROGRAM)
    assert sorted(name for name in UNUSED if name in loaded) == []


def test_an_async_service_still_gets_its_event_loop():
    program = PROGRAM.replace("def echo(self, value)", "async def echo(self, value)")
    assert {"asyncio", "nameko._aio.workers"} <= loaded_modules(program)


def test_a_tls_connection_still_gets_ssl():
    program = PROGRAM.replace('"amqp://guest', '"amqps://guest')
    assert "ssl" in loaded_modules(program)


def test_every_subcommand_is_still_listed_and_parsed():
    from importlib import import_module

    from nameko.cli.main import COMMANDS, setup_parser

    listing = " ".join(setup_parser().format_help().split())
    for module_name in COMMANDS.values():
        help_text = " ".join(import_module(f"nameko.cli.{module_name}").HELP.split())
        assert help_text in listing
    args = setup_parser("show-config").parse_args(["show-config"])
    assert args.command == "show-config"
