"""Build hook: the shimeji wheel also installs the `nameko` distribution's metadata
and the start-up hook of the install check.

How it works: ``src/nameko-<version>.dist-info`` (METADATA, INSTALLER, no
RECORD) and ``src/shimeji.pth`` are copied into the wheel's
``shimeji-<version>.data/purelib``; pip moves what is there into
site-packages beside the ``nameko`` package and lists it in shimeji's RECORD,
so ``pip uninstall shimeji`` removes it too. An editable install needs no
copy of the metadata (its path entry is ``src`` itself) and goes without the
hook. Why, and which version it claims: docs/installation.md.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1

SRC = Path(__file__).resolve().parent / "src"


class BdistWheelWithNamekoMetadata(bdist_wheel):
    def egg2dist(self, egginfo_path: str, distinfo_path: str) -> None:
        super().egg2dist(egginfo_path, distinfo_path)
        for claimed in SRC.glob("nameko-*.dist-info"):
            target = Path(self.bdist_dir, self.data_dir, "purelib", claimed.name)
            shutil.copytree(claimed, target, dirs_exist_ok=True)
        hook = Path(self.bdist_dir, self.data_dir, "purelib", "shimeji.pth")
        shutil.copy2(SRC / "shimeji.pth", hook)  # runs shimeji._install_check at start-up


setup(cmdclass={"bdist_wheel": BdistWheelWithNamekoMetadata})
