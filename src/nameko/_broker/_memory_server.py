"""State of one in-memory broker: exchanges, queues, bindings, consumers.

`Server` implements the broker side of AMQP 0-9-1 as RabbitMQ 3.10 does it;
`nameko._broker.memory` holds the connections (`MemoryBroker`) that talk to
it. The routing rules themselves are pure functions in `_memory_routing`.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from nameko._broker._memory_routing import EXCHANGE_TYPES, check_x_match, copy_headers, route
from nameko._broker.base import (
    Binding,
    ChannelError,
    Entity,
    Exchange,
    NotFound,
    PreconditionFailed,
    Properties,
    Queue,
)
from nameko._concurrency import Condition, Lock, start_thread

if TYPE_CHECKING:
    from nameko._broker.memory import MemoryBroker, MemoryConsumer

__all__ = ["ACTIVE", "CANCELLED", "CLOSED", "Message", "QueueState", "Server"]

ACCESS_REFUSED = 403
RESOURCE_LOCKED = 405
COMMAND_INVALID = 503

# RabbitMQ compares only these arguments on re-declaration (and the queue
# type, `_check_same_type`); others are ignored.
_CHECKED_QUEUE_ARGS = (
    "x-expires",
    "x-message-ttl",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-priority",
    "x-queue-mode",
    "x-single-active-consumer",
)
_CHECKED_EXCHANGE_ARGS = ("alternate-exchange",)
_PREDECLARED = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}
_OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
_QUEUE_TYPES = ("classic", "quorum", "stream")
# what a replicated queue (quorum, stream) refuses, in RabbitMQ's words
_REPLICATED_REFUSES = (("durable", False, "non-durable"), ("auto_delete", True, "auto-delete"))
# consumer states
ACTIVE, CANCELLED, CLOSED = "active", "cancelled", "closed"


@dataclass(eq=False)
class Message:
    seq: int  # position in its queue, so a requeue can restore it
    body: bytes
    properties: Properties  # private snapshot: deliveries get their own copies
    exchange: str
    routing_key: str
    expires_at: float | None  # monotonic seconds, from the queue or message TTL
    redelivered: bool = False


@dataclass(eq=False)
class ExchangeState:
    decl: Exchange
    bindings: list[Binding]


class QueueState:
    def __init__(self, decl: Queue, owner: MemoryBroker, now: float) -> None:
        args = decl.arguments
        self.decl = decl
        self.name = decl.name
        self.owner = owner if decl.exclusive else None
        self.messages: deque[Message] = deque()
        self.consumers: list[MemoryConsumer] = []
        self.cursor = 0  # round-robin position in consumers
        self.next_seq = 0
        self.had_consumer = False
        self.deleted = False
        self.idle_since = now  # for x-expires: last declare or last consumer gone
        self.expires = _seconds(args.get("x-expires"))
        self.ttl = _seconds(args.get("x-message-ttl"))
        self.max_length: int | None = args.get("x-max-length")
        self.reject_publish = args.get("x-overflow", "drop-head") != "drop-head"
        self.quorum = args.get("x-queue-type") == "quorum"
        # x-single-active-consumer: only the earliest attached consumer gets
        # deliveries; when it goes, the next one takes over (RabbitMQ 3.10)
        self.single_active = args.get("x-single-active-consumer") is True
        self.dead_letter_exchange: str | None = args.get("x-dead-letter-exchange")
        self.dead_letter_key: str | None = args.get("x-dead-letter-routing-key")

    def next_consumer(self) -> MemoryConsumer | None:
        """Round-robin over the consumers with room, resuming after the last one served."""
        if self.single_active:
            active = self.consumers[0] if self.consumers else None
            return active if active is not None and active.has_room() else None
        count = len(self.consumers)
        for step in range(count):
            index = (self.cursor + step) % count
            if self.consumers[index].has_room():
                self.cursor = (index + 1) % count
                return self.consumers[index]
        return None

    def remove_consumer(self, consumer: MemoryConsumer) -> None:
        index = self.consumers.index(consumer)
        del self.consumers[index]
        if index < self.cursor:
            self.cursor -= 1
        if self.cursor >= len(self.consumers):
            self.cursor = 0

    def requeue(self, message: Message) -> None:
        # Back to its original position, as RabbitMQ's classic queues do.
        message.redelivered = True
        if self.quorum:  # quorum queues count returns in a header, as RabbitMQ 3.10 does
            headers = copy_headers(message.properties.headers or {})
            headers["x-delivery-count"] = headers.get("x-delivery-count", 0) + 1
            message.properties = replace(message.properties, headers=headers)
        position = next(
            (i for i, queued in enumerate(self.messages) if queued.seq > message.seq),
            len(self.messages),
        )
        self.messages.insert(position, message)

    def is_full(self) -> bool:
        # only ready messages count against x-max-length, as in RabbitMQ
        return self.max_length is not None and len(self.messages) >= self.max_length


def _seconds(milliseconds: int | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000.0


def _expiration_seconds(expiration: str | None) -> float | None:
    if expiration is None:
        return None
    if not (expiration.isascii() and expiration.isdigit()):
        raise PreconditionFailed(f"PRECONDITION_FAILED - invalid expiration {expiration!r}")
    return int(expiration) / 1000.0


def _check_queue_arguments(name: str, args: Mapping[str, Any]) -> None:
    for key, minimum in (("x-expires", 1), ("x-message-ttl", 0), ("x-max-length", 0)):
        value = args.get(key)
        if value is not None and (type(value) is not int or value < minimum):
            raise PreconditionFailed(
                f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}': {value!r}"
            )
    if args.get("x-overflow", "drop-head") not in _OVERFLOW_MODES:
        raise PreconditionFailed(
            f"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue '{name}'"
        )
    if queue_type(args) not in _QUEUE_TYPES:
        raise PreconditionFailed(
            f"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '{name}': "
            f"unsupported queue type '{queue_type(args)}'"
        )


def queue_type(args: Mapping[str, Any]) -> str:
    """A queue's type; no ``x-queue-type`` means classic, as on RabbitMQ."""
    return str(args.get("x-queue-type") or "classic")


def _check_queue_properties(decl: Queue) -> None:
    """Quorum and stream queues are replicated: RabbitMQ refuses them
    non-durable, auto-delete or exclusive."""
    if queue_type(decl.arguments) == "classic":
        return
    refused = [word for attr, bad, word in _REPLICATED_REFUSES if getattr(decl, attr) is bad]
    refused += ["exclusive-owner"] if decl.exclusive else []
    if refused:
        raise PreconditionFailed(
            f"PRECONDITION_FAILED - invalid property '{refused[0]}' for queue '{decl.name}'"
        )


def _check_same_type(old: Queue, new: Queue) -> None:
    """As RabbitMQ words it (``none``: no argument, which means classic)."""
    if queue_type(old.arguments) == queue_type(new.arguments):
        return

    def shown(args: Mapping[str, Any]) -> str:
        value = args.get("x-queue-type")
        return "none" if value is None else f"the value '{value}'"

    raise PreconditionFailed(
        f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{old.name}': "
        f"received {shown(new.arguments)} but current is {shown(old.arguments)}"
    )


def _check_equivalent(
    kind: str,
    old: Exchange | Queue,
    new: Exchange | Queue,
    fields: Iterable[str],
    args: Iterable[str],
) -> None:
    changed = [f for f in fields if getattr(old, f) != getattr(new, f)]
    changed += [a for a in args if old.arguments.get(a) != new.arguments.get(a)]
    if changed:
        raise PreconditionFailed(
            f"PRECONDITION_FAILED - inequivalent arg '{changed[0]}' for {kind} '{old.name}'"
        )


def _access_refused(what: str) -> ChannelError:
    return ChannelError(f"ACCESS_REFUSED - {what}", ACCESS_REFUSED)


def _locked(name: str) -> ChannelError:
    return ChannelError(
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}'",
        RESOURCE_LOCKED,
    )


class Server:
    """Exchanges, queues and bindings of one ``memory://`` broker.

    One lock guards everything, including consumer bookkeeping. Nothing
    called under it runs user code: deliveries are only queued to the
    connections' dispatch threads (lock order: server, then connection).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = Lock()
        self.exchanges = {n: ExchangeState(Exchange(n, t), []) for n, t in _PREDECLARED.items()}
        self.queues: dict[str, QueueState] = {}
        self._expiring: set[QueueState] = set()  # queues with x-expires
        self._dead_lettering: set[QueueState] = set()  # with a DLX and messages that expire
        self._janitor_wake = Condition(self.lock)
        self._janitor_running = False
        self._forgotten = False

    def forget(self) -> None:
        with self.lock:
            self._forgotten = True
            self._janitor_wake.notify_all()

    # topology

    def declare(self, conn: MemoryBroker, entities: Iterable[Entity]) -> None:
        """Declare in order. Unlike RabbitMQ (403 ACCESS_REFUSED), the seam
        accepts and ignores the default exchange and bindings to it, so that
        callers can declare generic topologies; the rabbit broker does the same."""
        with self.lock:
            conn.require_open()
            self._declare(conn, entities)

    def _declare(self, conn: MemoryBroker, entities: Iterable[Entity]) -> None:
        for entity in entities:
            if isinstance(entity, Exchange):
                self._declare_exchange(entity)
            elif isinstance(entity, Queue):
                self._declare_queue(conn, entity)
            elif isinstance(entity, Binding):
                self._bind(conn, entity)
            else:
                raise TypeError(f"cannot declare {entity!r}")

    def _declare_exchange(self, decl: Exchange) -> None:
        if decl.name == "":
            return  # the seam's choice: the default exchange is always there (see declare)
        if decl.type not in EXCHANGE_TYPES:
            raise ChannelError(
                f"COMMAND_INVALID - unknown exchange type '{decl.type}'", COMMAND_INVALID
            )
        existing = self.exchanges.get(decl.name)
        if existing is not None:
            fields = ("type", "durable", "auto_delete")
            _check_equivalent("exchange", existing.decl, decl, fields, _CHECKED_EXCHANGE_ARGS)
        elif decl.name.startswith("amq."):
            raise _access_refused(f"exchange name '{decl.name}' contains reserved prefix 'amq.*'")
        else:
            decl = replace(decl, arguments=copy_headers(decl.arguments))
            self.exchanges[decl.name] = ExchangeState(decl, [])

    def _declare_queue(self, conn: MemoryBroker, decl: Queue) -> None:
        if decl.name.startswith("amq."):
            raise _access_refused(f"queue name '{decl.name}' contains reserved prefix 'amq.*'")
        _check_queue_arguments(decl.name, decl.arguments)
        _check_queue_properties(decl)
        now = time.monotonic()
        queue = self.queues.get(decl.name)
        if queue is None:
            # the seam cannot return a server-named queue's name, but accept it
            name = decl.name or f"amq.gen-{secrets.token_urlsafe(16)}"
            decl = replace(decl, name=name, arguments=copy_headers(decl.arguments))
            queue = self.queues[name] = QueueState(decl, conn, now)
            if queue.expires is not None:
                self._expiring.add(queue)
        else:
            # exclusivity must match exactly; RabbitMQ checks it before the rest
            if queue.owner is not (conn if decl.exclusive else None):
                raise _locked(queue.name)
            fields = ("auto_delete",) if queue.owner else ("durable", "auto_delete")
            _check_same_type(queue.decl, decl)
            _check_equivalent("queue", queue.decl, decl, fields, _CHECKED_QUEUE_ARGS)
            queue.idle_since = now  # a re-declaration counts as use for x-expires
        self._expiry_changed()

    def _bind(self, conn: MemoryBroker, binding: Binding) -> None:
        if binding.exchange == "":
            return  # the default exchange binds every queue by its name already
        exchange = self._exchange(binding.exchange)
        self._queue(conn, binding.queue)
        if exchange.decl.type == "headers" and (problem := check_x_match(binding.arguments)):
            raise PreconditionFailed(f"PRECONDITION_FAILED - {problem}")
        binding = replace(binding, arguments=copy_headers(binding.arguments))
        if binding not in exchange.bindings:
            exchange.bindings.append(binding)

    def _exchange(self, name: str) -> ExchangeState:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise NotFound(f"NOT_FOUND - no exchange '{name}'")
        return exchange

    def _queue(self, conn: MemoryBroker, name: str) -> QueueState:
        """The queue, if it exists and ``conn`` may use it (exclusive queues)."""
        queue = self.queues.get(name)
        if queue is None:
            raise NotFound(f"NOT_FOUND - no queue '{name}'")
        if queue.owner is not None and queue.owner is not conn:
            raise _locked(name)
        return queue

    def queue_size(self, conn: MemoryBroker, name: str) -> int:
        with self.lock:
            conn.require_open()
            queue = self._queue(conn, name)
            self._pump(queue, time.monotonic())  # what expired is not waiting any more
            return len(queue.messages)

    def delete_queue(self, conn: MemoryBroker, name: str) -> None:
        with self.lock:
            conn.require_open()
            if name in self.queues:
                self._remove_queue(self._queue(conn, name))

    def _remove_queue(self, queue: QueueState) -> None:
        queue.deleted = True  # later acks of its deliveries become no-ops
        del self.queues[queue.name]
        if queue in self._expiring:
            self._expiring.discard(queue)
            self._janitor_wake.notify()  # it exits once no x-expires queue is left
        queue.messages.clear()
        for consumer in queue.consumers:
            # RabbitMQ cancels them (basic.cancel); those that declare the
            # queue declare it again and consume it, as the rabbit broker does
            if consumer.redeclares_queue:
                consumer.connection._post_restore(consumer)
            else:
                consumer.state = CANCELLED
                consumer.lost = True
        queue.consumers.clear()
        for name, exchange in list(self.exchanges.items()):
            kept = [b for b in exchange.bindings if b.queue != queue.name]
            if len(kept) < len(exchange.bindings):
                exchange.bindings = kept
                if not kept and exchange.decl.auto_delete:
                    del self.exchanges[name]  # its last binding is gone

    # messages

    def publish(
        self, conn: MemoryBroker, exchange: str, routing_key: str, body: bytes, props: Properties
    ) -> tuple[int, bool]:
        """Route and enqueue; returns (queues matched, refused by a full queue)."""
        ttl = _expiration_seconds(props.expiration)
        with self.lock:
            conn.require_open()
            queues = self._targets(exchange, routing_key, props.headers)
            now = time.monotonic()
            refused = False
            for queue in queues:
                if queue.reject_publish and queue.is_full():
                    refused = True
                    continue
                ttls = [t for t in (queue.ttl, ttl) if t is not None]
                expires_at = now + min(ttls) if ttls else None
                message = Message(queue.next_seq, body, props, exchange, routing_key, expires_at)
                queue.next_seq += 1
                self._enqueue(queue, message, now)
            return len(queues), refused

    def _targets(
        self, exchange: str, routing_key: str, headers: Mapping[str, Any]
    ) -> list[QueueState]:
        if exchange == "":  # the default exchange: every queue, bound by its name
            queue = self.queues.get(routing_key)
            return [queue] if queue is not None else []
        state = self._exchange(exchange)
        names = route(state.decl.type, state.bindings, routing_key, headers)
        return [self.queues[name] for name in names]

    def _enqueue(self, queue: QueueState, message: Message, now: float) -> None:
        queue.messages.append(message)
        self._pump(queue, now)
        if message.expires_at == now and queue.messages and queue.messages[-1] is message:
            queue.messages.pop()  # TTL 0: delivered at once or never
            self._dead_letter(queue, message, "expired", now)
        elif self._expires_into_dlx(queue, message):
            self._dead_lettering.add(queue)  # the janitor expires it in time
            self._expiry_changed()
        if not queue.reject_publish and queue.max_length is not None:
            while len(queue.messages) > queue.max_length:
                queue.messages.popleft()  # x-overflow drop-head

    def _pump(self, queue: QueueState, now: float) -> None:
        """Hand out ready messages while some consumer has room."""
        while queue.messages:
            head = queue.messages[0]
            if head.expires_at is not None and head.expires_at < now:
                queue.messages.popleft()  # TTL is enforced at the head, like RabbitMQ
                self._dead_letter(queue, head, "expired", now)
                continue
            consumer = queue.next_consumer()
            if consumer is None:
                return
            queue.messages.popleft()
            consumer.deliver(head)

    # consumers

    def add_consumer(self, conn: MemoryBroker, consumer: MemoryConsumer) -> None:
        with self.lock:
            conn.require_open()
            self._attach(conn, consumer)

    def _attach(self, conn: MemoryBroker, consumer: MemoryConsumer) -> None:
        queue = self._queue(conn, consumer.queue)
        consumer.queue_state = queue
        conn.consumers.add(consumer)
        queue.consumers.append(consumer)
        queue.had_consumer = True
        self._pump(queue, time.monotonic())

    def restore_consumer(
        self, conn: MemoryBroker, consumer: MemoryConsumer, topology: Iterable[Entity]
    ) -> bool:
        """Declare again the topology of a consumer whose queue was deleted,
        and consume the new queue; False if it was cancelled or closed since.
        A failed declaration ends the consumer and raises."""
        with self.lock:
            if conn.closed or consumer.state != ACTIVE:
                return False
            try:
                self._declare(conn, topology)
            except BaseException:
                consumer.state = CANCELLED
                consumer.lost = True
                raise
            consumer.unacked = {}  # those messages went with the deleted queue
            self._attach(conn, consumer)
            return True

    def remove_consumer(self, consumer: MemoryConsumer, requeue: bool) -> None:
        with self.lock:
            self._remove_consumer(consumer, requeue)

    def _remove_consumer(self, consumer: MemoryConsumer, requeue: bool) -> None:
        queue = consumer.queue_state
        was_active = consumer.state == ACTIVE
        if consumer.state == CLOSED or (not requeue and not was_active) or queue is None:
            return
        consumer.state = CLOSED if requeue else CANCELLED
        if requeue:
            consumer.connection.consumers.discard(consumer)
            unsettled, consumer.unacked = consumer.unacked, {}
        if queue.deleted:
            return
        if was_active:
            queue.remove_consumer(consumer)
        if requeue:
            for message in sorted(unsettled.values(), key=lambda m: m.seq):
                queue.requeue(message)
        if was_active and not queue.consumers:
            if queue.decl.auto_delete and queue.had_consumer:
                self._remove_queue(queue)
                return
            queue.idle_since = time.monotonic()
            self._expiry_changed()
        self._pump(queue, time.monotonic())

    def settle(self, consumer: MemoryConsumer, tag: int, ack: bool, requeue: bool) -> bool:
        """False when the delivery was given back already (channel closed)."""
        with self.lock:
            message = consumer.unacked.pop(tag, None)
            queue = consumer.queue_state
            if message is None or queue is None or queue.deleted:
                return message is not None  # given back already, or the queue is gone
            if not ack and requeue:
                queue.requeue(message)
            elif not ack:
                self._dead_letter(queue, message, "rejected", time.monotonic())
            self._pump(queue, time.monotonic())
            return True

    def close_connection(self, conn: MemoryBroker) -> bool:
        """Requeue the connection's unsettled deliveries and drop its exclusive
        queues; False if it was already closed."""
        with self.lock:
            if conn.closed:
                return False
            conn.closed = True
            for consumer in list(conn.consumers):
                self._remove_consumer(consumer, requeue=True)
            for queue in [q for q in self.queues.values() if q.owner is conn]:
                self._remove_queue(queue)
            return True

    # dead-lettering (x-dead-letter-exchange)

    def _dead_letter(self, queue: QueueState, message: Message, reason: str, now: float) -> None:
        """Route a message that expired in, or was rejected by, ``queue`` to
        the queue's dead-letter exchange, as RabbitMQ does: with an ``x-death``
        record, without its expiration; dropped if the exchange is missing or
        the message would expire back into the same queue (a cycle)."""
        exchange = queue.dead_letter_exchange
        if exchange is None:
            return
        routing_key = queue.dead_letter_key or message.routing_key
        try:
            targets = self._targets(exchange, routing_key, message.properties.headers)
        except NotFound:
            return
        headers = _with_death(message, queue.name, reason)
        props = replace(message.properties, headers=headers, expiration=None)
        for target in targets:
            if target is queue and reason == "expired":
                continue
            ttl = target.ttl
            expires_at = now + ttl if ttl is not None else None
            moved = Message(target.next_seq, message.body, props, exchange, routing_key, expires_at)
            target.next_seq += 1
            self._enqueue(target, moved, now)

    def _expires_into_dlx(self, queue: QueueState, message: Message) -> bool:
        """Whether ``message`` makes ``queue`` one the janitor must watch."""
        watched = queue in self._dead_lettering
        return (
            not watched
            and message.expires_at is not None
            and queue.dead_letter_exchange is not None
        )

    def _expire_dead_letters(self, now: float) -> list[float]:
        """Dead-letter what expired at the heads of DLX queues (the janitor's
        half for them); returns when the next heads expire."""
        deadlines = []
        for queue in list(self._dead_lettering):
            self._pump(queue, now)  # expires the head, and what follows it
            head = queue.messages[0] if queue.messages else None
            if head is None or queue.deleted:
                self._dead_lettering.discard(queue)
            elif head.expires_at is not None:
                deadlines.append(head.expires_at)
        return deadlines

    # x-expires

    def _expiry_changed(self) -> None:
        """Wake the janitor (start it if needed) after an x-expires queue changed."""
        if not self._expiring and not self._dead_lettering:
            return
        if self._janitor_running:
            self._janitor_wake.notify()
        else:
            self._janitor_running = True
            start_thread(self._janitor, f"memory-broker-expiry-{self.name or 'default'}")

    def _janitor(self) -> None:
        # One thread per server while it has x-expires queues (deletes unused
        # ones) or DLX queues with messages that expire (dead-letters them).
        with self.lock:
            while (self._expiring or self._dead_lettering) and not self._forgotten:
                now = time.monotonic()
                deadlines = self._expire_dead_letters(now)
                for queue in list(self._expiring):
                    if queue.consumers or queue.expires is None:  # (only x-expires queues here)
                        continue  # in use; a consumer leaving wakes us
                    due = queue.idle_since + queue.expires
                    if due <= now:
                        self._remove_queue(queue)
                    else:
                        deadlines.append(due)
                self._janitor_wake.wait(min(deadlines) - now if deadlines else None)
            self._janitor_running = False


def _with_death(message: Message, queue: str, reason: str) -> dict[str, Any]:
    """The headers of a dead-lettered copy: an ``x-death`` entry per (queue,
    reason), newest first, counted; ``x-first-death-*`` set once."""
    headers = copy_headers(message.properties.headers or {})
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    same = next((d for d in deaths if (d.get("queue"), d.get("reason")) == (queue, reason)), None)
    if same is not None:
        deaths.remove(same)
        same["count"] = same.get("count", 0) + 1
        entry = same
    else:
        entry = {"count": 1, "reason": reason, "queue": queue}
    entry["time"] = datetime.now(timezone.utc).replace(microsecond=0)
    entry["exchange"] = message.exchange
    entry["routing-keys"] = [message.routing_key]
    if message.properties.expiration is not None:
        entry["original-expiration"] = message.properties.expiration
    headers["x-death"] = [entry, *deaths]
    headers.setdefault("x-first-death-exchange", message.exchange)
    headers.setdefault("x-first-death-queue", queue)
    headers.setdefault("x-first-death-reason", reason)
    return headers
