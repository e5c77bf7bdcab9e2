"""Queue types (``x-queue-type``): what RabbitMQ 3.10 accepts and refuses.

Opting a service into quorum queues (``QUEUE_TYPE``) relies on these rules:
a queue keeps the type it was first declared with, and declaring it again
with another type fails with 406 rather than splitting the service in two.
A missing ``x-queue-type`` means ``classic``.
"""

from __future__ import annotations

import pytest

from nameko._broker.base import Broker, PreconditionFailed, Properties, Queue
from tests.contract.conftest import Collector, fence, queue_exists

QUORUM = {"x-queue-type": "quorum"}
CLASSIC = {"x-queue-type": "classic"}


@pytest.mark.parametrize("declares", [True, False], ids=["own-topology", "declared-elsewhere"])
def test_a_quorum_queue_is_declared_again_and_delivers(broker: Broker, declares: bool) -> None:
    """Consumers of classic queues ask RabbitMQ to cancel them on fail-over
    (docs D15), a flag quorum queues refuse: it is left out for them, also
    when the consumer finds out only from the refusal."""
    queue = Queue("q", arguments=QUORUM)
    broker.declare([queue])
    collector = Collector(ack=True)
    broker.consume("q", collector, topology=[queue] if declares else [])
    broker.publish("", "q", b"body", Properties(delivery_mode=2))
    assert [d.body for d in fence(broker, "q", collector)] == [b"body"]


@pytest.mark.parametrize(
    ("first", "second", "received"),
    [({}, QUORUM, "'quorum'"), (QUORUM, {}, "none"), (CLASSIC, QUORUM, "'quorum'")],
    ids=["classic-then-quorum", "quorum-then-none", "explicit-classic-then-quorum"],
)
def test_another_queue_type_is_refused(
    broker: Broker, first: dict, second: dict, received: str
) -> None:
    broker.declare([Queue("q", arguments=first)])
    with pytest.raises(PreconditionFailed) as info:
        broker.declare([Queue("q", arguments=second)])
    assert info.value.reply_code == 406
    assert "inequivalent arg 'x-queue-type' for queue 'q'" in str(info.value)
    assert f"received {received}" in str(info.value) or f"value {received}" in str(info.value)


@pytest.mark.parametrize(("first", "second"), [({}, CLASSIC), (CLASSIC, {})])
def test_no_queue_type_means_classic(broker: Broker, first: dict, second: dict) -> None:
    broker.declare([Queue("q", arguments=first)])
    broker.declare([Queue("q", arguments=second)])


@pytest.mark.parametrize(
    "flags",
    [{"durable": False}, {"auto_delete": True}, {"exclusive": True}],
    ids=["non-durable", "auto-delete", "exclusive"],
)
def test_a_quorum_queue_must_be_durable_shared_and_kept(broker: Broker, flags: dict) -> None:
    with pytest.raises(PreconditionFailed) as info:
        broker.declare([Queue("q", arguments=QUORUM, **flags)])
    assert "invalid property" in str(info.value)
    assert not queue_exists(broker, "q")


def test_an_unknown_queue_type_is_refused(broker: Broker) -> None:
    with pytest.raises(PreconditionFailed) as info:
        broker.declare([Queue("q", arguments={"x-queue-type": "bogus"})])
    assert "invalid arg 'x-queue-type'" in str(info.value)
    assert not queue_exists(broker, "q")
