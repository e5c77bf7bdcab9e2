"""Plain-text tables for the benchmarks' reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["render"]


def render(rows: Sequence[Sequence[str]], left: Callable[[int, int], bool]) -> str:
    """``rows[0]`` is the header, underlined; column ``i`` of a row of ``n``
    cells is left-aligned when ``left(i, n)``, else right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if left(i, len(row)) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
