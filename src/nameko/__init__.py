"""shimeji: nameko services on plain threads, wire-compatible with nameko 2.14."""

__all__ = ["__version__"]

__version__ = "2.14.1"  # the nameko API version we are compatible with
