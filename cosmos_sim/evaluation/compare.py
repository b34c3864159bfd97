"""Learned vs physics, and physics vs physics: open-loop fidelity, closed-loop policy evaluation,
policy ranking, and the report (JSON, Markdown, plots, videos).

Open loop: a reference policy acts in MuJoCo from seeds s_i and its actions are recorded; the
same initial states (same seeds) and the same actions are replayed in PyBullet and in the world
model. Every step of each replay is compared with MuJoCo. The PyBullet line is the yardstick: how
far a second physics engine drifts from the first on the same task.

Closed loop: every policy of a ladder acts in every backend from the same seeds (see
`closed_loop`). Ranking: correlations between MuJoCo's success rates (and returns) over the
ladder and the learned world's (and PyBullet's).

`report.json` schema (version "cosmos_sim.report/1"):
    config      CompareConfig as JSON
    model       world, family, image size, parameters, training info of the world model
    open_loop   steps [1..T]; pairs[backend][metric] = {mean, lo, hi} per step (95% bootstrap CI over
                episodes); metrics: psnr, ssim, psnr_objects, reward_abs_error, success_agreement,
                state_error/<entry> (Euclidean error of each named state entry, in the world's units)
    closed_loop [backend][policy] = {success_rate, return, length: {mean, lo, hi, n}, per_episode}
    ranking     rows: [{policy, mujoco, pybullet, world_model}] success rates in %; pairs[backend] =
                {success: correlations, return: correlations, success_mae_points}
    files       report.md, plots and videos, relative to the report directory
Wall-clock timings go to timing.json, so report.json is identical for identical inputs and seeds.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError
from cosmos_sim.evaluation import open_loop as ol
from cosmos_sim.evaluation.closed_loop import evaluate_policies
from cosmos_sim.evaluation.stats import correlations, mean_abs_error
from cosmos_sim.fileio import atomic_write_bytes, atomic_write_json
from cosmos_sim.worlds import get_world

SCHEMA = "cosmos_sim.report/1"


@dataclass(frozen=True)
class CompareConfig:
    world: str = arg("Push", "world name")
    policies: tuple[str, ...] = arg(("ladder",), "policy specs (scripted:SKILL, random, explore, a trained policy "
                                                 "RUN) or 'ladder' (random + scripted at skill 0, .25, .5, .75, 1)")
    episodes: int = arg(50, "closed-loop episodes per policy and backend")
    seed: int = arg(0, "episode i uses seed SEED+i in every backend")
    backends: tuple[str, ...] = arg(("mujoco", "pybullet", "world_model"), "backends compared with MuJoCo")
    open_loop_episodes: int = arg(16, "open-loop episodes")
    horizon: int = arg(32, "open-loop steps")
    open_loop_policy: str = arg("scripted:0.75", "the policy whose MuJoCo actions are replayed open loop")
    camera: str | None = arg(None, "default or random camera per episode (none: the mode the model was trained with)")
    videos: int = arg(3, "side-by-side videos to write")
    alignment_episodes: int = arg(50, "passive drops for the physical-alignment section, in worlds with falling "
                                      "objects (0: leave it out)")
    device: str | None = arg(None, "device of the world model (none: cuda when available)")

    def __post_init__(self):
        from cosmos_sim.policies.registry import expand_policy_specs, parse_policy_spec

        object.__setattr__(self, "world", get_world(self.world).name)
        pol = (self.policies,) if isinstance(self.policies, str) else tuple(self.policies)
        object.__setattr__(self, "policies", tuple(expand_policy_specs(list(pol), world=self.world)))
        object.__setattr__(self, "backends", tuple(self.backends))
        parse_policy_spec(self.open_loop_policy)
        bad = [b for b in self.backends if b not in ("mujoco", "pybullet", "world_model")]
        if bad or "mujoco" not in self.backends:
            raise InputError(f"backends must include 'mujoco' (the reference) and come from mujoco, pybullet, "
                             f"world_model; got {self.backends}")
        for name in ("episodes", "open_loop_episodes", "horizon"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.horizon >= get_world(self.world).max_episode_steps:
            raise InputError(f"horizon must be < the world's episode length {get_world(self.world).max_episode_steps}")
        if self.camera not in (None, "default", "random"):
            raise InputError(f"camera must be None, 'default' or 'random', got {self.camera!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def side_by_side_video(path: Path, ref: ol.Trajectories, others: dict[str, ol.Trajectories], episode: int,
                       fps: float) -> Path:
    from cosmos_sim.video import tile, write_mp4

    names = {"pybullet": "PyBullet", "world_model": "learned"}
    frames = []
    for t in range(ref.pixels.shape[1]):
        row = [ref.pixels[episode, t]]
        labels = ["MuJoCo"]
        for name, o in others.items():
            row.append(o.pixels[episode, t])
            labels.append(names.get(name, name))
        if "world_model" in others:
            diff = np.abs(others["world_model"].pixels[episode, t].astype(np.int16)
                          - ref.pixels[episode, t]).astype(np.uint8)
            row.append(diff)
            labels.append("|learned-MuJoCo|")
        frames.append(tile(row, labels=[f"{lab} t={t}" if i == 0 else lab for i, lab in enumerate(labels)],
                           scale=4))
    return write_mp4(path, frames, fps=fps)


# --- the whole comparison ------------------------------------------------------------------------------
def load_checked_model(model: Any, world: str, device: str | None):
    """Load (or check) the world model first, so a wrong path or world fails before any work."""
    from cosmos_sim.envs.world_model_env import resolve_device, resolve_model

    return resolve_model(model, get_world(world), None, resolve_device(device))


def compare(config: CompareConfig, model: Any, out: str | os.PathLike, progress: bool = True) -> dict:
    """Run everything and write the report directory; returns the report dict."""
    from tqdm import tqdm

    from cosmos_sim.evaluation.plots import plot_horizon, plot_success_scatter

    world = get_world(config.world)
    learned = "world_model" in config.backends
    wm = load_checked_model(model, world.name, config.device) if learned else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timing: dict[str, float] = {}
    camera = config.camera
    if camera is None:
        camera = "random" if wm is not None and wm.info.get("camera") in ("random", "moving") else None
    size = wm.image_size if wm is not None else 64
    seeds = list(range(config.seed, config.seed + config.open_loop_episodes))

    # open loop
    t0 = time.perf_counter()
    bar = tqdm(total=len(config.backends), desc="open loop", disable=not progress)
    ref = ol.record(world, seeds, config.horizon, config.open_loop_policy, camera, size)
    bar.update()
    others: dict[str, ol.Trajectories] = {}
    if "pybullet" in config.backends:
        others["pybullet"] = ol.replay(world, "pybullet", ref, camera)
        bar.update()
    scored = ol.open_loop(world, ref, wm, start="reset", others=others, seed=config.seed)
    if learned:
        for part in ("metrics", "trajectories"):
            scored[part]["world_model"] = scored[part].pop("model")
        bar.update()
    bar.close()
    open_loop = {"steps": scored["steps"], "episodes": ref.episodes, "seeds": seeds,
                 "policy": config.open_loop_policy, "camera": camera or "default",
                 "position_entry": world.object_entries[0] if world.object_entries else None,
                 "pairs": ol.curves(scored, seed=config.seed)}
    timing["open_loop_s"] = time.perf_counter() - t0

    # closed loop
    t0 = time.perf_counter()
    closed: dict[str, dict] = {}
    bar = tqdm(config.backends, desc="closed loop", disable=not progress)
    for backend in bar:
        bar.set_postfix_str(backend)
        res = evaluate_policies(world.name, backend, list(config.policies), episodes=config.episodes,
                                seed=config.seed, model=wm if backend == "world_model" else None,
                                device=config.device, camera=camera)
        closed[backend] = {spec: {k: r[k] for k in ("success_rate", "return", "length", "per_episode")}
                           for spec, r in res.items()}
    bar.close()
    timing["closed_loop_s"] = time.perf_counter() - t0

    ranking = rank(closed, config.policies, config.backends, world)

    # physical alignment: passive drops, in worlds whose objects fall
    alignment = None
    if world.falling_objects and config.alignment_episodes > 0:
        from cosmos_sim.evaluation.physics_alignment import AlignmentConfig, physics_alignment

        t0 = time.perf_counter()
        acfg = AlignmentConfig(world=world.name, episodes=config.alignment_episodes, camera=camera or "default",
                               backends=tuple(b for b in config.backends if b != "mujoco"), device=config.device)
        alignment = physics_alignment(acfg, model=wm, out=out, plot_name="alignment_heights.png")
        timing["alignment_s"] = time.perf_counter() - t0

    # files
    files = {"report": "report.md", "horizon_plot": "horizon.png", "ranking_plot": "ranking.png", "videos": []}
    entry = world.object_entries[0] if world.object_entries else None
    panels = [("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("psnr_objects", "PSNR on object pixels (dB)")]
    if entry is not None:
        panels.append((f"state_error/{entry}", f"{entry} error"))
    plot_horizon(open_loop, panels, out / files["horizon_plot"], title=f"{world.name}: open loop against MuJoCo")
    plot_success_scatter(ranking["rows"], out / files["ranking_plot"], title=f"{world.name}: success rate per policy")
    for e in range(min(config.videos, ref.episodes)):
        name = f"episode{e}_seed{seeds[e]}.mp4"
        side_by_side_video(out / name, ref, scored["trajectories"], e, fps=round(1.0 / world.control_dt))
        files["videos"].append(name)
    report = {"schema": SCHEMA, "config": config.to_dict(), "model": model_summary(wm, model),
              "open_loop": open_loop, "closed_loop": closed, "ranking": ranking, "files": files}
    if alignment is not None:
        report["physics_alignment"] = alignment
    if wm is not None and wm.camera_coverage(world).range is not None:  # trained on many poses: does it obey them?
        from cosmos_sim.evaluation.views import ViewConfig, camera_following, novel_view, novel_view_grid
        from cosmos_sim.video import save_png

        t0 = time.perf_counter()
        H = min(16, config.horizon)
        vc = ViewConfig(episodes=config.open_loop_episodes, horizon=H, horizons=tuple(h for h in (1, 4, 16) if h <= H),
                        seed=config.seed + 5000)
        examples: list = []
        report["cameras"] = {"novel_view": novel_view(wm, world, vc, examples=examples),
                             "camera_following": camera_following(wm, world, vc)}
        save_png(out / "novel_views.png", novel_view_grid(examples))
        files["novel_views"] = "novel_views.png"
        timing["cameras_s"] = time.perf_counter() - t0
    atomic_write_json(out / "report.json", report)
    atomic_write_bytes(out / "report.md", markdown(report).encode())
    atomic_write_json(out / "timing.json", timing)
    return report


def rank(closed: dict, policies: Sequence[str], backends: Sequence[str], world) -> dict[str, Any]:
    """How each backend ranks the policies as MuJoCo does: over all of them, and over each group
    (the world's ladder, its off-ladder policies, others) with the largest single-policy error."""
    from cosmos_sim.policies.registry import LADDER

    rows = [{"policy": spec, "group": "ladder" if spec in LADDER else
             "off-ladder" if spec in world.off_ladder else "other",
             **{b: 100.0 * closed[b][spec]["success_rate"]["mean"] for b in backends}} for spec in policies]
    out: dict[str, Any] = {"rows": rows, "pairs": {}}

    def agreement(rs: list[dict], b: str) -> dict:
        ref, got = [r["mujoco"] for r in rs], [r[b] for r in rs]
        return {"policies": len(rs), "success": correlations(ref, got) if len(rs) > 1 else None,
                "success_mae_points": mean_abs_error(ref, got),
                "max_abs_error_points": max(abs(x - y) for x, y in zip(ref, got, strict=True))}

    for b in backends:
        if b == "mujoco":
            continue
        out["pairs"][b] = {
            **agreement(rows, b),
            "return": correlations([closed["mujoco"][p]["return"]["mean"] for p in policies],
                                   [closed[b][p]["return"]["mean"] for p in policies]),
            "groups": {g: agreement([r for r in rows if r["group"] == g], b) for g in dict.fromkeys(
                r["group"] for r in rows)},
        }
    return out


def model_summary(wm, model: Any) -> dict | None:
    from cosmos_sim.zoo import models_dir

    if wm is None:
        return None
    path = wm.source or (str(model) if isinstance(model, (str, os.PathLike)) else None)
    if path is not None and Path(path).resolve().parent == models_dir().resolve():
        path = f"pretrained (cosmos_sim/models/{Path(path).name})"  # the same on every machine
    from cosmos_sim.worlds import get_world

    return {"path": path, "world": wm.world,
            "family": wm.family, "image_size": wm.image_size,
            "cameras": wm.camera_coverage(get_world(wm.world)).describe(),
            "dynamics_parameters": int(sum(p.numel() for p in wm.dynamics.parameters())),
            "tokenizer": wm.tokenizer.config.to_dict(), "info": json.loads(json.dumps(wm.info, default=str))}


def summary_lines(report: dict, out: str | os.PathLike) -> list[str]:
    """What `cosmos-sim compare` prints: success per policy and backend, rank agreement, the report."""
    from cosmos_sim.text import format_table

    names = {"world_model": "learned", "pybullet": "PyBullet", "mujoco": "MuJoCo"}
    rk, backends = report["ranking"], report["config"]["backends"]
    lines = [format_table(["policy", *[names.get(b, b) + " success %" for b in backends]],
                          [[r["policy"], *[f"{r[b]:.0f}" for b in backends]] for r in rk["rows"]])]
    for b, p in rk["pairs"].items():
        rho = p["success"]["spearman"]
        lines.append(f"{names.get(b, b)} vs MuJoCo: Spearman rho {'n/a' if rho is None else f'{rho:.3f}'}, "
                     f"success MAE {p['success_mae_points']:.1f} points")
    lines.append(f"report: {Path(out) / 'report.md'}")
    return lines


# --- markdown -------------------------------------------------------------------------------------------
def _fmt(x, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def _ci(c: dict, scale: float = 1.0, digits: int = 1) -> str:
    if c["mean"] is None:
        return "–"
    return f"{c['mean'] * scale:.{digits}f} [{c['lo'] * scale:.{digits}f}, {c['hi'] * scale:.{digits}f}]"


def markdown(report: dict) -> str:
    cfg, ol, cl, rk = report["config"], report["open_loop"], report["closed_loop"], report["ranking"]
    names = {"world_model": "learned", "pybullet": "PyBullet", "mujoco": "MuJoCo"}
    lines = [f"# {cfg['world']}: learned world vs physics", ""]
    m = report["model"]
    if m:
        lines += [f"World model: `{m['path']}` ({m['family']} dynamics, {m['dynamics_parameters'] / 1e6:.2f}M "
                  f"parameters, {m['image_size']}x{m['image_size']} frames; trained cameras: "
                  f"{m.get('cameras', 'not recorded')}). Reference: MuJoCo.", ""]
    steps = ol["steps"]
    show = [s for s in (1, 2, 4, 8, 16, 32, 64) if s <= steps[-1]]
    entry = f"state_error/{ol['position_entry']}" if ol.get("position_entry") else None
    metrics = [("psnr", "PSNR dB", 2), ("ssim", "SSIM", 3), ("psnr_objects", "object PSNR dB", 2)]
    lines += ["## Open loop", "",
              f"{ol['episodes']} episodes: `{ol['policy']}` acts in MuJoCo, its actions are replayed from the same "
              f"initial states in each backend; every frame and state is compared with MuJoCo's "
              f"(mean over episodes at each step after the shared first frame; camera: {ol['camera']}).", ""]
    header = "| backend | metric | " + " | ".join(f"t={s}" for s in show) + " |"
    lines += [header, "|" + "---|" * (len(show) + 2)]
    for name, pair in ol["pairs"].items():
        rows = metrics + ([(entry, entry.split("/", 1)[1] + " error", 3)] if entry else []) + \
            [("reward_abs_error", "reward abs error", 3), ("success_agreement", "success agreement", 2)]
        for key, label, d in rows:
            if key in pair:
                vals = [_fmt(pair[key]["mean"][s - 1], d) for s in show]
                lines.append(f"| {names.get(name, name)} | {label} | " + " | ".join(vals) + " |")
    lines += ["", "![metrics against horizon](horizon.png)", "", "## Closed loop", "",
              "Success rate in % and return, mean [95% bootstrap CI] over "
              f"{cfg['episodes']} episodes per cell (seeds {cfg['seed']}..{cfg['seed'] + cfg['episodes'] - 1}).", ""]
    backends = list(cl)
    group = {r["policy"]: r.get("group", "") for r in rk["rows"]}
    lines += ["| policy | group | " + " | ".join(f"{names.get(b, b)} success" for b in backends) + " | "
              + " | ".join(f"{names.get(b, b)} return" for b in backends) + " |",
              "|" + "---|" * (2 + 2 * len(backends))]
    for spec in cfg["policies"]:
        lines.append(f"| `{spec}` | {group.get(spec, '')} | "
                     + " | ".join(_ci(cl[b][spec]["success_rate"], 100, 0) for b in backends)
                     + " | " + " | ".join(_ci(cl[b][spec]["return"], 1, 1) for b in backends) + " |")
    lines += ["", "## Ranking", "",
              "How well each backend ranks the policies as MuJoCo does: correlations of the success rates over the "
              "policies (all, then each group: the world's ladder of expert skills, and off-ladder policies -- the "
              "expert slowed, acting on a share of steps, noisy), the mean absolute success-rate error and the "
              "largest single-policy error, in points.", "",
              "| backend vs MuJoCo | policies | Spearman ρ | Kendall τ | Pearson r | success MAE | largest error |",
              "|---|---|---|---|---|---|---|"]
    for b, p in rk["pairs"].items():
        for label, g in [("all", p), *((k, v) for k, v in p.get("groups", {}).items() if len(p["groups"]) > 1)]:
            c = g["success"] or {}
            lines.append(f"| {names.get(b, b)} | {label} ({g.get('policies', len(rk['rows']))}) | "
                         f"{_fmt(c.get('spearman'))} | {_fmt(c.get('kendall'))} | {_fmt(c.get('pearson'))} | "
                         f"{_fmt(g['success_mae_points'], 1)} | {_fmt(g.get('max_abs_error_points'), 1)} |")
    lines += ["", "![success rates](ranking.png)", ""]
    if "physics_alignment" in report:
        from cosmos_sim.evaluation.physics_alignment import markdown as alignment_markdown

        lines += alignment_markdown(report["physics_alignment"]) + [""]
    if "cameras" in report:
        nv, fo = report["cameras"]["novel_view"], report["cameras"]["camera_following"]
        hs = [h for h in ("1", "4", "16") if h in nv["same"]]
        lines += ["## Cameras", "",
                  f"Trained cameras: {nv['coverage']}. PSNR (dB) against MuJoCo rendered at pose B, "
                  f"{nv['same']['episodes']} held-out episodes (`evaluation/views.py`): same pose = context frame "
                  "at B; novel view = context frame at another pose A, the rollout told B; camera following = "
                  "the learned env and MuJoCo along one smooth random camera path (`camera_control`).", "",
                  "| | " + " | ".join(f"h={h}" for h in hs) + " |", "|---|" + "---:|" * len(hs)]
        for label, row in (("same pose", nv["same"]), ("novel view", nv["novel"]),
                           ("camera following", fo["following"])):
            lines.append(f"| {label} | " + " | ".join(_fmt(row[h]) for h in hs) + " |")
        lines += ["", "Novel views (per row: the context frame at A, then MuJoCo and the learned world at B, at h = 1 "
                  "and at the last step):", "", "![novel views](novel_views.png)", ""]
    lines += ["## How to read this", "",
              "- The PyBullet rows are the yardstick: a second physics engine simulating the same scene. A learned "
              "world that stays above the PyBullet line on PSNR (and below it on state error) is a closer twin of "
              "MuJoCo than another engine is.",
              "- Open-loop errors grow with the horizon because nothing corrects the rollout; the step where a "
              "curve crosses the yardstick is how far ahead the learned world can be trusted.",
              "- Ranking: ρ near 1 means policies rank as in MuJoCo, so the learned world can pick the better "
              "policy; the MAE says whether the absolute success rates can be trusted too.", ""]
    if report["files"]["videos"]:
        lines += ["Videos (MuJoCo | PyBullet | learned | |learned − MuJoCo|): "
                  + ", ".join(f"[{v}]({v})" for v in report["files"]["videos"]), ""]
    return "\n".join(lines)
