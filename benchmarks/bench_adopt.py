"""What keeping unsettled deliveries costs per message (``adopt_redeliveries``).

An entrypoint consumer remembers each delivery until it is settled, so that
the broker's redelivered copy of a job that outlived its channel is
recognised (`nameko._amqp.orphans`). This times the per-message work of the
RabbitMQ consumer around that bookkeeping, with and without it: building the
`Delivery`, the adoption check and the ack through the channel's lease (the
driver's send is stubbed out: it is the same either way). Rounds alternate;
the best round of each is reported, then the ratio.

    .venv/bin/python benchmarks/bench_adopt.py [--rounds 15] [--messages 200000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from nameko._amqp.consumer import Lease, RabbitConsumer
from nameko._broker.base import Delivery, Properties

PROPERTIES = Properties(content_type="application/json", correlation_id="c0ffee", reply_to="r")


class _Driver:
    """Takes the ack frames and drops them."""

    def submit(self, fn: Any, *args: Any, on_error: Any) -> None:
        pass


def _consumer(adopt: bool) -> RabbitConsumer:
    driver: Any = _Driver()
    consumer = RabbitConsumer(
        *(driver, "rpc-bench", lambda delivery: None, 10, (), False, 3),
        call=lambda *args: None,
        forget=lambda consumer: None,
        adopt_redeliveries=adopt,
    )
    consumer.lease = Lease(driver, None, 3, consumer.orphans)  # type: ignore[arg-type]
    return consumer


def _round(consumer: RabbitConsumer, messages: int) -> float:
    """Nanoseconds per message, as `RabbitBroker._on_delivered` and an ack do it."""
    settle, holds = consumer.settle_function(), consumer.holds_function()
    began = time.perf_counter()
    for tag in range(1, messages + 1):
        delivery = Delivery(b"{}", PROPERTIES, "nameko-rpc", "svc.m", False, tag, settle, holds)
        if consumer.orphans is not None and consumer.adopts(delivery):
            continue
        delivery.ack()
    return (time.perf_counter() - began) / messages * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    without, with_ = _consumer(False), _consumer(True)
    off, on = [], []
    for _ in range(args.rounds):
        off.append(_round(without, args.messages))
        on.append(_round(with_, args.messages))
    best_off, best_on = min(off), min(on)
    print(f"without: {best_off:.0f} ns/message, with: {best_on:.0f} ns/message (best rounds)")
    print(f"ratio {best_on / best_off:.2f}, +{best_on - best_off:.0f} ns per message")


if __name__ == "__main__":
    main()
