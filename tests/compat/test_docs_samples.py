"""Every Python sample in the user docs runs.

Each page (README.md and docs/*.md) is one test, in a process of its own: its ```python blocks are run
in order, in one namespace, as a reader would paste them into one file, so a
sample must carry its own imports. Samples that start services do it on the
in-memory broker (``AMQP_URI: memory://``) and stop them again. A block
right after the line ``<!-- sample: not run (why) -->`` is skipped and must
say why; blocks of other languages (console, yaml, text...) are not Python
and are not run.

A block right after ``<!-- sample: file NAME -->`` is a file the reader
saves (``shop.py``, ``config.yaml``): it is written to the page's scratch
folder, which is the working directory and importable, so that later blocks
import it as the reader's would. A Python module is also run once on its
own; a ``test_*.py`` file is run with pytest there, as the reader would. The page's own example folder,
docs/examples/<page>/ when there is one, is importable too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
NOT_RUN = re.compile(r"<!-- sample: not run \((?P<reason>[^)]*)\) -->\s*$")
FILE = re.compile(r"<!-- sample: file (?P<name>[\w.-]+) -->\s*$")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip_reason: str | None
    file: str | None = None


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        file = FILE.search(before)
        indent = match.group("indent")
        code = "\n".join(line.removeprefix(indent) for line in match.group("body").splitlines())
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group("lang"),
                code=code + "\n",
                skip_reason=marker.group("reason").strip() if marker else None,
                file=file.group("name") if file else None,
            )
        )
    return found


def python_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang == "python"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_samples_of_a_page_run(page, tmp_path):
    """Each page in a process of its own, as a reader runs it: samples set
    process-wide state (OpenTelemetry's one global TracerProvider, logging)
    that must not leak into the other tests, nor from them into the samples."""
    result = subprocess.run(
        [sys.executable, "-c", f"from {__name__} import run_page; run_page({str(page)!r})"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
    )
    assert result.returncode == 0, f"{page.name}:\n{result.stdout}{result.stderr}"


def run_page(path: str) -> None:
    """Run a page's samples in this (fresh) process, its cwd the scratch folder."""
    page = Path(path)
    folder = Path.cwd()
    examples = DOCS / "examples" / page.stem
    sys.path[:0] = [str(folder)] + ([str(examples)] if examples.is_dir() else [])
    threads_before = set(threading.enumerate())
    namespace: dict[str, object] = {"__name__": f"docs_sample_{page.stem}"}
    test_files = []
    for block in blocks(page):
        where = f"{page.relative_to(ROOT)}:{block.line}"
        if block.file is not None:
            (folder / block.file).write_text(block.code)
            if block.file.startswith("test_") and block.file.endswith(".py"):
                test_files.append((block.file, where))
            elif block.lang == "python":  # a module the reader saves: it must at least run
                exec(compile(block.code, where, "exec"), {"__name__": block.file[:-3]})  # noqa: S102
        elif block.lang != "python":
            continue
        elif block.skip_reason is not None:
            assert block.skip_reason, f"{where}: a sample not run says why"
        else:
            exec(compile(block.code, where, "exec"), namespace)  # noqa: S102 - the samples are ours
    for name, where in test_files:
        run_pytest(folder, name, where)
    leftover = [
        t for t in set(threading.enumerate()) - threads_before if not t.daemon and t.is_alive()
    ]
    assert not leftover, f"{page.name}: its samples left threads running: {leftover}"


def run_pytest(folder: Path, name: str, where: str) -> None:
    """``pytest NAME`` in the page's folder, as the reader runs the saved file."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(folder)])},
    )
    assert result.returncode == 0, f"{where}: pytest {name} failed:\n{result.stdout}{result.stderr}"


def test_every_sample_not_run_gives_a_reason():
    for page in PAGES:
        text = page.read_text()
        for line in text.splitlines():
            if line.startswith("<!-- sample: not run"):
                marker = NOT_RUN.search(line)
                assert marker and marker.group("reason").strip(), f"{page.name}: {line!r}"


def test_the_block_finder_sees_fences_languages_and_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- sample: not run (needs Django) -->\n"
        "```python\nimport django\n```\n\n```console\n$ nameko run\n```\n"
        "- a list item:\n\n  ```python\n  y = 2\n  ```\n"
        "<!-- sample: file shop.py -->\n```python\nclass Shop: ...\n```\n"
    )
    found = blocks(page)
    assert [(b.lang, b.code, b.skip_reason, b.file) for b in found] == [
        ("python", "x = 1\n", None, None),
        ("python", "import django\n", "needs Django", None),
        ("console", "$ nameko run\n", None, None),
        ("python", "y = 2\n", None, None),
        ("python", "class Shop: ...\n", None, "shop.py"),
    ]


def test_the_docs_have_samples():
    counted = {page.name: len(python_blocks(page)) for page in PAGES}
    assert sum(counted.values()) >= 30, counted
