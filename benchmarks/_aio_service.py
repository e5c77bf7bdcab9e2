"""Services hosted by ``nameko run`` for ``bench_aio.py``.

`AsyncService` is shimeji only (``async def`` methods); `SyncService` runs under
both implementations (under nameko 2.14.1 its ``time.sleep`` is eventlet's,
patched by ``nameko run``). Names end with ``$BENCH_SUFFIX`` so that the two
implementations share one vhost without sharing queues.
"""

import asyncio
import os
import time

from nameko.rpc import rpc

SUFFIX = os.environ.get("BENCH_SUFFIX", "")


class AsyncService:
    name = "aio_async" + SUFFIX

    @rpc
    async def echo(self, value):
        return value

    @rpc
    async def nap(self, seconds):
        await asyncio.sleep(seconds)
        return os.getpid()


class SyncService:
    name = "aio_sync" + SUFFIX

    @rpc
    def echo(self, value):
        return value

    @rpc
    def nap(self, seconds):
        time.sleep(seconds)
        return os.getpid()
