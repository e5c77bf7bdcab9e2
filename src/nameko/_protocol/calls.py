"""Call ids and the call-id stack carried in ``nameko.call_id_stack`` (SPEC 2.5, 3.4)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["extend_call_id_stack", "make_call_id"]


def make_call_id(service_name: str, method_name: str, unique: str) -> str:
    """``"<service>.<method>.<unique>"`` (``unique`` is normally a uuid4 string)."""
    return f"{service_name}.{method_name}.{unique}"


def extend_call_id_stack(
    parent_stack: Iterable[str] | None, call_id: str, parent_calls_tracked: int
) -> list[str]:
    """The parent stack plus ``call_id``, keeping only the last
    ``parent_calls_tracked + 1`` entries (so the own id is always kept).

    A negative ``parent_calls_tracked`` counts as 0: the own id alone.
    """
    keep = max(parent_calls_tracked, 0) + 1
    stack = [*(parent_stack or ()), call_id]
    return stack[-keep:]
