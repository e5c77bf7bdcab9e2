"""shimeji in one minute: real services and a client in one process.

Runs on the embedded in-memory broker by default (no RabbitMQ needed);
set AMQP_URI=amqp://guest:guest@localhost to run the same code on RabbitMQ.
"""

import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE / "seed000"), str(HERE / "seed002")]  # the seeds' own layouts

from rpc import ServiceX, ServiceY  # noqa: E402  (seed 002)
from services import GreetingService  # noqa: E402  (seed 000)
from services.service2.service2 import Service2  # noqa: E402

from nameko.exceptions import RemoteError  # noqa: E402
from nameko.rpc import rpc  # noqa: E402
from nameko.runners import run_services  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402
from nameko.utils import sanitize_url  # noqa: E402


class SlowService:
    name = "slow_service"

    @rpc
    def nap(self, seconds):
        time.sleep(seconds)
        return seconds


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = {"AMQP_URI": os.environ.get("AMQP_URI", "memory://demo"), "max_workers": 10}
    print(f"broker: {sanitize_url(config['AMQP_URI'])}")
    with run_services(config, GreetingService, Service2, ServiceX, ServiceY, SlowService):
        with ClusterRpcProxy(config, timeout=30) as cluster:
            print(cluster.greeting_service.hello("world"))
            print(cluster.service2.hello_service2("shimeji"))
            print(cluster.service_x.remote_method("hello"))
            try:
                cluster.greeting_service.raise_exception()
            except RemoteError as exc:
                print(f"remote error, as expected: {exc.exc_type}")
            started = time.monotonic()
            naps = [cluster.slow_service.nap.call_async(0.5) for _ in range(20)]
            total = sum(reply.result() for reply in naps)
            elapsed = time.monotonic() - started
            print(f"20 calls of a 0.5 s method ({total:.0f} s of work) took {elapsed:.1f} s on 10 workers")


if __name__ == "__main__":
    main()
