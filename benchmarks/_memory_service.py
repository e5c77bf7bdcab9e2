"""The service ``bench_memory.py`` measures, under shimeji and nameko 2.14.1."""

import os

from nameko.rpc import rpc

SUFFIX = os.environ.get("BENCH_SUFFIX", "")


class PayloadService:
    name = "bench_payload" + SUFFIX

    @rpc
    def make(self, size):
        """A string result of ``size`` characters."""
        return "x" * size

    @rpc
    def count(self, items):
        """A large argument in, a small result out."""
        return len(items)
