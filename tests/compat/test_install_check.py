"""`shimeji._install_check` on site directories laid out as pip leaves them
(docs/installation.md, "If the real nameko was written over shimeji"). The same
check in a real virtualenv, after a real `pip install --ignore-installed`, is in
test_install_metadata.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shimeji import __version__
from shimeji._install_check import MARKER, problem

SRC = Path(__file__).resolve().parents[2] / "src"
REAL_INIT = "from copy import deepcopy\n"  # real nameko 3.0 begins so (2.14.1: empty)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site directory with shimeji installed from a wheel, as pip lays it out."""
    (tmp_path / "nameko").mkdir()
    (tmp_path / "nameko" / "__init__.py").write_bytes(b'"""doc"""' + MARKER + b"\n")
    metadata = tmp_path / "nameko-2.14.1.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text("Name: nameko\nVersion: 2.14.1\n")
    (metadata / "INSTALLER").write_text("shimeji\n")
    own = tmp_path / f"shimeji-{__version__}.dist-info"
    own.mkdir()
    wheel = tmp_path / f"shimeji-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"")
    (own / "direct_url.json").write_text(json.dumps({"url": wheel.as_uri(), "archive_info": {}}))
    return tmp_path


def real_nameko(site: Path, version: str, init: str = REAL_INIT) -> None:
    (site / "nameko" / "__init__.py").write_text(init)
    metadata = site / f"nameko-{version}.dist-info"
    metadata.mkdir(exist_ok=True)
    (metadata / "RECORD").write_text("nameko/__init__.py,,\n")


def test_shimejis_package_passes(site):
    assert problem(str(site / "nameko")) is None


def test_the_real_2_14_1_over_it_is_named_with_the_commands_that_restore(site):
    real_nameko(site, "2.14.1", init="")
    wheel = site / f"shimeji-{__version__}-py3-none-any.whl"
    assert problem(str(site / "nameko")) == (
        f"the real nameko 2.14.1 was installed over shimeji's nameko package in {site} "
        "(by pip install --ignore-installed or the like); restore shimeji with: "
        f"pip uninstall -y nameko && pip install --force-reinstall --no-deps {wheel}"
    )


def test_another_version_over_it_takes_shimeji_out_first(site):
    real_nameko(site, "3.0.0rc11")
    message = problem(str(site / "nameko"))
    assert message and message.startswith("the real nameko 3.0.0rc11 was installed over")
    assert message.endswith(
        "restore shimeji with: pip uninstall -y shimeji && pip uninstall -y nameko && "
        f"pip install --force-reinstall --no-deps {site}/shimeji-{__version__}-py3-none-any.whl"
    )


def test_real_files_left_after_shimejis_came_back_are_named(site):
    real_nameko(site, "3.0.0rc11")
    (site / "nameko" / "__init__.py").write_bytes(MARKER + b"\n")  # --force-reinstall shimeji
    message = problem(str(site / "nameko"))
    assert message and message.startswith(
        "files of the real nameko 3.0.0rc11 are mixed into shimeji's nameko package"
    )


def test_a_package_without_its_init_is_named_and_the_version_is_used_without_the_wheel(site):
    (site / "nameko" / "__init__.py").unlink()  # `pip uninstall nameko` took the shared files
    (site / f"shimeji-{__version__}-py3-none-any.whl").unlink()
    assert problem(str(site / "nameko")) == (
        f"shimeji's nameko package in {site} was changed or partly removed "
        "(its nameko/__init__.py is not shimeji's); restore it with: "
        f"pip install --force-reinstall --no-deps shimeji=={__version__}"
    )


def test_this_trees_package_passes():
    assert problem(str(SRC / "nameko")) is None  # its metadata folder has no RECORD


def test_the_start_up_hook_imports_neither_nameko_nor_typing():
    """It runs in every interpreter of a virtualenv with shimeji: it must stay small."""
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); import shimeji._install_check as c; "
        "c.watch_nameko_import(); print(sorted({'nameko', 'typing', 'json'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
