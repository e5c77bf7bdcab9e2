"""Says in one line when the ``nameko`` package on disk is no longer shimeji's.

How it works: the shimeji wheel installs ``shimeji.pth`` into site-packages,
so every interpreter there calls `watch_nameko_import` at start-up. That only
puts a finder at the front of ``sys.meta_path``; the finder ignores every
import but the first of ``nameko``, then takes itself out, finds the package
the usual way and, when it is the one in shimeji's own site directory, looks
at two things beside it:

- ``nameko/__init__.py`` carries shimeji's marker line. Another nameko's
  installation writes its own ``__init__.py`` over ours (pip does not stop a
  ``pip install --ignore-installed nameko``), so a missing marker means that
  the package's modules are someone else's, whatever else is there;
- no ``nameko-*.dist-info`` there has a ``RECORD``. shimeji's nameko metadata
  has none on purpose (docs/installation.md); a real nameko's installation
  record means its files are mixed into the package, even after shimeji's own
  were put back (a stray ``nameko/utils/concurrency/`` package, for one,
  shadows shimeji's ``nameko/utils/concurrency.py``).

If either fails, ``import nameko`` raises ImportError with one line naming
what happened and the pip commands that restore shimeji; under the ``nameko``
command the line is printed and the process exits with status 2. The cost
when all is well: one directory listing and one read of a small file, once per
process that imports nameko. Nothing here imports ``nameko``: the check must
work when nameko's files are not ours.
"""

import os
import sys

# Every interpreter loads this module: no typing (8 ms) and no __future__ (0.2 ms) at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

__all__ = ["MARKER", "check_command", "problem", "watch_nameko_import"]

MARKER = b"\n__shimeji__ = True"  # a line of shimeji's nameko/__init__.py
CLI_EXIT_STATUS = 2
SHIMEJI_SITE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def problem(package_dir: str) -> str | None:
    """One line saying how the nameko package in `package_dir` is not shimeji's, or None."""
    site_dir = os.path.dirname(os.path.abspath(package_dir))
    foreign = _real_nameko_records(site_dir)
    ours = _is_shimejis(os.path.join(package_dir, "__init__.py"))
    if ours and not foreign:
        return None
    source = _shimeji_source(site_dir)
    if not foreign:
        return (
            f"shimeji's nameko package in {site_dir} was changed or partly removed "
            f"(its nameko/__init__.py is not shimeji's); restore it with: "
            f"pip install --force-reinstall --no-deps {source}"
        )
    version = foreign[0].removeprefix("nameko-").removesuffix(".dist-info")
    what = (
        f"files of the real nameko {version} are mixed into shimeji's nameko package"
        if ours
        else f"the real nameko {version} was installed over shimeji's nameko package"
    )
    return (
        f"{what} in {site_dir} (by pip install --ignore-installed or the like); "
        f"restore shimeji with: {_restore_commands(foreign, source)}"
    )


def check_command() -> None:
    """For the ``nameko`` command: print the problem of the imported package and exit 2."""
    package = sys.modules.get("nameko")
    found = getattr(package, "__file__", None)
    message = problem(os.path.dirname(found)) if found else None
    if message:
        _exit_with(message)


def watch_nameko_import() -> None:
    """Check the nameko package when it is first imported (called by ``shimeji.pth``)."""
    if not any(isinstance(finder, _FirstNamekoImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FirstNamekoImport())


class _FirstNamekoImport:
    """A meta path finder that checks, once, the package ``import nameko`` finds."""

    def find_spec(
        self, name: str, path: "Sequence[str] | None" = None, target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        if name != "nameko":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:  # another thread's import took it out first
            pass
        spec = _find_elsewhere(name, path, target)
        locations = list(spec.submodule_search_locations or []) if spec else []
        here = [p for p in locations if os.path.dirname(os.path.abspath(p)) == SHIMEJI_SITE]
        message = problem(here[0]) if here else None
        if message is None:
            return spec
        if _running_the_command():
            _exit_with(message)
        raise ImportError(message, name=name)


def _find_elsewhere(
    name: str, path: "Sequence[str] | None", target: "ModuleType | None"
) -> "ModuleSpec | None":
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find(name, path, target) if find else None
        if spec is not None:
            return spec
    return None


def _is_shimejis(init_file: str) -> bool:
    try:
        with open(init_file, "rb") as source:
            return MARKER in source.read()
    except OSError:  # removed: a namespace package made of what is left
        return False


def _real_nameko_records(site_dir: str) -> list[str]:
    try:
        names = os.listdir(site_dir)
    except OSError:
        return []
    return sorted(
        name
        for name in names
        if name.startswith(("nameko-", "Nameko-"))  # pip writes normalized names: nameko-
        and name.endswith(".dist-info")
        and os.path.exists(os.path.join(site_dir, name, "RECORD"))
    )


def _shimeji_source(site_dir: str) -> str:
    """What to give pip to reinstall shimeji: the wheel it came from, if still there."""
    import json
    from urllib.parse import unquote, urlsplit

    from shimeji import __version__

    installed = os.path.join(site_dir, f"shimeji-{__version__}.dist-info", "direct_url.json")
    try:
        with open(installed) as record:
            url = urlsplit(json.load(record)["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"shimeji=={__version__}"
    local = unquote(url.path)
    if url.scheme == "file" and os.path.exists(local):
        return local
    return url.geturl() if url.scheme in ("http", "https") else f"shimeji=={__version__}"


def _restore_commands(foreign: list[str], source: str) -> str:
    from shimeji import NAMEKO_API_VERSION

    reinstall = f"pip install --force-reinstall --no-deps {source}"

    if f"nameko-{NAMEKO_API_VERSION}.dist-info" in foreign:
        # the real one's record is in the folder of shimeji's nameko metadata: pip can uninstall it
        return f"pip uninstall -y nameko && {reinstall}"
    # two nameko metadata folders: pip picks shimeji's (no RECORD) until shimeji is gone
    return f"pip uninstall -y shimeji && pip uninstall -y nameko && {reinstall}"


def _running_the_command() -> bool:
    argv = getattr(sys, "argv", None) or [""]
    return os.path.basename(argv[0]) in ("nameko", "nameko.exe", "-m")


def _exit_with(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    raise SystemExit(CLI_EXIT_STATUS)
