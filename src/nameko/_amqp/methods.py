"""The pamqp methods that carry queue and exchange names, checked as RabbitMQ checks them.

pamqp holds names to the AMQP 0-9-1 grammar: ASCII letters, digits and a few
punctuation marks, at most 127 characters. RabbitMQ accepts any UTF-8 name
up to 255 bytes, and so did nameko 2.14 through py-amqp, so a service named
``"问候服务"`` has to work. These subclasses swap pamqp's check for
RabbitMQ's; their frames are pamqp's own.
"""

from __future__ import annotations

from pamqp import commands

__all__ = [
    "BasicConsume",
    "ExchangeDeclare",
    "QueueBind",
    "QueueDeclare",
    "QueueDelete",
    "check_name",
]

MAX_NAME_BYTES = 255  # a shortstr


def check_name(kind: str, name: str | None) -> None:
    """Raise `ValueError` for a name RabbitMQ would refuse."""
    if name is not None and len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValueError(f"{kind} name longer than {MAX_NAME_BYTES} bytes: {name!r}")


class ExchangeDeclare(commands.Exchange.Declare):
    def validate(self) -> None:
        check_name("exchange", self.exchange)


class QueueDeclare(commands.Queue.Declare):
    def validate(self) -> None:
        check_name("queue", self.queue)


class QueueBind(commands.Queue.Bind):
    def validate(self) -> None:
        check_name("queue", self.queue)
        check_name("exchange", self.exchange)


class QueueDelete(commands.Queue.Delete):
    def validate(self) -> None:
        check_name("queue", self.queue)


class BasicConsume(commands.Basic.Consume):
    def validate(self) -> None:
        check_name("queue", self.queue)
