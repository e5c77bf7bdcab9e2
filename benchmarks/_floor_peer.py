"""Both sides of ``bench_floor.py``'s contract floor: plain py-amqp, no framework.

How it works: ``serve`` is the service side, ``call`` the client side, each in its
own process (as a ``nameko run`` service and its client are), speaking nameko 2.14's
RPC wire contract with nothing else:

- the request goes to the durable topic exchange ``nameko-rpc`` with routing key
  ``<service>.echo``, persistent, mandatory, JSON ``{"args": [...], "kwargs": {}}``,
  with ``reply_to`` and ``correlation_id``; the client waits for its publisher
  confirm (``--mode seq``) or keeps a window of unconfirmed requests and counts a
  call done once both its confirm and its reply arrived (``--mode pipe``);
- the service consumes the durable queue ``rpc-<service>`` (bound with
  ``<service>.*``, prefetch 10 as ``max_workers: 10``), publishes a persistent
  ``{"result": ..., "error": null}`` to ``nameko-rpc`` with routing key = reply_to,
  and acks the request once that reply is confirmed;
- the reply queue is durable with ``x-expires``, bound to ``nameko-rpc`` by its own
  name; the client acks each reply.

``--light 1`` on both sides is the no-confirm, no-ack floor: same exchange and
queues, transient messages, no confirms, consumers with ``no_ack``.

The client prints one JSON line (calls/s and, with ``--cpu-pids``, CPU per call
of each named process, read as ``_bench_client.py`` does).
"""

from __future__ import annotations

import argparse
import json
import select
import sys
import time
import uuid
from typing import Any

import amqp
from _bench_client import CpuMeter

EXCHANGE = "nameko-rpc"
PREFETCH = 10  # a nameko service's max_workers
REPLY_EXPIRES_MS = 300_000


def connect(args: argparse.Namespace) -> tuple[amqp.Connection, Any]:
    conn = amqp.Connection(
        args.host, userid="guest", password="guest", virtual_host=args.vhost, heartbeat=0
    )
    conn.connect()
    channel = conn.channel()
    channel.exchange_declare(EXCHANGE, "topic", durable=True, auto_delete=False)
    return conn, channel


def returned(*args: Any) -> None:
    raise RuntimeError("a mandatory message was returned unroutable")


def serve(args: argparse.Namespace) -> None:
    conn, channel = connect(args)
    queue = f"rpc-{args.service}"
    channel.queue_declare(queue, durable=True, auto_delete=False)
    channel.queue_bind(queue, EXCHANGE, f"{args.service}.*")
    light = bool(args.light)
    waiting: dict[int, int] = {}  # reply's publish sequence number -> request's delivery tag
    sequence = 0
    if not light:
        channel.basic_qos(0, PREFETCH, False)
        channel.confirm_select()

        def on_ack(tag: int, multiple: bool) -> None:
            for seq in [s for s in waiting if s <= tag] if multiple else [tag]:
                channel.basic_ack(waiting.pop(seq))

        channel.events["basic_ack"].add(on_ack)

    def handle(message: amqp.Message) -> None:
        nonlocal sequence
        props = message.properties
        request = json.loads(message.body)
        body = json.dumps({"result": request["args"][0], "error": None})
        reply = amqp.Message(
            body,
            content_type="application/json",
            correlation_id=props["correlation_id"],
            delivery_mode=1 if light else 2,
        )
        channel.basic_publish(reply, exchange=EXCHANGE, routing_key=props["reply_to"])
        if not light:
            sequence += 1
            waiting[sequence] = message.delivery_tag  # acked when the reply is confirmed

    channel.basic_consume(queue, callback=handle, no_ack=light)
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:
        try:
            conn.drain_events(timeout=0.2)
        except TimeoutError:
            pass
    conn.close()


class Caller:
    def __init__(self, args: argparse.Namespace) -> None:
        self.conn, self.channel = connect(args)
        self.light = bool(args.light)
        self.routing_key = f"{args.service}.echo"
        self.reply_queue = f"rpc.reply-floor-{uuid.uuid4()}"
        self.channel.queue_declare(
            self.reply_queue,
            durable=True,
            auto_delete=False,
            arguments={"x-expires": REPLY_EXPIRES_MS},
        )
        self.channel.queue_bind(self.reply_queue, EXCHANGE, self.reply_queue)
        self.channel.basic_consume(self.reply_queue, callback=self._on_reply, no_ack=self.light)
        self.replies: dict[str, Any] = {}
        self.unconfirmed: set[int] = set()
        self.sequence = 0
        if not self.light:
            self.channel.confirm_select()
            self.channel.events["basic_ack"].add(self._on_confirm)
            self.channel.events["basic_return"].add(returned)

    def _on_reply(self, message: amqp.Message) -> None:
        self.replies[message.properties["correlation_id"]] = json.loads(message.body)["result"]
        if not self.light:
            self.channel.basic_ack(message.delivery_tag)

    def _on_confirm(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.unconfirmed -= {t for t in self.unconfirmed if t <= tag}
        else:
            self.unconfirmed.discard(tag)

    def publish(self, value: int) -> str:
        correlation_id = str(uuid.uuid4())
        message = amqp.Message(
            json.dumps({"args": [value], "kwargs": {}}),
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=self.reply_queue,
            delivery_mode=1 if self.light else 2,
            application_headers={"nameko.call_id_stack": [f"floor.{correlation_id}"]},
        )
        self.channel.basic_publish(
            message, exchange=EXCHANGE, routing_key=self.routing_key, mandatory=not self.light
        )
        if not self.light:
            self.sequence += 1
            self.unconfirmed.add(self.sequence)
        return correlation_id

    def call(self, value: int) -> None:
        correlation_id = self.publish(value)
        while self.unconfirmed:  # the naive client: its confirm, then its reply
            self.conn.drain_events(timeout=10)
        while correlation_id not in self.replies:
            self.conn.drain_events(timeout=10)
        if self.replies.pop(correlation_id) != value:
            raise AssertionError("the echo returned another value")

    def pipelined(self, calls: int, inflight: int) -> None:
        """A window of ``inflight`` calls; a call is done when answered, and the run
        when every request is also confirmed (a confirm is cumulative in practice)."""
        sent: dict[str, int] = {}
        done = 0
        while done < calls:
            while len(sent) < inflight and done + len(sent) < calls:
                value = done + len(sent)
                sent[self.publish(value)] = value
            self.conn.drain_events(timeout=10)
            for correlation_id in [c for c in sent if c in self.replies]:
                if self.replies.pop(correlation_id) != sent.pop(correlation_id):
                    raise AssertionError("the echo returned another value")
                done += 1
        while self.unconfirmed:
            self.conn.drain_events(timeout=10)


def call(args: argparse.Namespace) -> None:
    meter = CpuMeter(args.cpu_pids)
    caller = Caller(args)
    run = (
        (lambda n: [caller.call(i) for i in range(n)])
        if args.mode == "seq"
        else (lambda n: caller.pipelined(n, args.inflight))
    )
    run(args.warmup)
    meter.start()
    started = time.perf_counter()
    run(args.calls)
    elapsed = time.perf_counter() - started
    cpu = meter.stop(args.calls)
    caller.conn.close()
    print(json.dumps({**cpu, "calls_per_s": args.calls / elapsed}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("serve", "call"))
    parser.add_argument("--host", default="127.0.0.1:5672")
    parser.add_argument("--vhost", default="/")
    parser.add_argument("--service", default="floor")
    parser.add_argument("--light", type=int, default=0, help="1: no confirms, no acks")
    parser.add_argument("--mode", choices=("seq", "pipe"), default="seq")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--cpu-pids", default="", help="name=pid,... ('self': this client)")
    args = parser.parse_args(argv)
    (serve if args.role == "serve" else call)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
