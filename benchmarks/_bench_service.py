"""Services hosted by ``nameko run`` for ``bench_rpc.py``.

The same module runs under shimeji and under nameko 2.14.1. Service names
end with ``$BENCH_SUFFIX``: both implementations share one vhost without
sharing queues, and every startup trial gets queues that do not exist yet
(a durable queue left by an earlier trial would hold the first call instead of
raising UnknownService).
"""

import os
import time

from nameko.rpc import rpc

SUFFIX = os.environ.get("BENCH_SUFFIX", "")

if os.environ.get("BENCH_TRACING_SDK"):  # bench_ops.py's tracing row: the SDK's work, spans dropped
    import _traced_service  # noqa: F401  (installs its TracerProvider on import)


class EchoService:
    name = "bench_echo" + SUFFIX

    @rpc
    def echo(self, value):
        return value


class GreetingService:
    """Seed 001: a one-second method, run with ``max_workers: 10``."""

    name = "greeting_service" + SUFFIX

    @rpc
    def hello(self, name):
        time.sleep(1)
        return f"Hello, {name}!"


class CpuService:
    """The ``--processes`` row: a pure-Python loop (about 20 ms for 500,000 iterations
    here), the same work under both implementations; both methods return the pid, so
    a client can tell when every process of a ``--processes N`` service consumes."""

    name = "bench_cpu" + SUFFIX

    @rpc
    def burn(self, iterations):
        total = 0
        for i in range(iterations):
            total += i * i
        return os.getpid()

    @rpc
    def pid(self):
        return os.getpid()
