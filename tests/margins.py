"""Asserts on learned outcomes (a success rate, a loss ratio, a PSNR gain after a short training run) that
record how far the value cleared its bound.

A short training run lands on another value on another CPU (its floating point takes another path), so such
a test must clear its bound by a margin that holds anywhere. With COSMOS_TEST_MARGINS=FILE every check
appends {test, name, value, bound, margin} to FILE (JSON lines); `python tests/margins.py FILE...` prints
the table, the worst run per check, so a margin can be read rather than guessed. COSMOS_TEST_SEED_SHIFT=k
(tests/conftest.py) moves every torch seed by k: another random path through the same test, the closest a
developer's machine comes to another machine's floating point.
"""

from __future__ import annotations

import json
import os
import sys


def _record(name: str, value: float, bound: float, margin: float) -> None:
    path = os.environ.get("COSMOS_TEST_MARGINS")
    if path:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        row = {"test": test, "name": name, "value": float(value), "bound": float(bound), "margin": float(margin),
               "threads": os.environ.get("COSMOS_TEST_THREADS", "1"),
               "seed_shift": os.environ.get("COSMOS_TEST_SEED_SHIFT", "0")}
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def above(name: str, value: float, bound: float) -> None:
    """value > bound; the margin is value / bound (for a positive bound) or value - bound."""
    value, bound = float(value), float(bound)
    _record(name, value, bound, value / bound if bound > 0 else value - bound)
    assert value > bound, f"{name}: {value:.4g} is not above {bound:.4g}"


def below(name: str, value: float, bound: float) -> None:
    """value < bound; the margin is bound / value (how many times smaller), or bound - value."""
    value, bound = float(value), float(bound)
    _record(name, value, bound, (bound / value if value > 0 else float("inf")) if bound > 0 else bound - value)
    assert value < bound, f"{name}: {value:.4g} is not below {bound:.4g}"


def table(paths: list[str]) -> str:
    rows: dict[tuple[str, str], list[dict]] = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                rows.setdefault((r["test"], r["name"]), []).append(r)
    out = ["| test | check | bound | values (threads/seed shift) | worst margin |", "|---|---|---:|---|---:|"]
    for (test, name), rs in sorted(rows.items()):
        values = ", ".join(f"{r['value']:.4g} ({r['threads']}/{r['seed_shift']})" for r in rs)
        out.append(f"| {test.split('::')[-1]} | {name} | {rs[0]['bound']:.4g} | {values} | "
                   f"{min(r['margin'] for r in rs):.3g} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(sys.argv[1:]))
