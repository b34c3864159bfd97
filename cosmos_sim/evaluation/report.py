"""A report is a list of sections: each says whether it applies, runs, and gives its JSON part and its markdown.

    class Section(Protocol):
        key: str                                   # its part of report.json: report[key] = run(ctx)
        timing: str | None                         # its wall-clock seconds in timing.json (None: not timed)
        def applies(self, ctx: Context) -> bool    # e.g. only worlds with falling objects, only ranged models
        def run(self, ctx: Context) -> Any         # the JSON part; may write figures under ctx.out
        def markdown(self, result, report) -> str  # its part of report.md ("" for none)

`run_sections` runs them in order into `ctx.report` (the report so far: a section may read the parts before
it), `render` joins their markdown, `write_report` writes report.json, report.md and timing.json. A new
measure is one more section in a report's list (`compare_sections.SECTIONS` for a world, `compare_env.SECTIONS`,
`compare_data.SECTIONS`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cosmos_sim.fileio import atomic_write_bytes, atomic_write_json

BACKEND_NAMES = {"world_model": "learned", "pybullet": "PyBullet", "mujoco": "MuJoCo"}


@dataclass
class Context:
    """What a report's sections share while they run."""

    config: Any  # the report's config (CompareConfig, EnvCompareConfig, DataCompareConfig)
    world: Any  # the World compared
    model: Any  # the loaded WorldModel (None: physics alone)
    out: Path  # the report directory
    progress: bool = True
    report: dict = field(default_factory=dict)  # its head, then each section's result under its key
    files: dict = field(default_factory=dict)  # the report's files, as report.json lists them
    timing: dict[str, float] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # what a section hands on that is not JSON (trajectories)


class Section(Protocol):
    key: str
    timing: str | None

    def applies(self, ctx: Context) -> bool: ...

    def run(self, ctx: Context) -> Any: ...

    def markdown(self, result: Any, report: dict) -> str: ...


class FileIndex:
    """The index of a report's plots and videos; in report.md the plots and the video links close the report."""

    key, timing = "files", None

    def __init__(self, plots: Sequence[str] = ("horizon",)):
        self.plots = tuple(plots)

    def applies(self, ctx: Context) -> bool:
        return True

    def run(self, ctx: Context) -> dict:
        return ctx.files

    def markdown(self, files: dict, report: dict) -> str:
        return "\n".join([" ".join(f"![{p}]({p}.png)" for p in self.plots), "",
                          *[f"- video: [{v}]({v})" for v in files["videos"]], ""])


class TaskHeads:
    """The learned reward and termination heads' held-out accuracy, from training (models of a Gymnasium env or a
    recorded dataset have them)."""

    key, timing = "task_head", None

    def applies(self, ctx: Context) -> bool:
        return True

    def run(self, ctx: Context) -> dict | None:
        return ctx.model.info.get("task_metrics")

    def markdown(self, th: dict | None, report: dict) -> str:
        if not th:
            return ""
        return "\n".join([
            "## Reward and termination heads (held-out steps of the training data)", "",
            f"Reward MAE {na(th.get('reward_mae'), 4)} (a constant predictor: {na(th.get('reward_mae_constant'), 4)}), "
            f"correlation {na(th.get('reward_corr'), 3)}; termination precision {na(th.get('termination_precision'))}, "
            f"recall {na(th.get('termination_recall'))} (termination rate {na(th.get('termination_rate'), 4)}).", ""])


def run_sections(ctx: Context, sections: Iterable[Section]) -> dict:
    """Run each section that applies, in order, into ctx.report (timed where it says so); returns ctx.report."""
    for s in sections:
        if not s.applies(ctx):
            continue
        t0 = time.perf_counter()
        ctx.report[s.key] = s.run(ctx)
        if s.timing is not None:
            ctx.timing[s.timing] = time.perf_counter() - t0
    return ctx.report


def render(report: dict, sections: Sequence[Section], head: str = "", tail: str = "") -> str:
    """report.md: the head, the markdown of each section in the report (in this order), the tail; each a block
    of lines, left out when empty."""
    parts = [head, *(s.markdown(report[s.key], report) for s in sections if s.key in report), tail]
    return "\n".join(p for p in parts if p)


def write_report(ctx: Context, markdown: str, timing: bool = True) -> None:
    """report.json (ctx.report), report.md and, with `timing`, timing.json into ctx.out."""
    atomic_write_json(ctx.out / "report.json", ctx.report)
    atomic_write_bytes(ctx.out / "report.md", markdown.encode())
    if timing:
        atomic_write_json(ctx.out / "timing.json", ctx.timing)


def report_dir(out: str | os.PathLike) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def json_safe(obj: Any) -> Any:
    """`obj` as JSON reads it back (paths and other objects as strings)."""
    return json.loads(json.dumps(obj, default=str))


# --- markdown helpers -------------------------------------------------------------------------------
def fmt(x, digits: int = 2) -> str:
    """A number, or "–" for none (None, NaN, inf)."""
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def ci(c: dict, scale: float = 1.0, digits: int = 1) -> str:
    """{mean, lo, hi} as "mean [lo, hi]" (scaled), or "–" without a mean."""
    if c["mean"] is None:
        return "–"
    return f"{c['mean'] * scale:.{digits}f} [{c['lo'] * scale:.{digits}f}, {c['hi'] * scale:.{digits}f}]"


def na(v, digits: int = 2) -> str:
    """A number, or "n/a" for none."""
    return "n/a" if v is None else f"{v:.{digits}f}"
