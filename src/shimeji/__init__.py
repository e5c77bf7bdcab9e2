"""The shimeji distribution's own module: its version, apart from nameko's.

``nameko.__version__`` stays the nameko API version shimeji implements
(``"2.14.1"``), because extensions and tools compare it with nameko's
releases; shimeji's release is ``shimeji.__version__``. Importing this module
imports nothing of ``nameko``.
"""

__all__ = ["NAMEKO_API_VERSION", "__version__"]

__version__ = "0.1.0.dev0"  # the release; pyproject.toml reads it from here
NAMEKO_API_VERSION = "2.14.1"  # the nameko API (and the nameko distribution) it provides
