"""The README and docs/*.md render cleanly: whole tables, a short README, local links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250
DELIMITER_CELL = re.compile(r"^\s*:?-+:?\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
CODE_SPAN = re.compile(r"(`+).+?\1")


def prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks (fence lines dropped)."""
    out, fence = [], None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r" {0,3}(`{3,}|~{3,})", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip(" `~"):
                fence = None
        else:
            out.append((n, line))
    return out


def cells(row: str) -> tuple[list[str], list[str]]:
    """Split a table row on unescaped `|` outside code spans; also return the problems found.

    GitHub splits a row before reading code spans, so an unescaped `|` inside backticks breaks the
    row there too: write it as `\\|`."""
    parts, cur, problems, i, tick = [], "", [], 0, 0  # tick: length of the open code span's backticks
    row = row.strip()
    while i < len(row):
        c = row[i]
        if c == "\\" and i + 1 < len(row):
            cur += row[i : i + 2]
            i += 2
            continue
        if c == "`":
            run = len(row[i:]) - len(row[i:].lstrip("`"))
            if not tick and row.find("`" * run, i + run) != -1:
                tick = run
            elif tick == run:
                tick = 0
            cur += "`" * run
            i += run
            continue
        if c == "|":
            if tick:
                problems.append(f"unescaped | inside a code span: {row!r}")
            else:
                parts.append(cur)
                cur = ""
                i += 1
                continue
        cur += c
        i += 1
    parts.append(cur)
    if parts and not parts[0].strip() and row.startswith("|"):
        parts = parts[1:]
    if parts and parts[-1] == "" and row.endswith("|"):
        parts = parts[:-1]
    return parts, problems


def table_problems(text: str) -> list[str]:
    """Each run of consecutive `|` lines must be header + delimiter + rows, all with the header's cell count."""
    problems, block = [], []
    for n, line in [*prose(text), (0, "")]:  # a sentinel closes the last block
        if line.lstrip().startswith("|"):
            block.append((n, line))
            continue
        if block:
            (n0, head), *rest = block
            width, bad = cells(head)
            problems += [f"line {n0}: {p}" for p in bad]
            if not rest or not all(DELIMITER_CELL.match(c) for c in cells(rest[0][1])[0]):
                problems.append(f"line {n0}: a run of table rows without header and delimiter row "
                                f"(a table split by a blank line?): {head.strip()[:60]!r}")
            for n1, row in rest:
                got, bad = cells(row)
                problems += [f"line {n1}: {p}" for p in bad]
                if len(got) != len(width):
                    problems.append(f"line {n1}: {len(got)} cells, the header has {len(width)}")
            block = []
    return problems


def broken_links(page: Path) -> list[str]:
    out = []
    for n, line in prose(page.read_text()):
        for m in LINK.finditer(CODE_SPAN.sub("", line)):
            target = (m.group(1) or m.group(2)).split("#")[0]
            if not target or re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # an anchor in this page, or a URL
            if not (page.parent / target).exists():
                out.append(f"line {n}: {target}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_tables_render(page: Path) -> None:
    problems = table_problems(page.read_text())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_resolve(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_readme_is_short() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; details belong in docs/"


def test_readme_learned_twins_table_matches_the_shipped_figures() -> None:
    """The README's learned-twins rows are what `python benchmarks/zoo.py table` prints from the figures
    beside the shipped models: a rebuilt model without a refreshed README fails here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo_benchmark", ROOT / "benchmarks" / "zoo.py")
    zoo_benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo_benchmark)
    readme = (ROOT / "README.md").read_text()
    rows = zoo_benchmark.table_rows()
    assert rows and zoo_benchmark.TABLE_HEADER[0] in readme
    for row in rows:
        assert row in readme, f"README.md lacks the row {row!r}: paste `python benchmarks/zoo.py table`"


def test_checker_catches_a_split_table() -> None:
    split = "| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n"
    assert len(table_problems(split)) == 1
    assert table_problems("| a | `x\\|y` |\n|---|---:|\n| `p\\|q` | 2 |\n") == []
    assert len(table_problems("| a | b |\n|---|---|\n| 1 | 2 | 3 |\n")) == 1
    assert len(table_problems("| a | `x|y` |\n|---|---|\n")) == 1
    assert table_problems("```\n| not | a table\n```\n") == []


def test_readme_gymnasium_twins_table_matches_the_benchmark() -> None:
    """The README's twins-of-Gymnasium-envs rows are what `python benchmarks/twins.py --table` prints from
    benchmarks/results/twins_cpu.json."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("twins_benchmark", ROOT / "benchmarks" / "twins.py")
    twins = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(twins)
    results = json.loads((ROOT / "benchmarks" / "results" / "twins_cpu.json").read_text())
    readme = (ROOT / "README.md").read_text()
    rows = twins.table(results).splitlines()
    assert len(rows) == 2 + len(results["envs"]) >= 5
    for row in rows:
        assert row in readme, f"README.md lacks the row {row!r}: paste `python benchmarks/twins.py --table`"
    # the env checkers ran on every Gymnasium MuJoCo twin (Meta-World's run in the MuJoCo 3.3 venv, without SB3)
    assert all(r["checks"]["spaces_equal"] and r["checks"]["sb3_check_env"] for r in results["envs"].values()
               if not r["env"].startswith("Meta-World"))
