"""Unique ids for correlation and call ids, without a syscall per id.

`uuid.uuid4()` reads `os.urandom` every time; on some virtual machines that
costs over 100 µs, and an RPC call needs two ids. These ids only have to be
unique, not secret, so they come from a private Mersenne Twister seeded from
`os.urandom` once (and again in a forked child), formatted as a UUID4 string
as nameko's are.
"""

from __future__ import annotations

import os
import random
import uuid

__all__ = ["new_id"]

# Private: user code calling random.seed() must not make our ids repeat.
_source = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _source.seed(os.urandom(32)))


def new_id() -> str:
    """A random UUID4 string."""
    return str(uuid.UUID(int=_source.getrandbits(128), version=4))
