"""No import cycles between the package's modules (the data flow of docs: one direction, no back edges).

Every module of the package (cosmos_sim, and envs/, policies/, worlds/ installed as cosmos_sim.envs etc. through
pyproject's package-dir) is parsed with `ast`, nothing imported. An edge A -> B is any import of package module
B in A: at module level or inside a function, relative or absolute, `from cosmos_sim.x import y` counting as an
import of cosmos_sim.x.y when y is a submodule (else of cosmos_sim.x). Imports under `if TYPE_CHECKING:` never
run and are left out. A package's own __init__ is an edge only when named (importing cosmos_sim.x.y also runs
cosmos_sim.x's __init__, but that is the package's public surface, not a dependency of y's).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: read the one table by hand
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "cosmos_sim"

# Known cycles in modules being refactored elsewhere, broken here by leaving out these edges (importer, imported)
# -> the fix they wait for. Empty this as they are fixed; a listed edge that is gone is ignored.
E, D = "cosmos_sim.envs", "cosmos_sim.data"
ALLOWED_BACK_EDGES: dict[tuple[str, str], str] = {
}


def package_dirs() -> dict[str, Path]:
    """Package name -> its directory, as pyproject.toml's [tool.setuptools] package-dir maps them."""
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib is not None:
        mapping = tomllib.loads(text)["tool"]["setuptools"].get("package-dir", {})
    else:
        table = re.search(r"^package-dir\s*=\s*\{(.*?)\}", text, re.M | re.S)
        mapping = dict(re.findall(r'"([^"]+)"\s*=\s*"([^"]+)"', table.group(1))) if table else {}
    dirs = {name: ROOT / d for name, d in mapping.items() if name.split(".")[0] == PACKAGE}
    return dirs or {PACKAGE: ROOT / PACKAGE}


def modules() -> dict[str, Path]:
    """Module name -> file, for every .py file of the package."""
    dirs = package_dirs()
    own = {d.resolve() for d in dirs.values()}
    out: dict[str, Path] = {}
    for pkg, d in dirs.items():
        for path in sorted(d.rglob("*.py")):
            rel = path.relative_to(d)
            # a folder mapped to a package of its own is walked as that package
            if any((d / Path(*rel.parts[:i])).resolve() in own for i in range(1, len(rel.parts))):
                continue
            if not all((d / Path(*rel.parts[:i]) / "__init__.py").is_file() for i in range(1, len(rel.parts))):
                continue  # not inside a package (data, scripts)
            parts = [pkg, *rel.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (never run)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that module `name` (at `path`) imports, anywhere in its body."""

    def owner(mod: str) -> str | None:  # the longest known module that `mod` is or lies in
        while mod and mod not in known:
            mod = mod.rpartition(".")[0]
        return mod or None

    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_only(tree)
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {m for a in node.names if (m := owner(a.name)) is not None}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
                continue
            for a in node.names:
                m = f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else owner(mod)
                if m is not None:
                    out.add(m)
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, the first repeated at the end) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan, iterative
        work = [(v, iter(sorted(g[v])))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        comps.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            connect(v)
    out = []
    for comp in comps:  # the shortest cycle through the component's first module (breadth first)
        members, start = set(comp), comp[0]
        prev: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in prev:
            nxt = []
            for u in frontier:
                for w in sorted(g[u] & members):
                    if w not in prev:
                        prev[w] = u
                        nxt.append(w)
            frontier = nxt
        path, v = [start], prev[start]
        while v != start:
            path.append(v)
            v = prev[v]
        out.append([start, *reversed(path[1:]), start])
    return out


def test_the_walk_finds_every_package():
    mods = modules()
    for name in (PACKAGE, f"{PACKAGE}.envs", f"{PACKAGE}.policies", f"{PACKAGE}.worlds", f"{PACKAGE}.evaluation",
                 f"{PACKAGE}.evaluation.compare", f"{PACKAGE}.envs.registration", f"{PACKAGE}.cli"):
        assert name in mods, name


def test_the_walk_resolves_relative_and_submodule_imports(tmp_path):
    pkg = tmp_path / "cosmos_sim" / "sub"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg.parent / "top.py").write_text("")
    (pkg / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("from .. import top\nfrom cosmos_sim.sub import b, NAME\n\ndef f():\n"
                              "    import cosmos_sim.sub.c\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    (pkg / "c.py").write_text("from .a import f\n")
    known = {"cosmos_sim", "cosmos_sim.top", "cosmos_sim.sub", "cosmos_sim.sub.a", "cosmos_sim.sub.b",
             "cosmos_sim.sub.c"}
    assert imports("cosmos_sim.sub.a", pkg / "a.py", known) == {"cosmos_sim.top", "cosmos_sim.sub.b",
                                                                 "cosmos_sim.sub", "cosmos_sim.sub.c"}
    assert imports("cosmos_sim.sub", pkg / "__init__.py", known) == {"cosmos_sim.sub.b"}
    assert imports("cosmos_sim.sub.b", pkg / "b.py", known) == set()
    g = {m: imports(m, p, known) for m, p in [("cosmos_sim.sub.a", pkg / "a.py"), ("cosmos_sim.sub.c", pkg / "c.py")]}
    g |= {m: set() for m in known - set(g)}
    assert cycles(g) == [["cosmos_sim.sub.a", "cosmos_sim.sub.c", "cosmos_sim.sub.a"]]


def test_no_import_cycles():
    g = graph()
    for (a, b) in ALLOWED_BACK_EDGES:
        g.get(a, set()).discard(b)
    found = cycles(g)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)
