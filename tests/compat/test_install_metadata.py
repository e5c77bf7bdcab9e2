"""The shimeji wheel, built and installed in a fresh virtualenv, is also the
`nameko` distribution (docs/installation.md): tools that gate on nameko's
version find 2.14.1, an extension that requires `nameko` installs without the
real nameko and eventlet, pip refuses to put another nameko over shimeji, and
`pip uninstall shimeji` removes both.

pip resolves shimeji's dependencies and nameko-redis's from its cache (or the
package index); the whole test takes about 30 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREE = ("src", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")

PROBE = """
import importlib.metadata as m, importlib.util, json, nameko
found = {"version": m.version("nameko"), "file": nameko.__file__,
         "installer": m.distribution("nameko").read_text("INSTALLER").strip()}
if importlib.util.find_spec("pkg_resources"):  # setuptools is in the venv (Python < 3.12)
    import warnings; warnings.simplefilter("ignore")
    import pkg_resources
    found["pkg_resources"] = pkg_resources.get_distribution("nameko").version
print(json.dumps(found))
"""


CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # not this tree's src


def run(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=CLEAN_ENV,
    )
    if check:
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with the wheel built from this tree installed."""
    tmp = tmp_path_factory.mktemp("install")
    tree = tmp / "tree"
    for name in TREE:  # a copy: building writes build/ and *.egg-info
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(source, tree / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", tree)
    (wheel,) = (tmp / "dist").glob("shimeji-*.whl")
    run(sys.executable, "-m", "venv", tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", wheel)
    return python


def pip(python: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(python, "-m", "pip", "--disable-pip-version-check", *args, check=check)


def installed(python: Path) -> dict[str, str]:
    listed = pip(python, "list", "--format=freeze").stdout.split()
    return dict(line.lower().split("==") for line in listed)


def test_an_extension_requiring_nameko_installs_over_shimeji_without_real_nameko(venv):
    pip(venv, "install", "-q", "nameko-redis==1.1.0")  # requires nameko>=2.0.0: no --no-deps
    packages = installed(venv)
    assert packages["nameko"] == "2.14.1" and "shimeji" in packages
    assert "eventlet" not in packages and "kombu" not in packages
    assert pip(venv, "check").stdout.strip() == "No broken requirements found."
    probe = run(venv, "-c", PROBE).stdout
    assert '"version": "2.14.1"' in probe and '"installer": "shimeji"' in probe
    assert "/venv/lib/" in probe  # shimeji's package in the venv, not this tree's
    if sys.version_info < (3, 12):
        assert '"pkg_resources": "2.14.1"' in probe


def test_pip_refuses_to_put_another_nameko_over_shimeji(venv):
    refused = pip(venv, "install", "-q", "--no-deps", "nameko==3.0.0rc11", check=False)
    assert refused.returncode != 0
    assert "Cannot uninstall nameko 2.14.1" in refused.stderr
    assert "installed by shimeji" in refused.stderr
    assert installed(venv)["nameko"] == "2.14.1"
    assert "shimeji" in run(venv, "-m", "nameko", "--version").stdout.lower()


def test_uninstalling_shimeji_removes_the_nameko_metadata_too(venv):
    pip(venv, "uninstall", "-y", "-q", "shimeji")
    packages = installed(venv)
    assert "shimeji" not in packages and "nameko" not in packages
    missing = run(venv, "-c", "import nameko", check=False)
    assert "No module named 'nameko'" in missing.stderr
