"""The error for a broker that refused the login or the vhost.

How it works
------------
Code written for nameko 2.14 catches py-amqp's ``amqp.exceptions.AccessRefused``
(403) or ``NotAllowed`` (530) around a first connection, because nameko's
transport surfaced py-amqp's errors unchanged. We don't depend on py-amqp, and
Python's ``except`` matches by real inheritance only (``register`` on an ABC
is not consulted), so the error has to *be* a subclass of py-amqp's class to
be caught there. `refused_error` therefore builds, once per reply code, a
class deriving from both `BrokerRefused` and py-amqp's class, but only when
``amqp.exceptions`` is already imported: whoever wants to catch py-amqp's
error has imported it. Otherwise the plain `BrokerRefused` is raised, and
py-amqp is never imported by us. This runs once per refused connection, off
every hot path.
"""

from __future__ import annotations

import sys

from nameko._broker.base import BrokerRefused

__all__ = ["refused_error"]

# reply code -> the name of py-amqp's error class for it
_AMQP_CLASS_NAMES = {403: "AccessRefused", 530: "NotAllowed"}


def refused_error(message: str, reply_code: int, reply_text: str) -> BrokerRefused:
    """A `BrokerRefused` (also py-amqp's error for the code, if py-amqp is loaded)."""
    error = _error_class(reply_code)(message)
    error.reply_code = reply_code
    error.reply_text = reply_text
    return error


def _error_class(reply_code: int) -> type[BrokerRefused]:
    amqp_exceptions = sys.modules.get("amqp.exceptions")
    name = _AMQP_CLASS_NAMES.get(reply_code)
    twin = getattr(amqp_exceptions, name, None) if name and amqp_exceptions else None
    if not isinstance(twin, type) or not issubclass(twin, Exception):
        return BrokerRefused
    cls = _twins.get(twin)
    if cls is None:
        # Our bases first: str(), args and OSError's constructor are ours; the
        # py-amqp base only adds itself to the class's ancestry.
        cls = _twins.setdefault(
            twin, type(twin.__name__, (BrokerRefused, twin), {"__module__": __name__})
        )
    return cls


_twins: dict[type[Exception], type[BrokerRefused]] = {}  # py-amqp class -> our twin
