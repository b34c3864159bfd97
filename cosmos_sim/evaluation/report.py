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
        lines = ["## Reward, termination and success heads (held-out steps of the training data)", "",
                 f"Reward MAE {na(th.get('reward_mae'), 4)} (a constant predictor: "
                 f"{na(th.get('reward_mae_constant'), 4)}), correlation {na(th.get('reward_corr'), 3)}."]
        for name in ("termination", "success"):
            if f"{name}_rate" not in th:
                continue
            if not th[f"{name}_rate"]:  # no events in the evaluation steps: nothing to measure
                lines.append(f"{name.capitalize()}: n/a (no {name} in the held-out evaluation steps"
                             f"{': the env never ends an episode this way' if name == 'termination' else ''}).")
                continue
            lines.append(
                f"{name.capitalize()} at the calibrated threshold {na(th.get(f'{name}_threshold'))}: precision "
                f"{na(th.get(f'{name}_precision'))}, recall {na(th.get(f'{name}_recall'))}, F1 "
                f"{na(th.get(f'{name}_f1'))} (at 0: {na(th.get(f'{name}_precision_at_0'))} / "
                f"{na(th.get(f'{name}_recall_at_0'))}; rate {na(th.get(f'{name}_rate'), 4)}). "
                f"{th.get(f'{name}_calibration', '')}".rstrip())
        return "\n".join([*lines, ""])


class Trust:
    """Per-policy trust from every ensemble part of the model (cosmos_sim.trust): the share of each policy's learned
    steps off the data, the flag, its error against the reference, and the ranking over all and over the trusted
    policies. `reference`: the backend compared with ("env", "mujoco"); `metric`: "return" or "success"."""

    key, timing = "trust", None

    def __init__(self, reference: str, metric: str):
        self.reference, self.metric = reference, metric

    def applies(self, ctx: Context) -> bool:
        cl = ctx.report.get("closed_loop", {})
        return "world_model" in cl and self.reference in cl

    def _value(self, r: dict) -> float:
        return float(r["return"]["mean"] if self.metric == "return" else 100 * r["success_rate"]["mean"])

    def run(self, ctx: Context) -> dict:
        from cosmos_sim.evaluation.stats import correlations
        from cosmos_sim.trust import NO_ENSEMBLE

        model = ctx.model
        if model.trust is None:
            ensemble = model.state_head.members > 1 or (model.task_head is not None and model.task_head.members > 1)
            return {"available": False,
                    "why": "the model was trained before trust calibration: retrain it with this version"
                    if ensemble else NO_ENSEMBLE}
        cl, policies = ctx.report["closed_loop"], list(ctx.config.policies)
        ref = np.array([self._value(cl[self.reference][p]) for p in policies])
        got = np.array([self._value(cl["world_model"][p]) for p in policies])
        spread = float(np.ptp(ref)) if len(ref) else 0.0
        rows = []
        member_key = "member_return_std" if self.metric == "return" else "member_success_std"
        for p, a, b in zip(policies, ref, got, strict=True):
            t = cl["world_model"][p].get("trust") or {}
            apart = (t[member_key] / spread if spread > 0 else 0.0) if member_key in t else None
            rows.append({"policy": p, "reference": float(a), "learned": float(b), "abs_error": float(abs(b - a)),
                         "relative_error": float(abs(b - a) / spread) if spread > 0 else None,
                         **{k: t.get(k) for k in ("off_data_share", "off_data_per_episode")},
                         "member_spread": apart, "off_data_flag": bool(t.get("flagged", False)),
                         "flagged": bool(t.get("flagged", False)) or (apart is not None and apart > MEMBER_FLAG)})
        trusted = [i for i, r in enumerate(rows) if not r["flagged"]]
        share = [r["off_data_share"] or 0.0 for r in rows]
        rel = [r["relative_error"] for r in rows]
        members = [r["member_spread"] for r in rows]
        return {"available": True, "metric": self.metric, "reference": self.reference, "calibration": model.trust,
                "flag_share": _flag_share(cl["world_model"], policies),
                "rows": rows, "spread": spread, "flagged": [r["policy"] for r in rows if r["flagged"]],
                "ranking_all": correlations(ref, got) if len(rows) > 1 else None,
                "ranking_trusted": correlations(ref[trusted], got[trusted]) if len(trusted) > 1 else None,
                "trusted_policies": len(trusted),
                # does the off-data share say where the learned figure is wrong? (Spearman over the policies)
                "share_vs_error": correlations(share, rel) if spread > 0 and len(rows) > 2 else None,
                "member_flag": MEMBER_FLAG,
                "members_vs_error": correlations(members, rel) if spread > 0 and len(rows) > 2 and None not in members
                else None,
                "unflagged_large_errors": [r["policy"] for r in rows if not r["flagged"] and r["relative_error"]
                                           is not None and r["relative_error"] > LARGE_ERROR]}

    def markdown(self, tr: dict, report: dict) -> str:
        if not tr["available"]:
            return "\n".join(["## Trust", "", f"n/a: {tr['why']}.", ""])
        unit = "return" if tr["metric"] == "return" else "success %"
        ref = BACKEND_NAMES.get(tr["reference"], tr["reference"])
        q = tr["calibration"]["quantile"]
        held = tr["calibration"].get("held_out_share")
        lines = ["## Trust", "",
                 f"Off data: a learned step where any ensemble part ({', '.join(tr['calibration']['thresholds'])}) "
                 f"disagrees more than at the {100 * q:g}th percentile of held-out episodes"
                 + (f" (held-out episodes spend {100 * held:.1f} % of their steps off the data)" if held is not None
                    else "") + ". Members apart: each state-model member rolls the policy out in a world of its "
                 f"own; the standard deviation of their {unit}s over the policies' spread. A policy is flagged, its "
                 f"learned figure not to be trusted, with more than {100 * tr['flag_share']:g} % of its learned steps "
                 f"off the data or its members more than {tr.get('member_flag', MEMBER_FLAG):g} apart.", "",
                 f"| policy | off-data % | off-data steps / episode | members apart | flagged | {ref} {unit} | "
                 f"learned {unit} | abs. error / spread |", "|---|---:|---:|---:|:---:|---:|---:|---:|"]
        for r in tr["rows"]:
            share = r["off_data_share"]
            lines.append(f"| {short_name(r['policy'])} | {na(None if share is None else 100 * share, 1)} | "
                         f"{na(r.get('off_data_per_episode'), 1)} | {na(r.get('member_spread'))} | "
                         f"{'**yes**' if r['flagged'] else ''} | {r['reference']:.1f} | {r['learned']:.1f} | "
                         f"{na(r['relative_error'])} |")
        a, t, sv = tr["ranking_all"] or {}, tr["ranking_trusted"] or {}, tr["share_vs_error"] or {}
        lines += ["", f"Ranking by {unit}: Spearman ρ {na(a.get('spearman'))} over all {len(tr['rows'])} policies, "
                      f"{na(t.get('spearman'))} over the {tr['trusted_policies']} trusted. Against |error| / spread: "
                      f"off-data share Spearman {na(sv.get('spearman'))}, members apart "
                      f"{na((tr.get('members_vs_error') or {}).get('spearman'))}."]
        if tr["unflagged_large_errors"]:
            lines.append(f"Not flagged though off by more than {100 * LARGE_ERROR:g} % of the spread: "
                         + ", ".join(f"`{p}`" for p in tr["unflagged_large_errors"]) + ".")
        from cosmos_sim.evaluation.closed_loop import sees_pixels

        learned = report.get("closed_loop", {}).get("world_model", {})
        pixel = [r["policy"] for r in tr["rows"] if sees_pixels(learned.get(r["policy"], {}))]
        if pixel:
            lines.append(f"Policies that see pixels ({len(pixel)}) are judged by the state alone here: these signals "
                         "follow the predicted state, not the frames the policies act on (the pixel section "
                         "measures those).")
        return "\n".join([*lines, ""])


LARGE_ERROR = 0.25  # an error above this share of the policies' spread should have been flagged
# a policy whose state-model members, each rolling it out on its own, disagree on its figure by more than this
# share of the policies' spread (one standard deviation) is flagged: at two, the error could pass LARGE_ERROR
MEMBER_FLAG = LARGE_ERROR / 2


def _flag_share(learned: dict, policies: Sequence[str]) -> float:
    from cosmos_sim.trust import FLAG_SHARE

    return next((learned[p]["trust"]["flag_share"] for p in policies if learned[p].get("trust")), FLAG_SHARE)


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


def short_name(spec: str) -> str:
    """"runs/ppo/checkpoints/step_000040960" -> "ppo@40960", "runs/bc/policies/step-00000050.safetensors" (a BC
    run's exported checkpoint) -> "bc@50"; other specs as they are."""
    p = Path(spec)
    if p.name.startswith("step_") and p.parent.name == "checkpoints":
        return f"{p.parent.parent.name}@{int(p.name[5:])}"
    if p.name.startswith("step-") and p.suffix == ".safetensors" and p.parent.name == "policies" and \
            p.stem[5:].isdigit():
        return f"{p.parent.parent.name}@{int(p.stem[5:])}"
    return spec


def trust_line(trust: dict | None) -> str:
    """One line on per-policy trust, for the printed summaries of compare --env and compare --world."""
    if not trust:
        return "trust: n/a (no learned backend)"
    if not trust["available"]:
        return f"trust: n/a ({trust['why']})"
    flagged = ", ".join(short_name(p) for p in trust["flagged"]) or "none"
    t = trust["ranking_trusted"] or {}
    rho = t.get("spearman")
    return (f"trust: flagged (over {100 * trust['flag_share']:g} % of learned steps off the data): {flagged}; "
            f"ranking over the {trust['trusted_policies']} trusted: Spearman {'n/a' if rho is None else f'{rho:.2f}'}")


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
