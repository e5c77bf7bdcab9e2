"""The threading primitives every call goes through: `OneShot` and `WorkerPool`."""

from __future__ import annotations

import threading

import pytest

from nameko._concurrency import OneShot, WorkerPool
from tests.waiting import wait_until

TIMEOUT = 5


class TestOneShot:
    def test_value_reaches_every_waiter(self):
        shot: OneShot[int] = OneShot()
        results: list[int] = []
        waiters = [
            threading.Thread(target=lambda: results.append(shot.get(TIMEOUT))) for _ in range(5)
        ]
        for waiter in waiters:
            waiter.start()
        assert shot.send(42)
        for waiter in waiters:
            waiter.join(TIMEOUT)
        assert results == [42] * 5
        assert shot.get(0) == 42  # and to anyone who asks later

    def test_only_the_first_delivery_counts(self):
        shot: OneShot[str] = OneShot()
        assert shot.send("first")
        assert not shot.send("second")
        assert not shot.send_exception(ValueError())
        assert shot.get() == "first" and shot.exception() is None

    def test_exception_is_raised_by_get(self):
        shot: OneShot[None] = OneShot()
        shot.send_exception(KeyError("gone"))
        with pytest.raises(KeyError, match="gone"):
            shot.get(TIMEOUT)
        assert shot.ready() and isinstance(shot.exception(), KeyError)

    @pytest.mark.parametrize("timeout", [0, 0.01, -1])
    def test_timeout_without_delivery(self, timeout):
        shot: OneShot[None] = OneShot()
        assert not shot.wait(timeout)
        with pytest.raises(TimeoutError):
            shot.get(timeout)
        assert not shot.ready()

    def test_huge_timeout_is_accepted(self):
        shot: OneShot[int] = OneShot()
        shot.send(1)
        assert shot.wait(1e12)
        other: OneShot[int] = OneShot()
        threading.Timer(0.01, other.send, (2,)).start()
        assert other.get(1e12) == 2

    def test_callbacks_run_once_in_the_delivering_thread_or_at_once(self):
        shot: OneShot[int] = OneShot()
        seen: list[tuple[str, int]] = []
        shot.add_done_callback(lambda s: seen.append((threading.current_thread().name, s.get())))
        deliverer = threading.Thread(target=shot.send, args=(7,), name="deliverer")
        deliverer.start()
        deliverer.join(TIMEOUT)
        shot.add_done_callback(lambda s: seen.append((threading.current_thread().name, s.get())))
        assert seen == [("deliverer", 7), (threading.current_thread().name, 7)]

    def test_racing_senders_deliver_exactly_once(self):
        for _ in range(50):
            self._race_once()

    @staticmethod
    def _race_once() -> None:
        shot: OneShot[int] = OneShot()
        calls: list[int] = []
        shot.add_done_callback(lambda s: calls.append(s.get()))
        wins: list[bool] = []
        senders = [threading.Thread(target=lambda n=n: wins.append(shot.send(n))) for n in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(TIMEOUT)
        assert wins.count(True) == 1 and calls == [shot.get(0)]


class TestWorkerPool:
    def test_never_more_than_size_at_once_and_fifo_after(self):
        pool = WorkerPool(3, name="t")
        gate = threading.Event()
        started: list[int] = []
        lock = threading.Lock()

        def job(n: int) -> None:
            with lock:
                started.append(n)
            gate.wait(TIMEOUT)

        for n in range(7):
            pool.submit(lambda n=n: job(n))
        wait_until(lambda: len(started) == 3)
        assert pool.running() == 3 and pool.pending == 4 and pool.free() == -4
        gate.set()
        assert pool.wait_idle(TIMEOUT)
        assert sorted(started[:3]) == [0, 1, 2] and started[3:] == [3, 4, 5, 6]
        assert len(pool._threads) == 3  # threads are reused, never more than size
        pool.close()

    def test_threads_start_lazily(self):
        pool = WorkerPool(10)
        for _ in range(3):
            done = threading.Event()
            pool.submit(done.set)
            assert done.wait(TIMEOUT)
            assert pool.wait_idle(TIMEOUT)
        assert len(pool._threads) == 1
        pool.close()

    def test_a_failing_job_does_not_kill_its_thread(self):
        pool = WorkerPool(1)

        def boom() -> None:
            raise RuntimeError("job failed")

        pool.submit(boom)
        done = threading.Event()
        pool.submit(done.set)
        assert done.wait(TIMEOUT) and pool.wait_idle(TIMEOUT)
        pool.close()

    def test_wait_idle_times_out_while_busy(self):
        pool = WorkerPool(1)
        gate = threading.Event()
        pool.submit(lambda: gate.wait(TIMEOUT))
        assert not pool.wait_idle(0.01)
        gate.set()
        assert pool.wait_idle(TIMEOUT)
        pool.close()

    def test_drop_pending_returns_jobs_not_started(self):
        pool = WorkerPool(1)
        gate = threading.Event()
        running = threading.Event()
        pool.submit(lambda: (running.set(), gate.wait(TIMEOUT)))
        assert running.wait(TIMEOUT)
        later = [lambda: None, lambda: None]
        for job in later:
            pool.submit(job)
        assert pool.drop_pending() == later
        assert pool.pending == 0 and pool.running() == 1
        gate.set()
        assert pool.wait_idle(TIMEOUT)
        pool.close()

    def test_close_lets_queued_jobs_finish_then_threads_exit(self):
        pool = WorkerPool(2)
        gate = threading.Event()
        ran: list[int] = []
        for n in range(4):
            pool.submit(lambda n=n: (gate.wait(TIMEOUT), ran.append(n)))
        pool.close()
        with pytest.raises(RuntimeError, match="closed"):
            pool.submit(lambda: None)
        assert pool.drop_pending() != []  # close markers are never handed out as jobs
        gate.set()
        for thread in pool._threads:
            thread.join(TIMEOUT)
            assert not thread.is_alive()
        assert pool.wait_idle(TIMEOUT)

    def test_idle_threads_retire_and_busy_ones_stay(self):
        pool = WorkerPool(4, idle_timeout=0.05)
        gates = [threading.Event() for _ in range(4)]
        running = [threading.Event() for _ in range(4)]
        for gate, started in zip(gates, running, strict=True):
            pool.submit(lambda g=gate, s=started: (s.set(), g.wait(TIMEOUT)))
        assert all(started.wait(TIMEOUT) for started in running) and pool.threads == 4
        for gate in gates[1:]:
            gate.set()
        wait_until(lambda: pool.threads == 1, timeout=TIMEOUT, what="three idle threads left")
        gates[0].set()
        wait_until(lambda: pool.threads == 0, timeout=TIMEOUT, what="the last one left")
        done = threading.Event()
        pool.submit(done.set)  # a retired pool starts threads again
        assert done.wait(TIMEOUT) and pool.threads <= 1
        pool.close()

    def test_a_thread_retiring_as_a_job_arrives_never_strands_it(self):
        pool = WorkerPool(2, idle_timeout=0.0005)  # threads time out between most jobs
        for n in range(500):
            done = threading.Event()
            pool.submit(done.set)
            assert done.wait(TIMEOUT), f"job {n} was never run"
        names = {thread.name for thread in pool._threads}
        assert len(names) == len(pool._threads)  # names stay unique across retirements
        pool.close()

    def test_size_must_be_positive(self):
        with pytest.raises(ValueError):
            WorkerPool(0)
