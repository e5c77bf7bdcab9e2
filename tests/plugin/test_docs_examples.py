"""docs/testing.md cannot rot: its examples are real test files under
docs/examples/testing, run here in a subprocess pytest, and every code block
of the guide must still be found, verbatim, in one of those files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples" / "testing"
NEEDS_RABBIT = ["test_rabbit.py"]


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.py"))


def test_every_code_block_of_the_guide_is_in_an_example_file():
    guide = (DOCS / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    sources = [path.read_text() for path in example_files()]
    assert len(blocks) >= 5
    for block in blocks:
        assert any(block in source for source in sources), f"not in the examples:\n{block}"


def test_the_guide_shows_each_tool_in_an_example():
    guide = (DOCS / "testing.md").read_text()
    code = "".join(re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL))
    for name in (
        "worker_factory", "entrypoint_hook", "entrypoint_waiter", "container_factory",
        "runner_factory", "rabbit_config", "memory_config", "web_session", "config.patch",
    ):  # fmt: skip
        assert name in code, name


def run_examples(run_inner, pytester, names):
    for path in example_files():
        if path.name in names or not path.name.startswith("test_"):
            pytester.path.joinpath(path.name).write_text(path.read_text())
    return run_inner(*names)


def test_examples_without_rabbitmq(run_inner, pytester):
    names = [p.name for p in example_files() if p.name.startswith("test_")]
    result = run_examples(run_inner, pytester, [n for n in names if n not in NEEDS_RABBIT])
    result.assert_outcomes(passed=10)


@pytest.mark.rabbit
def test_examples_on_rabbitmq(run_inner, pytester):
    run_examples(run_inner, pytester, NEEDS_RABBIT).assert_outcomes(passed=2)
