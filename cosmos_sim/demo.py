"""`cosmos-sim demo`: the learned twin of every world against MuJoCo and PyBullet, in minutes.

By default it compares each world's shipped model (cosmos_sim/zoo.py) with both physics engines:
open loop, closed loop over the world's policy ladder, ranking; one report per world and one
table for all of them (`run_zoo_demo`). `--train` runs the whole loop for one world instead
(`run_demo`):

    collect episodes in MuJoCo (the world's recipe: experts of mixed skill, exploration, noise)
      -> train the tokenizer, then the state model and the dynamics (time-boxed)
      -> compare learned vs MuJoCo vs PyBullet -> DIR/report/report.md (+ report.json, plots, videos)

Each training stage skips itself when its output is already there and resumes when it was cut
short, so re-running after an interruption continues. The "cpu" preset is sized for about 20
minutes on a 2-core machine; "gpu" trains longer and bigger on a CUDA device.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cosmos_sim.config import arg, positive_int
from cosmos_sim.errors import InputError, MissingPathError, UnknownChoiceError
from cosmos_sim.zoo import Recipe, recipe


@dataclass(frozen=True)
class DemoConfig:
    """`demo --train`: a world's recipe, shortened by the preset, time-boxed, then compared."""

    recipe: Recipe
    tokenizer_minutes: float = 5.0
    dynamics_minutes: float = 6.0
    compare_episodes: int = 50
    open_loop_episodes: int = 16
    horizon: int = 32
    policies: str = "ladder"
    workers: int = 2
    device: str | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "recipe": self.recipe.to_dict()}


# preset -> (changes to the world's recipe, DemoConfig fields). The CPU loop spends its minutes on
# dynamics rather than camera variation: one fixed camera. Its state model, which planners plan with, also
# learns from episodes of states alone (cheap: nothing rendered); its fit counts against the dynamics' minutes.
PRESETS: dict[str, tuple[dict, dict]] = {
    "cpu": ({"episodes": 240, "camera": "fixed", "tokenizer_steps": 1250, "dynamics_steps": 700, "state_steps": 4000,
             "state_episodes": 1500}, {"dynamics_minutes": 8.0}),
    "gpu": ({"episodes": 1000, "tokenizer_steps": 20000, "tokenizer_batch": 64, "dynamics_steps": 20000,
             "dynamics_batch": 128}, {"tokenizer_minutes": 15.0, "dynamics_minutes": 20.0, "compare_episodes": 100,
                                      "device": "cuda"}),
    "smoke": ({"episodes": 8, "tokenizer": "tiny", "tokenizer_steps": 10, "preset": "tiny", "dynamics_steps": 10,
               "state_steps": 80, "state_episodes": 0}, {"compare_episodes": 3, "open_loop_episodes": 2, "horizon": 4,
                                    "policies": "random,scripted:1", "workers": 1}),
}


def demo_config(preset: str, world: str = "push", episodes: int | None = None, device: str | None = None,
                seed: int = 0) -> DemoConfig:
    if preset not in PRESETS:
        raise UnknownChoiceError("demo preset", preset, PRESETS)
    changes, fields = PRESETS[preset]
    base = recipe(world)
    r = replace(base, **changes, data_seed=base.data_seed + seed, seed=seed,
                **({"episodes": episodes} if episodes else {}))
    return DemoConfig(r, **{**fields, **({"device": device} if device else {})})


PHYSICS_EPISODES, ZOO_EPISODES = 20, 30  # default episodes per world and backend / per policy and backend


@dataclass(frozen=True)
class DemoCommand:
    """What `cosmos-sim demo` runs: the shipped twins, the whole loop (`train`) or physics alone."""

    train: bool = arg(False, "collect, train and compare one world (--world) instead")
    world: str = arg("push", "with --train: the world")
    preset: str = arg("cpu", "with --train: cpu (about 20 min on 2 cores), gpu (CUDA) or smoke (seconds, for tests)")
    episodes: int | None = arg(None, f"closed-loop episodes per policy and backend (none: {ZOO_EPISODES}); with "
                                     "--train: episodes to collect (none: the preset's); with --physics-only: per "
                                     f"world and backend (none: {PHYSICS_EPISODES})", parse=positive_int)
    seed: int = arg(0, "seed of collection, training and evaluation")
    physics_only: bool = arg(False, "only run the scripted expert in MuJoCo and PyBullet and write side-by-side "
                                    "videos")
    image_size: int = arg(64, "with --physics-only: frame size", parse=positive_int)

    def __post_init__(self):
        if (self.episodes is not None and self.episodes < 1) or self.image_size < 1:
            raise InputError("demo needs episodes >= 1 and image_size >= 1")


def run_command(command: DemoCommand, out: str | Path, worlds=None, device: str | None = None,
                progress: bool = True) -> list[str]:
    """`cosmos-sim demo`: the shipped models of `worlds` against physics (`run_zoo_demo`); with `train` the
    whole loop for one world (`run_demo`, the `preset`'s episodes unless `episodes`); with `physics_only` the
    scripted expert in each engine (`physics_demo`, at `image_size`). Returns the summary lines to print."""
    c = command
    if c.physics_only:
        s = physics_demo(worlds, c.episodes or PHYSICS_EPISODES, c.image_size, out, seed=c.seed,
                         progress=None if progress else False)
        return physics_summary_lines(s)
    from cosmos_sim.device import resolve_device

    resolve_device(device)  # a bad or unavailable device fails before any work
    if not c.train:
        return zoo_summary_lines(run_zoo_demo(out, worlds, episodes=c.episodes or ZOO_EPISODES, device=device,
                                              seed=c.seed, progress=progress))
    result = run_demo(demo_config(c.preset, c.world, episodes=c.episodes, device=device, seed=c.seed), out,
                      progress=progress)
    return ["", f"Done in {sum(result['times'].values()):.0f} s. Summary:", *summary_lines(result)]


def run_demo(config: DemoConfig, out: str | Path, progress: bool = True, log=print) -> dict:
    """The whole loop for one world (see the module docstring); returns the report, timings and `out`."""
    from cosmos_sim.data import collect
    from cosmos_sim.dynamics.train import StateModelConfig, train_world_model
    from cosmos_sim.evaluation.compare import CompareConfig, compare
    from cosmos_sim.tokenizer import preset
    from cosmos_sim.world_model import FILE

    out, r = Path(out), config.recipe
    compare_cfg = CompareConfig(world=r.world, policies=(config.policies,), episodes=config.compare_episodes,
                                seed=r.seed, open_loop_episodes=config.open_loop_episodes,
                                horizon=config.horizon, device=config.device)  # checked before any work
    preset(r.tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n")
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    log(f"[1/4] collecting {r.episodes} {r.world} episodes (MuJoCo, mixed-skill experts) -> {out / 'data'}")
    collect(r.collect_config(config.workers), out / "data", progress=progress)
    times["collect_s"] = time.perf_counter() - t0

    log(f"[2-3/4] training a world model: the {r.tokenizer} tokenizer, then {r.family} dynamics ({r.preset}) + "
        "state model, each time-boxed")
    tok, dyn = r.train_configs()
    trained = train_world_model(
        out / "data", out, r.tokenizer, r.family, r.preset,
        tokenizer_train=replace(tok, time_limit_s=config.tokenizer_minutes * 60),
        dynamics_train=replace(dyn, time_limit_s=config.dynamics_minutes * 60),
        # the recipe's steps and state-only episodes; the model kind and members are the trainer's defaults
        state=StateModelConfig(steps=r.state_steps, episodes=r.state_episodes),
        resume=True, device=config.device, progress=progress, log=lambda msg: log(f"      {msg}"))
    times["tokenizer_s"], times["dynamics_s"] = trained["tokenizer_s"], trained["dynamics_s"]

    t0 = time.perf_counter()
    log(f"[4/4] comparing learned vs MuJoCo vs PyBullet ({len(compare_cfg.policies)} policies x "
        f"{config.compare_episodes} episodes per backend) -> {out / 'report'}")
    report = compare(compare_cfg, out / FILE, out / "report", progress=progress)
    times["compare_s"] = time.perf_counter() - t0
    (out / "demo_timing.json").write_text(json.dumps(times, indent=1) + "\n")
    return {"report": report, "times": times, "out": str(out)}


def run_zoo_demo(out: str | Path, worlds=None, episodes: int = 30, open_loop_episodes: int = 8,
                 device: str | None = None, seed: int = 0, progress: bool = True, log=print) -> dict:
    """Each shipped model against MuJoCo and PyBullet: `out/<world>/report.md` and `out/report.md`."""
    from cosmos_sim.evaluation.compare import CompareConfig, compare
    from cosmos_sim.fileio import atomic_write_bytes
    from cosmos_sim.worlds import world_list
    from cosmos_sim.zoo import pretrained_path, shipped_worlds

    if not worlds and not shipped_worlds():
        raise MissingPathError("no shipped world models in this install: build them with `python benchmarks/zoo.py "
                                "build`, or run the whole loop for one world with `cosmos-sim demo --train`")
    chosen = world_list(worlds or shipped_worlds())
    for w in chosen:
        pretrained_path(w)  # every world has its model, before any work
    out = Path(out)
    reports, times = {}, {}
    for i, w in enumerate(chosen):
        t0 = time.perf_counter()
        log(f"[{i + 1}/{len(chosen)}] {w.name}: the shipped model vs MuJoCo vs PyBullet -> {out / w.name.lower()}")
        cfg = CompareConfig(world=w.name, episodes=episodes, open_loop_episodes=open_loop_episodes, seed=seed,
                            videos=1, device=device)
        reports[w.name] = compare(cfg, "pretrained", out / w.name.lower(), progress=progress)
        times[w.name] = time.perf_counter() - t0
    atomic_write_bytes(out / "report.md", "\n".join(zoo_table(reports)).encode())
    return {"reports": reports, "times": times, "out": str(out)}


def zoo_summary_lines(result: dict) -> list[str]:
    t = sum(result["times"].values())
    return ["", f"Done in {t:.0f} s. {Path(result['out']) / 'report.md'}:", "", *zoo_table(result["reports"])]


def zoo_table(reports: dict) -> list[str]:
    """One row per world: the learned twin against MuJoCo, PyBullet's figures beside it."""
    cameras = sorted({str(rep["open_loop"].get("camera", "default")) for rep in reports.values()})
    lines = ["# The learned twin of every world against MuJoCo", "",
             "Open loop at 16 steps (PyBullet, the physics-vs-physics yardstick, in brackets; camera: "
             f"{', '.join(cameras)}, as each model was trained) and the ranking of each world's policy ladder.", "",
             "| world | PSNR t=16 dB | task object error t=16 cm | Spearman ρ | success MAE points | report |",
             "|---|---:|---:|---:|---:|---|"]
    for world, rep in reports.items():
        ol, rk = rep["open_loop"], rep["ranking"]["pairs"]["world_model"]
        t = min(16, ol["steps"][-1]) - 1
        learned, pb = ol["pairs"]["world_model"], ol["pairs"]["pybullet"]
        entry = ol.get("position_entry")
        err = (f"{100 * learned[f'state_error/{entry}']['mean'][t]:.1f} "
               f"({100 * pb[f'state_error/{entry}']['mean'][t]:.1f})") if entry else "–"
        rho = rk["success"]["spearman"]
        lines.append(f"| {world} | {learned['psnr']['mean'][t]:.1f} ({pb['psnr']['mean'][t]:.1f}) | {err} | "
                     f"{'–' if rho is None else f'{rho:.2f}'} | {rk['success_mae_points']:.1f} | "
                     f"[{world.lower()}/report.md]({world.lower()}/report.md) |")
    return lines + [""]


def summary_lines(result: dict) -> list[str]:
    """The few numbers a reader wants first, and where the files are."""
    rep, out = result["report"], Path(result["out"])
    ol, rk = rep["open_loop"], rep["ranking"]
    lines = []
    steps = [s for s in (1, 4, 16, 32) if s <= ol["steps"][-1]]
    entry = ol.get("position_entry")
    for name, label in (("world_model", "learned "), ("pybullet", "PyBullet")):
        if name not in ol["pairs"]:
            continue
        p = ol["pairs"][name]
        txt = "  ".join(f"t={s}: {p['psnr']['mean'][s - 1]:.1f} dB" for s in steps)
        if entry:
            txt += "  | " + entry + " error " + " ".join(f"{p[f'state_error/{entry}']['mean'][s - 1] * 100:.1f}cm"
                                                      for s in steps)
        lines.append(f"  open loop vs MuJoCo, {label}: {txt}")
    for name, label in (("world_model", "learned "), ("pybullet", "PyBullet")):
        if name in rk["pairs"]:
            p = rk["pairs"][name]
            rho = p["success"]["spearman"]
            lines.append(f"  ranking vs MuJoCo, {label}: Spearman rho {rho if rho is None else round(rho, 3)}, "
                         f"success-rate MAE {p['success_mae_points']:.1f} points")
    nan = float("nan")
    lines.append("  policy success rates (MuJoCo / PyBullet / learned): " + ", ".join(
        f"{r['policy']} {r['mujoco']:.0f}/{r.get('pybullet', nan):.0f}/{r.get('world_model', nan):.0f}"
        for r in rk["rows"]))
    t = result["times"]
    lines.append(f"  time: collect {t['collect_s']:.0f}s, tokenizer {t['tokenizer_s']:.0f}s, dynamics "
                 f"{t['dynamics_s']:.0f}s, compare {t['compare_s']:.0f}s")
    lines.append(f"Report: {out / 'report' / 'report.md'} (plots horizon.png, ranking.png; videos "
                 f"{', '.join(rep['files']['videos'])})")
    world = rep["config"]["world"]
    lines.append(f"World model: {out / 'world_model.safetensors'} -> gym.make('cosmos_sim/{world}-v0', "
                 f"backend='world_model', model='{out}')")
    return lines


# --- the physics demo: the scripted expert side by side in every physics backend ------------------------
BACKEND_LABELS = {"mujoco": "MuJoCo", "pybullet": "PyBullet", "world_model": "learned"}
PHYSICS_DEMO_BACKENDS = ("mujoco", "pybullet")


def _demo_frame(world_name: str, i: int, n: int, t: int, eps: dict, scale: int):
    """Frame t of episode i: each backend's view, labelled with its time step and outcome."""
    from cosmos_sim import video

    views, labels = [], []
    for b, ep in eps.items():
        frames = ep.observations["pixels"]
        k = min(t, len(frames) - 1)
        views.append(frames[k])
        status = "success" if ep.success[k] else ("failed" if k == len(frames) - 1 else "")
        labels.append(f"{BACKEND_LABELS.get(b, b)}  t={k}  {status}".rstrip())
    body = video.tile(views, labels=labels, scale=scale)
    return video.label(body, f"{world_name}  episode {i + 1}/{n}  seed {eps[next(iter(eps))].seed}")


def physics_demo(worlds, episodes: int, image_size: int, out: str | Path, seed: int = 0, skill: float = 1.0,
                 backends=PHYSICS_DEMO_BACKENDS, progress: bool | None = None) -> dict:
    """The scripted expert in each backend from the same seeds: one side-by-side MP4 per world.

    `worlds`: names or World instances (None: all). Returns a summary dict (also written to
    `out/physics_demo.json`).
    """
    from cosmos_sim.envs.physics_env import parse_image_size
    from cosmos_sim.worlds import world_list

    worlds = world_list([getattr(w, "name", w) for w in worlds] if worlds else None)
    parse_image_size(image_size)  # everything checked before any work
    import sys

    import gymnasium as gym
    from tqdm import tqdm

    from cosmos_sim import video
    from cosmos_sim.envs import env_id
    from cosmos_sim.fileio import atomic_write_json
    from cosmos_sim.policies import ScriptedPolicy
    from cosmos_sim.policies.rollout import run_episode

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scale = max(1, -(-256 // image_size))  # tiles at least 256 px wide
    hold = 5  # frames held at the end of each episode, so the outcome is visible
    summary = {"policy": f"scripted(skill={skill:g})", "episodes": episodes,
               "seeds": [seed + i for i in range(episodes)], "image_size": image_size, "backends": list(backends),
               "worlds": {}}
    first_frames = []
    t0 = time.perf_counter()
    bar = tqdm(total=len(worlds) * len(backends) * episodes, unit="ep", desc="demo",
               disable=None if progress is None else not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for world in worlds:
            name = world.name.lower()
            envs = {b: gym.make(env_id(world.name), backend=b, obs_mode="both", image_size=image_size)
                    for b in backends}
            policies = {b: ScriptedPolicy(world, skill=skill, seed=seed) for b in backends}
            results: dict[str, list] = {b: [] for b in backends}
            path = out / f"{name}.mp4"
            fps = round(1.0 / world.control_dt)
            try:
                with video.VideoWriter(path, fps=fps) as writer:
                    for i in range(episodes):
                        eps = {}
                        for b in backends:
                            bar.set_postfix_str(f"{name} {b}", refresh=False)
                            eps[b] = run_episode(envs[b], policies[b], seed + i)
                            bar.update(1)
                        if i == 0:
                            first_frames.append([eps[b].observations["pixels"][0] for b in backends])
                        length = max(e.length + 1 for e in eps.values()) + hold
                        for t in range(length):
                            writer.append(_demo_frame(world.name, i, episodes, t, eps, scale))
                        for b, e in eps.items():
                            e.observations = None  # the video has the frames; free the memory
                            results[b].append(e)
            finally:
                for env in envs.values():
                    env.close()
            summary["worlds"][name] = {
                "video": str(path), "frames": writer.frames_written, "fps": fps,
                **{b: {"successes": sum(e.succeeded for e in rs), "episodes": len(rs),
                       "success_rate": sum(e.succeeded for e in rs) / len(rs),
                       "mean_steps": sum(e.length for e in rs) / len(rs),
                       "mean_return": sum(e.ret for e in rs) / len(rs),
                       "per_episode": [{"seed": e.seed, "success": e.succeeded, "steps": e.length} for e in rs]}
                   for b, rs in results.items()},
            }
    finally:
        bar.close()
    labels = [[f"{w.name}  {BACKEND_LABELS.get(b, b)}" for b in backends] for w in worlds]
    summary["first_frames"] = str(video.save_png(out / "first_frames.png",
                                                 video.grid(first_frames, labels=labels, scale=scale)))
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    summary["summary_json"] = str(out / "physics_demo.json")
    atomic_write_json(out / "physics_demo.json", summary)
    return summary


def physics_summary_lines(s: dict) -> list[str]:
    """What `cosmos-sim demo --physics-only` prints: success per world and backend, and the files."""
    from cosmos_sim.text import format_table

    backends = s["backends"]
    labels = [BACKEND_LABELS.get(b, b) for b in backends]
    rows = [[name] + [f"{w[b]['successes']}/{w[b]['episodes']} ({100 * w[b]['success_rate']:.0f}%)" for b in backends]
            + [f"{w[b]['mean_steps']:.1f}" for b in backends] for name, w in s["worlds"].items()]
    lines = [f"Scripted expert (skill=1), {s['episodes']} episode(s) per world, seeds {s['seeds'][0]}.."
             f"{s['seeds'][-1]}, the same in every backend:", "",
             format_table(["world", *[f"{x} success" for x in labels], *[f"{x} steps" for x in labels]], rows),
             "", f"Wrote (in {s['seconds']:g} s):"]
    lines += [f"  {w['video']}  ({' | '.join(labels)}, {w['frames']} frames at {w['fps']} fps)"
              for w in s["worlds"].values()]
    lines += [f"  {s['first_frames']}  (first frame of every world and backend)",
              f"  {s['summary_json']}  (success rates and per-episode results)"]
    return lines
