"""The release, built and installed in fresh virtualenvs the way docs/installation.md
and docs/releasing.md say: the sdist and the wheel built from it, each installed
on its own, are shimeji and also the `nameko` distribution; extensions that
require `nameko` install over shimeji without the real nameko and eventlet; pip
refuses to put another nameko over shimeji; when `--ignore-installed` forces the
real nameko in anyway, `nameko` and `import nameko` say so in one line, and the
commands that line gives restore shimeji.

The build runs once for the module (``python -m build``, in a virtualenv of its
own); pip resolves everything else from its cache or the package index. The
whole module takes about a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREE = ("src", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE")
ONE_LINE_RESTORE = "restore shimeji with: "

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

PLUGIN_TEST = """
from nameko.web.handlers import http
from nameko.web.websocket import rpc


class Greeter:
    name = "greeter"

    @http("GET", "/greet/<name>")
    def greet(self, request, name):
        return f"Hello, {name}!"

    @rpc
    def shout(self, socket_id, text):
        return text.upper()


def test_the_fixtures_of_the_testing_extra(
    container_factory, memory_config, web_config, web_session, websocket
):
    container = container_factory(Greeter, {**memory_config, **web_config})
    container.start()
    assert web_session.get("/greet/Ada").text == "Hello, Ada!"
    assert websocket().rpc("shout", text="hi") == "HI"
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


def shimeji_version() -> str:
    namespace: dict[str, str] = {}
    exec((ROOT / "src" / "shimeji" / "__init__.py").read_text(), namespace)
    return namespace["__version__"]


def new_venv(path: Path) -> Path:
    run(sys.executable, "-m", "venv", path)
    return path / "bin" / "python"


def pip(python: Path, *args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(python, "-m", "pip", "--disable-pip-version-check", *args, check=check)


def installed(python: Path) -> dict[str, str]:
    listed = pip(python, "list", "--format=freeze").stdout.split()
    return dict(line.lower().split("==") for line in listed)


def nameko(python: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(python.parent / "nameko", *args, check=check)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """docs/releasing.md's build: ``python -m build`` on a copy of this tree."""
    tmp = tmp_path_factory.mktemp("release")
    tree = tmp / "tree"
    tree.mkdir()
    for name in TREE:  # a copy: building writes build/ and *.egg-info
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tree / name)
    builder = new_venv(tmp / "build-venv")
    pip(builder, "install", "-q", "build")
    run(builder, "-m", "build", "--outdir", tmp / "dist", tree)
    (sdist,) = (tmp / "dist").glob("shimeji-*.tar.gz")
    (wheel,) = (tmp / "dist").glob("shimeji-*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; the tests below use it in order."""
    python = new_venv(tmp_path_factory.mktemp("install") / "venv")
    pip(python, "install", "-q", dist["wheel"])
    return python


@pytest.fixture
def fresh_venv(dist, tmp_path) -> Path:
    python = new_venv(tmp_path / "venv")
    pip(python, "install", "-q", dist["wheel"])
    return python


def assert_shimeji_intact(python: Path) -> None:
    version = nameko(python, "--version")
    assert version.stdout.strip() == f"2.14.1 (shimeji {shimeji_version()})", version
    assert not version.stderr
    package = Path(run(python, "-c", "import nameko; print(nameko.__file__)").stdout.strip())
    assert "__shimeji__ = True" in package.read_text()
    # files only a real nameko ships: none left beside shimeji's
    leftovers = ["cli/commands.py", "cli/click_options.py", "utils/concurrency/__init__.py"]
    assert not [name for name in leftovers if (package.parent / name).exists()]
    records = list(package.parent.parent.glob("nameko-*.dist-info/RECORD"))
    assert not records, records
    assert (package.parent.parent / "shimeji.pth").is_file()  # the hook of the install check


def restore_commands(message: str) -> list[list[str]]:
    """The pip commands a refusal line gives, as argument lists."""
    commands = message.split(ONE_LINE_RESTORE, 1)[1].strip()
    return [step.split() for step in commands.split(" && ")]


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
    assert_shimeji_intact(venv)


def test_a_nameko_2_14_requirements_file_installs_over_shimeji(venv, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("nameko==2.14.1\nnameko-sqlalchemy==1.5.0\n")
    pip(venv, "install", "-q", "-r", requirements)
    packages = installed(venv)
    assert packages["nameko-sqlalchemy"] == "1.5.0" and "eventlet" not in packages
    assert pip(venv, "check").stdout.strip() == "No broken requirements found."
    assert_shimeji_intact(venv)


def test_the_constraints_file_stops_another_nameko_before_anything_installs(venv, tmp_path):
    """Without it, pip installs eventlet and the rest, then refuses nameko 2.13."""
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("nameko==2.14.1\n")  # docs/installation.md's file
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("nameko==2.13.0\n")
    before = installed(venv)
    refused = pip(venv, "install", "-q", "-r", requirements, "-c", constraints, check=False)
    assert refused.returncode != 0
    assert "nameko==2.13.0" in refused.stderr and "conflict" in refused.stderr.lower()
    assert installed(venv) == before
    assert_shimeji_intact(venv)


def test_pip_refuses_to_put_another_nameko_over_shimeji(venv):
    refused = pip(venv, "install", "-q", "--no-deps", "nameko==3.0.0rc11", check=False)
    assert refused.returncode != 0
    assert "Cannot uninstall nameko 2.14.1" in refused.stderr
    assert "installed by shimeji" in refused.stderr
    assert installed(venv)["nameko"] == "2.14.1"
    assert_shimeji_intact(venv)


def test_upgrading_nameko_keeps_shimeji(venv):
    upgraded = pip(venv, "install", "--upgrade", "nameko")  # the newest release is 2.14.1
    assert "Requirement already satisfied: nameko" in upgraded.stdout
    forced = pip(venv, "install", "-q", "--force-reinstall", "--no-deps", "nameko", check=False)
    assert forced.returncode != 0 and "Cannot uninstall nameko 2.14.1" in forced.stderr
    assert_shimeji_intact(venv)


def test_uninstalling_shimeji_removes_the_nameko_metadata_too(venv):
    pip(venv, "uninstall", "-y", "-q", "shimeji")
    packages = installed(venv)
    assert "shimeji" not in packages and "nameko" not in packages
    missing = run(venv, "-c", "import nameko", check=False)
    assert "No module named 'nameko'" in missing.stderr
    site = Path(run(venv, "-c", "import site; print(site.getsitepackages()[0])").stdout.strip())
    assert not (site / "shimeji.pth").exists() and not (site / "shimeji").exists()


def test_real_nameko_forced_over_shimeji_is_refused_in_one_line_and_restored(fresh_venv, dist):
    pip(fresh_venv, "install", "-q", "--ignore-installed", "nameko==2.14.1")  # and eventlet
    assert "eventlet" in installed(fresh_venv)
    expected = "Error: the real nameko 2.14.1 was installed over shimeji's nameko package in "
    for args in (["--version"], ["run", "orders"]):
        refused = nameko(fresh_venv, *args, check=False)
        assert refused.returncode == 2 and not refused.stdout
        (line,) = refused.stderr.splitlines()
        assert line.startswith(expected), line
        assert line.endswith(
            f"{ONE_LINE_RESTORE}pip uninstall -y nameko && "
            f"pip install --force-reinstall --no-deps {dist['wheel']}"
        ), line
    imported = run(fresh_venv, "-c", "import nameko", check=False)
    assert imported.returncode == 1
    assert imported.stderr.splitlines()[-1] == "ImportError: " + line.removeprefix("Error: ")

    for command in restore_commands(line):
        assert command[0] == "pip"
        pip(fresh_venv, *command[1:])
    assert_shimeji_intact(fresh_venv)


def test_another_real_nameko_forced_over_shimeji_gets_its_own_restore_commands(fresh_venv):
    pip(fresh_venv, "install", "-q", "--ignore-installed", "--no-deps", "nameko==3.0.0rc11")
    refused = nameko(fresh_venv, "--version", check=False)
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    assert line.startswith("Error: the real nameko 3.0.0rc11 was installed over shimeji's"), line
    steps = restore_commands(line)
    assert [step[:3] for step in steps[:2]] == [["pip", "uninstall", "-y"]] * 2
    for command in steps:
        pip(fresh_venv, *command[1:])
    assert_shimeji_intact(fresh_venv)


def test_the_release_metadata(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = f"shimeji-{shimeji_version()}.dist-info/METADATA"
        fields = wheel.read(metadata).decode()
    version = shimeji_version()
    assert dist["wheel"].name == f"shimeji-{version}-py3-none-any.whl"
    assert dist["sdist"].name == f"shimeji-{version}.tar.gz"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert f"shimeji-{version}.data/purelib/shimeji.pth" in names
    assert f"shimeji-{version}.data/purelib/nameko-2.14.1.dist-info/METADATA" in names
    for field in (
        f"Version: {version}",
        "Author: shimeji contributors",
        "License: Apache-2.0",
        "Classifier: License :: OSI Approved :: Apache Software License",
        "Keywords: nameko,",
        "Provides-Extra: testing",
        'Requires-Dist: websocket-client>=1.6; extra == "testing"',
    ):
        assert field in fields, field


def test_the_sdist_installs_with_the_testing_extra_and_its_fixtures_work(dist, tmp_path):
    python = new_venv(tmp_path / "venv")
    pip(python, "install", "-q", f"shimeji[testing] @ {dist['sdist'].as_uri()}")
    assert_shimeji_intact(python)
    assert run(python, "-c", "import shimeji; print(shimeji.__version__)").stdout.strip() == (
        shimeji_version()
    )
    (tmp_path / "test_greeter.py").write_text(PLUGIN_TEST)
    tested = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", tmp_path, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout
