"""shimeji: nameko services on plain threads, wire-compatible with nameko 2.14.

``from nameko import config`` is nameko 3's global config (see
`nameko._global_config`); 2.x code that passes config dicts around is
unaffected by it.
"""

from nameko._global_config import Config, config

__all__ = ["Config", "__version__", "config"]

__version__ = "2.14.1"  # the nameko API shimeji provides; its own release: shimeji.__version__
__shimeji__ = True  # this file is shimeji's: the install check (shimeji._install_check) reads it
