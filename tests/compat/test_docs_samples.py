"""Every Python sample in the user docs runs.

Each page (README.md and docs/*.md) is one test: its ```python blocks are run
in order, in one namespace, as a reader would paste them into one file, so a
sample must carry its own imports. Samples that start services do it on the
in-memory broker (``AMQP_URI: memory://``) and stop them again. A block
right after the line ``<!-- sample: not run (why) -->`` is skipped and must
say why; blocks of other languages (console, yaml, text...) are not Python
and are not run. The page's own example folder, docs/examples/<page>/ when
there is one, is importable, as a reader's project folder would be.
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
NOT_RUN = re.compile(r"<!-- sample: not run \((?P<reason>[^)]*)\) -->\s*$")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip_reason: str | None


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        indent = match.group("indent")
        code = "\n".join(line.removeprefix(indent) for line in match.group("body").splitlines())
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group("lang"),
                code=code + "\n",
                skip_reason=marker.group("reason").strip() if marker else None,
            )
        )
    return found


def python_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang == "python"]


@pytest.fixture
def page_folder(monkeypatch, tmp_path):
    """The page's example folder importable, the cwd a scratch directory,
    and the modules its samples imported forgotten afterwards."""

    def use(page: Path) -> None:
        examples = DOCS / "examples" / page.stem
        if examples.is_dir():
            monkeypatch.syspath_prepend(str(examples))
        monkeypatch.chdir(tmp_path)

    before = set(sys.modules)
    yield use
    for name in set(sys.modules) - before:
        if not name.startswith(("nameko", "_pytest", "pytest")):
            del sys.modules[name]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_samples_of_a_page_run(page, page_folder):
    page_folder(page)
    threads_before = set(threading.enumerate())
    namespace: dict[str, object] = {"__name__": f"docs_sample_{page.stem}"}
    for block in python_blocks(page):
        if block.skip_reason is not None:
            assert block.skip_reason, f"{page.name}:{block.line}: a sample not run says why"
            continue
        where = f"{page.relative_to(ROOT)}:{block.line}"
        exec(compile(block.code, where, "exec"), namespace)  # noqa: S102 - the samples are ours
    leftover = [
        t for t in set(threading.enumerate()) - threads_before if not t.daemon and t.is_alive()
    ]
    assert not leftover, f"{page.name}: its samples left threads running: {leftover}"


def test_every_sample_not_run_gives_a_reason():
    for page in PAGES:
        text = page.read_text()
        for line in text.splitlines():
            if "sample: not run" in line:
                marker = NOT_RUN.search(line)
                assert marker and marker.group("reason").strip(), f"{page.name}: {line!r}"


def test_the_block_finder_sees_fences_languages_and_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- sample: not run (needs Django) -->\n"
        "```python\nimport django\n```\n\n```console\n$ nameko run\n```\n"
        "- a list item:\n\n  ```python\n  y = 2\n  ```\n"
    )
    found = blocks(page)
    assert [(b.lang, b.code, b.skip_reason) for b in found] == [
        ("python", "x = 1\n", None),
        ("python", "import django\n", "needs Django"),
        ("console", "$ nameko run\n", None),
        ("python", "y = 2\n", None),
    ]


def test_the_docs_have_samples():
    counted = {page.name: len(python_blocks(page)) for page in PAGES}
    assert sum(counted.values()) >= 30, counted
