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
    closed_loop [backend][policy] = {obs_mode, success_rate, return, length: {mean, lo, hi, n}, per_episode}
    ranking     rows: [{policy, mujoco, pybullet, world_model}] success rates in %; pairs[backend] =
                {success: correlations, return: correlations, success_mae_points}
    files       report.md, plots and videos, relative to the report directory
    physics_alignment  (worlds whose objects fall) passive drops against MuJoCo: `physics_alignment`
    cameras     (models trained on many poses) novel views and camera following: `views`
    pixel_frames (ladders with pixel policies) their success in MuJoCo on the tokenizer's redrawn frames
                (oracle) and on frozen frames, beside MuJoCo's and the learned world's: compare_sections
Wall-clock timings go to timing.json, so report.json is identical for identical inputs and seeds.

The report is a list of sections (`compare_sections.SECTIONS`, the protocol in `report.py`): a new measure
is one more section there. `run_command` is `cosmos-sim compare`: which comparison the flags ask for
(a world, `--env`'s twin, `--data`'s recording), its rules, and the lines it prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError
from cosmos_sim.evaluation.compare_sections import FILES, SECTIONS, CompareContext
from cosmos_sim.evaluation.model import load_checked_model, model_summary
from cosmos_sim.evaluation.report import BACKEND_NAMES, render, report_dir, run_sections, write_report
from cosmos_sim.worlds import get_world

__all__ = ["SCHEMA", "CompareConfig", "compare", "load_checked_model", "markdown", "model_summary", "run_command",
           "summary_lines"]

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


# --- the whole comparison ------------------------------------------------------------------------------
def compare(config: CompareConfig, model: Any, out: str | os.PathLike, progress: bool = True) -> dict:
    """Run every section that applies and write the report directory; returns the report dict."""
    world = get_world(config.world)
    wm = load_checked_model(model, world.name, config.device) if "world_model" in config.backends else None
    camera = config.camera
    if camera is None:
        camera = "random" if wm is not None and wm.info.get("camera") in ("random", "moving") else None
    ctx = CompareContext(config, world, wm, report_dir(out), progress, camera=camera,
                         image_size=wm.image_size if wm is not None else 64,
                         files={**FILES, "videos": []})
    ctx.report |= {"schema": SCHEMA, "config": config.to_dict(), "model": model_summary(wm, model)}
    run_sections(ctx, SECTIONS)
    write_report(ctx, markdown(ctx.report))
    return ctx.report


def markdown(report: dict) -> str:
    """report.md: the title and model, then each section's part (the file index, how to read and the videos,
    last)."""
    cfg, m = report["config"], report["model"]
    lines = [f"# {cfg['world']}: learned world vs physics", ""]
    if m:
        lines += [f"World model: `{m['path']}` ({m['family']} dynamics, {m['dynamics_parameters'] / 1e6:.2f}M "
                  f"parameters, {m['image_size']}x{m['image_size']} frames; trained cameras: "
                  f"{m.get('cameras', 'not recorded')}). Reference: MuJoCo.", ""]
    order = [s for s in SECTIONS if s.key != "files"] + [s for s in SECTIONS if s.key == "files"]
    return render(report, order, head="\n".join(lines))


def summary_lines(report: dict, out: str | os.PathLike) -> list[str]:
    """What `cosmos-sim compare` prints: success per policy and backend, rank agreement, the report."""
    from cosmos_sim.text import format_table

    names = BACKEND_NAMES
    rk, backends = report["ranking"], report["config"]["backends"]
    lines = [format_table(["policy", *[names.get(b, b) + " success %" for b in backends]],
                          [[r["policy"], *[f"{r[b]:.0f}" for b in backends]] for r in rk["rows"]])]
    for b, p in rk["pairs"].items():
        rho = p["success"]["spearman"]
        lines.append(f"{names.get(b, b)} vs MuJoCo: Spearman rho {'n/a' if rho is None else f'{rho:.3f}'}, "
                     f"success MAE {p['success_mae_points']:.1f} points")
    if "trust" in report:
        from cosmos_sim.evaluation.report import trust_line

        lines.append(trust_line(report["trust"]))
    lines.append(f"report: {Path(out) / 'report.md'}")
    return lines


# --- `cosmos-sim compare` ---------------------------------------------------------------------------------
PHYSICS_ONLY = ("mujoco", "pybullet")


def run_command(flags: Mapping[str, Any], out: str | os.PathLike, *, model: str = "pretrained",
                physics_only: bool = False, data: str | os.PathLike | None = None, env: str | None = None,
                env_kwargs: str | None = None, object_entries: str | None = None, progress: bool = True) -> list[str]:
    """`cosmos-sim compare`: `flags` are CompareConfig's fields as given on the command line. --data DIR: the
    model against a recording (`compare_data`); --env ID: an env's twin against the env (`compare_env`); else a
    world: the model (or with `physics_only` PyBullet alone) against MuJoCo. Every rule is checked, and the
    model loaded, before any work; returns the lines to print."""
    if data is not None:
        from cosmos_sim.evaluation.compare_data import run_command as compare_data_command

        return compare_data_command(model, data, flags, out, physics_only=physics_only, env=env, progress=progress)
    if env is not None:
        from cosmos_sim.evaluation.compare_env import run_command as compare_env_command

        return compare_env_command(env, env_kwargs, model, {**flags, "object_entries": object_entries}, out,
                                   physics_only=physics_only, progress=progress)
    if object_entries is not None:
        raise InputError("--object-entries measures an object in a Gymnasium env's twin: it goes with --env")
    require_simulator(model, flags["world"], physics_only)
    if model != "pretrained" and physics_only:
        raise InputError("--physics-only compares the physics backends alone: leave out --model")
    cfg = CompareConfig(**flags, backends=PHYSICS_ONLY if physics_only else CompareConfig.backends)
    wm = None
    if not physics_only:
        from cosmos_sim.device import resolve_device

        resolve_device(cfg.device)
        wm = load_checked_model(model, cfg.world, cfg.device)  # a bad path or world fails here, first
    return summary_lines(compare(cfg, wm, out, progress=progress), out)


def require_simulator(model: str, world: str, physics_only: bool = False) -> None:
    """A model of a recorded dataset's world (or such a world) cannot be compared with physics: say so first."""
    from cosmos_sim.worlds.dataset import require_simulator as require

    if model != "pretrained" and not physics_only and Path(model).exists():
        from cosmos_sim.training.checkpoint import read_metadata
        from cosmos_sim.world_model import FILE

        path = Path(model) / FILE if Path(model).is_dir() else Path(model)
        if path.is_file():
            world = read_metadata(path).get("world", world)
    require(world, "closed-loop comparison (policies acting in physics)")
