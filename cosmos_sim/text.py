"""Plain-text tables for what the command line prints."""

from __future__ import annotations

from collections.abc import Sequence


def _is_number(x) -> bool:
    if isinstance(x, bool):
        return False
    try:
        float(str(x))
    except ValueError:
        return False
    return True


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table with aligned columns (right-aligned where every cell is a number)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
    return "\n".join(s.rstrip() for s in out)
