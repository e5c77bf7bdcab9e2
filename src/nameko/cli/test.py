"""``nameko test``: run pytest (kept for nameko 2.x compatibility)."""

from __future__ import annotations

from typing import Any

NAME = "test"
HELP = "Run pytest with the nameko plugin (extra arguments go to pytest)"


def init_parser(parser: Any) -> None:
    parser.set_defaults(main=main)


def main(args: Any) -> int:
    import pytest

    return int(pytest.main(list(args.extra)))
