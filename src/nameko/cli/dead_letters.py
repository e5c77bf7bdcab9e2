"""``nameko dead-letters``: list, show and re-publish dead letters (shimeji).

A message that used up its retries (``retry=RetryPolicy(...)``) or its
deliveries (``DELIVERY_LIMIT``) waits in ``dlq-<service>.<method>`` with
headers saying why. ``list`` shows those queues (it asks ``rabbitmqctl``,
so it runs on a broker host), ``show`` prints messages without taking them,
``republish`` sends them back where they came from, acking each one only
once the broker confirmed its copy.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

from nameko._amqp.uri import parse_uri
from nameko._broker.base import Delivery
from nameko._messaging.connection import amqp_uri, open_broker
from nameko._protocol import retries as wire
from nameko._reliability import dead_letters
from nameko.cli.config import add_config_options, setup_config
from nameko.cli.main import DEFAULT_BROKER

NAME = "dead-letters"
HELP = "List, show and re-publish dead letters (dlq-<service>.<method> queues)"
SHOWN_BODY = 500  # characters of a body printed by `show`


def init_parser(parser: Any) -> None:
    parser.add_argument("action", choices=("list", "show", "republish"))
    parser.add_argument(
        "queue", nargs="?", help="service.method, or the queue's name (dlq-service.method)"
    )
    parser.add_argument(
        "-n", "--count", type=int, default=None, help="how many messages (show: 10, republish: all)"
    )
    add_config_options(parser, DEFAULT_BROKER)
    parser.set_defaults(main=main)


def main(args: Any) -> int:
    config = setup_config(args)
    if args.action == "list":
        return _list(config)
    if not args.queue:
        print(f"Error: `nameko dead-letters {args.action}` needs a queue", file=sys.stderr)
        return 2
    queue = dead_letters.queue_name(args.queue)
    with open_broker(config, "nameko:dead-letters") as broker:
        if args.action == "show":
            shown = dead_letters.peek(broker, queue, args.count or 10)
            print(f"{queue}: {broker.queue_size(queue)} message(s)")
            for number, delivery in enumerate(shown, 1):
                print(describe(number, delivery))
        else:
            sent = dead_letters.republish(broker, queue, args.count)
            for exchange, routing_key in sent:
                print(f"republished to {exchange or '(default exchange)'} / {routing_key}")
            print(f"{len(sent)} message(s) republished from {queue}")
    return 0


def _list(config: dict[str, Any]) -> int:
    uri: Any = amqp_uri(config)
    if isinstance(uri, (list, tuple)):  # several brokers (fail-over): one cluster, one vhost
        uri = uri[0]
    vhost = parse_uri(uri.split(";")[0]).vhost
    queues = dead_letters.list_queues(vhost)
    if not queues:
        print(f"no dead-letter queues in vhost {vhost!r}")
    for name, messages in queues:
        print(f"{name}\t{messages}")
    return 0


def describe(number: int, delivery: Delivery) -> str:
    """One dead letter, for people: why, where from, when, and its body."""
    headers = delivery.properties.headers or {}
    lines = [f"#{number} {headers.get(wire.ENTRYPOINT_HEADER, '?')}"]
    lines.append(f"  reason:   {headers.get(wire.REASON_HEADER, '?')}")
    if wire.ERROR_HEADER in headers:
        lines.append(f"  error:    {headers[wire.ERROR_HEADER]}")
    failed_at = headers.get(wire.FAILED_AT_HEADER)
    if isinstance(failed_at, int):
        when = datetime.fromtimestamp(failed_at / 1000, tz=timezone.utc).isoformat()
        lines.append(f"  failed:   {when}")
    attempts = headers.get(wire.ATTEMPT_HEADER) or headers.get(wire.DELIVERIES_HEADER)
    if attempts:
        lines.append(f"  attempts: {attempts}")
    origin = headers.get(wire.ORIGIN_EXCHANGE_HEADER)
    lines.append(
        f"  from:     {origin or '(default exchange)'} / "
        f"{headers.get(wire.ORIGIN_ROUTING_KEY_HEADER, '?')}"
    )
    lines.append(f"  body:     {_body(delivery)}")
    return "\n".join(lines)


def _body(delivery: Delivery) -> str:
    body = delivery.body
    try:
        text = body.decode("utf-8")
        if delivery.properties.content_type == "application/json":
            text = json.dumps(json.loads(text), ensure_ascii=False)
    except (UnicodeDecodeError, ValueError):
        text = repr(body)
    return text if len(text) <= SHOWN_BODY else text[:SHOWN_BODY] + "..."
