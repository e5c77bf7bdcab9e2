"""`Orphans`: a redelivered copy of a job still running (or just run) is
settled with that job's outcome, never run again. Pure bookkeeping: the
channel incarnations here are stand-ins for `Lease` that record what
reached "the broker"; the deliveries are real `Delivery` objects."""

from __future__ import annotations

from nameko._amqp import orphans as orphans_module
from nameko._amqp.orphans import Orphans
from nameko._broker.base import Delivery, Properties


class _Lease:
    """One channel incarnation: settles while alive; once dead, hands the
    settlement to `Orphans`, as `nameko._amqp.consumer.Lease` does."""

    def __init__(self, orphans: Orphans, alive: bool = True) -> None:
        self.orphans, self.alive = orphans, alive
        self.unsettled: dict[int, Delivery] = {}
        self.sent: list[tuple[int, bool, bool]] = []

    def deliver(self, tag: int, body: bytes = b"job", redelivered: bool = False, **headers):
        props = Properties(content_type="application/json", correlation_id="c1", headers=headers)
        delivery = Delivery(body, props, "nameko-rpc", "svc.run", redelivered, tag, self.settle)
        self.unsettled[tag] = delivery
        return delivery

    def settle(self, tag: int, ack: bool, requeue: bool) -> bool:
        if not self.alive:
            return self.orphans.settled(self, tag, ack, requeue)
        self.unsettled.pop(tag, None)
        self.sent.append((tag, ack, requeue))
        return True

    def die(self) -> None:
        self.alive = False
        self.orphans.take(self)


def test_a_copy_of_a_running_job_gets_its_outcome_when_it_finishes() -> None:
    orphans = Orphans("q")
    old, new = _Lease(orphans), _Lease(orphans)
    job = old.deliver(7)
    old.die()
    assert orphans.waiting and old.unsettled == {}
    assert orphans.adopt(new.deliver(1, redelivered=True))
    assert new.sent == []  # the job still runs: nothing settled yet
    assert job.ack()  # the worker acks its delivery, on the dead channel...
    assert new.sent == [(1, True, False)]  # ...which acks the copy
    assert not orphans.waiting


def test_a_copy_that_comes_after_the_job_finished_is_settled_at_once() -> None:
    orphans = Orphans("q")
    old, new = _Lease(orphans), _Lease(orphans)
    job = old.deliver(7)
    old.die()
    assert not job.reject()  # nothing reached a broker yet
    assert orphans.adopt(new.deliver(1, redelivered=True))
    assert new.sent == [(1, False, False)]


def test_another_message_is_not_adopted() -> None:
    orphans = Orphans("q")
    old, new = _Lease(orphans), _Lease(orphans)
    old.deliver(7)
    old.die()
    assert not orphans.adopt(new.deliver(1, body=b"other", redelivered=True))
    assert orphans.waiting


def test_identical_messages_are_matched_one_to_one() -> None:
    orphans = Orphans("q")
    old, new = _Lease(orphans), _Lease(orphans)
    jobs = [old.deliver(7), old.deliver(8)]
    old.die()
    assert orphans.adopt(new.deliver(1, redelivered=True))
    assert orphans.adopt(new.deliver(2, redelivered=True))
    assert not orphans.adopt(new.deliver(3, redelivered=True))  # a third one is news
    jobs[1].ack()
    jobs[0].ack()
    assert sorted(new.sent) == [(1, True, False), (2, True, False)]


def test_the_brokers_delivery_count_does_not_hide_a_copy() -> None:
    """A quorum queue adds ``x-delivery-count`` to a redelivered message."""
    orphans = Orphans("q")
    old, new = _Lease(orphans), _Lease(orphans)
    old.deliver(7, trace="t")
    old.die()
    assert orphans.adopt(new.deliver(1, redelivered=True, trace="t", **{"x-delivery-count": 1}))


def test_a_copy_whose_channel_dies_too_passes_the_outcome_on() -> None:
    """Each consumer timeout closes the copy's channel as well: the outcome
    follows the chain of copies to the one on a live channel."""
    orphans = Orphans("q")
    first, second, third = _Lease(orphans), _Lease(orphans), _Lease(orphans)
    job = first.deliver(7)
    first.die()
    assert orphans.adopt(second.deliver(1, redelivered=True))
    second.die()
    assert orphans.adopt(third.deliver(1, redelivered=True))
    assert job.ack()
    assert third.sent == [(1, True, False)] and second.sent == []


def test_finished_jobs_are_forgotten_after_a_while(monkeypatch) -> None:
    orphans = Orphans("q")
    old, new = _Lease(orphans), _Lease(orphans)
    job = old.deliver(7)
    old.die()
    job.ack()
    now = orphans_module.time.monotonic()
    later = now + orphans_module.FINISHED_TTL + 1
    monkeypatch.setattr(orphans_module.time, "monotonic", lambda: later)
    assert not orphans.adopt(new.deliver(1, redelivered=True))
    assert not orphans.waiting


def test_a_job_that_gave_its_message_back_lets_the_copy_run() -> None:
    """An RPC reply that could not be sent requeues the request: its copy
    must run, not be requeued again."""
    orphans = Orphans("q")
    old, new = _Lease(orphans), _Lease(orphans)
    job = old.deliver(7)
    old.die()
    job.reject(requeue=True)
    assert not orphans.adopt(new.deliver(1, redelivered=True))
    assert not orphans.waiting


def test_a_requeue_reaches_a_copy_adopted_while_the_job_ran() -> None:
    orphans = Orphans("q")
    old, new = _Lease(orphans), _Lease(orphans)
    job = old.deliver(7)
    old.die()
    assert orphans.adopt(new.deliver(1, redelivered=True))
    assert job.reject(requeue=True)
    assert new.sent == [(1, False, True)]
