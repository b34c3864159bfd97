"""`cosmos-sim`: the command line.

Each subcommand is one `cmd_*` function plus one `Command` entry in `COMMANDS`, which `build_parser`
turns into argparse subparsers. A command with `subcommands` (e.g. `data info|verify|curate`) nests
the same way, so adding one is a function and a table row:

    Command("collect", "record episodes into a dataset", cmd_collect, add_collect_args)

User errors (unknown names, bad values, missing files) print one line, `cosmos-sim: error: ...`, on
stderr and exit with status 1 (2 for command-line syntax errors); no traceback. Set COSMOS_SIM_DEBUG=1
to get the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROG = "cosmos-sim"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# --- command table -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One subcommand: `help` is the line in `cosmos-sim --help`; `description` the text of its own --help."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int | None] | None = None
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None
    subcommands: tuple[Command, ...] = field(default_factory=tuple)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' line breaks; options say their defaults in their own help."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the command's --help, instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _fail(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def world_list(values: Sequence[str] | None) -> list:
    """World names from `--worlds push reach` or `--worlds push,reach` (case-insensitive); all when empty."""
    from cosmos_sim.worlds import WORLDS, get_world

    names = [n for v in (values or []) for n in v.split(",") if n.strip()]
    if not names:
        return [get_world(n) for n in WORLDS]
    worlds = []
    for n in names:
        w = get_world(n.strip())  # UnknownChoiceError names the valid choices
        if w.name not in [x.name for x in worlds]:
            worlds.append(w)
    return worlds


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with aligned columns (left for text, right for numbers)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in rows) and bool(rows) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(s.rstrip() for s in out)


def _is_number(x) -> bool:
    try:
        float(str(x))
    except ValueError:
        return False
    return not isinstance(x, bool)


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically (temp file + os.replace)."""
    from cosmos_sim.fileio import atomic_write_json

    return atomic_write_json(path, obj)


# --- cosmos-sim worlds -----------------------------------------------------------------------------
def world_info(world) -> dict:
    """What `cosmos-sim worlds` shows for one world (also its --json record)."""
    from cosmos_sim.envs import BACKENDS, env_id

    d = world.describe()
    return {
        "name": world.name.lower(),
        "gym_id": env_id(world.name),
        "description": d["description"],
        "action": d["action"],
        "action_dim": world.action_dim,
        "state": [{"name": n, "size": k} for n, k in d["state"]],
        "state_dim": world.state_dim,
        "control_hz": d["control_hz"],
        "max_episode_steps": d["max_episode_steps"],
        "episode_seconds": round(d["max_episode_steps"] / d["control_hz"], 3),
        "backends": list(BACKENDS),
    }


def add_worlds_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="WORLD", help="only these worlds (default: all)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")


def cmd_worlds(args: argparse.Namespace) -> int:
    infos = [world_info(w) for w in world_list(args.names)]
    if args.json:
        print(json.dumps(infos, indent=2))
        return EXIT_OK
    for i, d in enumerate(infos):
        if i:
            print()
        print(f"{d['name']}  ({d['gym_id']})")
        if d["description"]:
            print(f"  {d['description']}")
        print(f"  action    [{d['action_dim']}] {', '.join(d['action'])}  (each in [-1, 1])")
        layout = "  ".join(f"{e['name']}[{e['size']}]" for e in d["state"])
        print(f"  state     [{d['state_dim']}] {layout}")
        print(f"  control   {d['control_hz']:g} Hz, max {d['max_episode_steps']} steps "
              f"({d['episode_seconds']:g} s)")
        print(f"  backends  {', '.join(d['backends'])}")
    return EXIT_OK


# --- cosmos-sim demo -------------------------------------------------------------------------------
BACKEND_LABELS = {"mujoco": "MuJoCo", "pybullet": "PyBullet", "world_model": "learned"}
DEMO_BACKENDS = ("mujoco", "pybullet")


@dataclass
class Episode:
    seed: int
    frames: list  # (H, W, 3) uint8, reset frame first
    successes: list  # success flag after each frame
    success: bool
    steps: int
    ret: float


def run_episode(env, policy, seed: int) -> Episode:
    """One episode of `policy` in `env` from `reset(seed=seed)`, keeping every frame."""
    import numpy as np

    from cosmos_sim.policies import batch_obs

    policy.reset()
    obs, info = env.reset(seed=seed)
    frames, flags, ret = [obs["pixels"]], [bool(info["success"])], 0.0
    done = False
    while not done:
        action = np.asarray(policy.act(batch_obs(obs)))[0]
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append(obs["pixels"])
        flags.append(bool(info["success"]))
        ret += float(reward)
        done = terminated or truncated
    return Episode(seed, frames, flags, bool(info["success"]), len(frames) - 1, ret)


def _demo_frame(world_name: str, i: int, n: int, t: int, eps: dict, scale: int):
    from cosmos_sim import video

    views, labels = [], []
    for b, ep in eps.items():
        k = min(t, len(ep.frames) - 1)
        views.append(ep.frames[k])
        status = "success" if ep.successes[k] else ("failed" if k == len(ep.frames) - 1 else "")
        labels.append(f"{BACKEND_LABELS.get(b, b)}  t={k}  {status}".rstrip())
    body = video.tile(views, labels=labels, scale=scale)
    return video.label(body, f"{world_name}  episode {i + 1}/{n}  seed {eps[next(iter(eps))].seed}")


def physics_demo(worlds, episodes: int, image_size: int, out: Path, seed: int = 0, skill: float = 1.0,
                 backends: Sequence[str] = DEMO_BACKENDS, progress: bool | None = None) -> dict:
    """The scripted expert in each backend from the same seeds: one side-by-side MP4 per world.

    Returns a summary dict (also written to `out/physics_demo.json`).
    """
    import gymnasium as gym
    from tqdm import tqdm

    from cosmos_sim import video
    from cosmos_sim.envs import env_id
    from cosmos_sim.policies import ScriptedPolicy

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
            results: dict[str, list[Episode]] = {b: [] for b in backends}
            path = out / f"{name}.mp4"
            fps = round(1.0 / world.control_dt)
            try:
                with video.VideoWriter(path, fps=fps) as writer:
                    for i in range(episodes):
                        eps = {}
                        for b in backends:
                            bar.set_postfix_str(f"{name} {b}", refresh=False)
                            eps[b] = run_episode(envs[b], policies[b], seed + i)
                            results[b].append(eps[b])
                            bar.update(1)
                        if i == 0:
                            first_frames.append([eps[b].frames[0] for b in backends])
                        length = max(len(e.frames) for e in eps.values()) + hold
                        for t in range(length):
                            writer.append(_demo_frame(world.name, i, episodes, t, eps, scale))
                        for e in eps.values():
                            e.frames = []  # the video has them; free the memory
            finally:
                for env in envs.values():
                    env.close()
            summary["worlds"][name] = {
                "video": str(path), "frames": writer.frames_written, "fps": fps,
                **{b: {"successes": sum(e.success for e in results[b]), "episodes": len(results[b]),
                       "success_rate": sum(e.success for e in results[b]) / len(results[b]),
                       "mean_steps": sum(e.steps for e in results[b]) / len(results[b]),
                       "mean_return": sum(e.ret for e in results[b]) / len(results[b]),
                       "per_episode": [{"seed": e.seed, "success": e.success, "steps": e.steps} for e in results[b]]}
                   for b in backends},
            }
    finally:
        bar.close()
    labels = [[f"{w.name}  {BACKEND_LABELS.get(b, b)}" for b in backends] for w in worlds]
    summary["first_frames"] = str(video.save_png(out / "first_frames.png",
                                                 video.grid(first_frames, labels=labels, scale=scale)))
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    summary["summary_json"] = str(out / "physics_demo.json")
    write_json(out / "physics_demo.json", summary)
    return summary


def add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory (default: %(default)s)")
    p.add_argument("--preset", default="cpu", help="cpu (about 20 min on 2 cores), gpu (CUDA) or smoke "
                                                   "(seconds, for tests) (default: %(default)s)")
    p.add_argument("--episodes", type=positive_int, default=None,
                   help="episodes to collect (default: the preset's); with --physics-only: per world and backend")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="seed of collection, training and evaluation (default: 0)")
    p.add_argument("--physics-only", action="store_true",
                   help="only run the scripted expert in MuJoCo and PyBullet and write side-by-side videos")
    p.add_argument("--worlds", nargs="+", metavar="WORLD", default=None,
                   help="with --physics-only: worlds to run (default: all)")
    p.add_argument("--image-size", type=positive_int, default=64,
                   help="with --physics-only: frame size in pixels (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_demo(args: argparse.Namespace) -> int:
    if args.physics_only:
        return cmd_physics_demo(args)
    from cosmos_sim.demo import demo_config, run_demo, summary_lines

    _check_device(args.device)
    cfg = demo_config(args.preset, episodes=args.episodes, device=args.device, seed=args.seed)
    t0 = time.perf_counter()
    result = run_demo(cfg, args.out, progress=not args.no_progress)
    print(f"\nDone in {time.perf_counter() - t0:.0f} s. Summary:")
    for line in summary_lines(result):
        print(line)
    return EXIT_OK


def cmd_physics_demo(args: argparse.Namespace) -> int:
    from cosmos_sim.envs.physics_env import parse_image_size

    worlds = world_list(args.worlds)  # validate everything before any work
    parse_image_size(args.image_size)
    s = physics_demo(worlds, args.episodes or 20, args.image_size, args.out, seed=args.seed,
                     progress=False if args.no_progress else None)
    backends = s["backends"]
    print(f"Scripted expert (skill=1), {s['episodes']} episode(s) per world, seeds {s['seeds'][0]}.."
          f"{s['seeds'][-1]}, the same in every backend:\n")
    headers = ["world"] + [f"{BACKEND_LABELS.get(b, b)} success" for b in backends] + \
        [f"{BACKEND_LABELS.get(b, b)} steps" for b in backends]
    rows = []
    for name, w in s["worlds"].items():
        rows.append([name] + [f"{w[b]['successes']}/{w[b]['episodes']} ({100 * w[b]['success_rate']:.0f}%)"
                              for b in backends] + [f"{w[b]['mean_steps']:.1f}" for b in backends])
    print(format_table(headers, rows))
    print(f"\nWrote (in {s['seconds']:g} s):")
    for w in s["worlds"].values():
        print(f"  {w['video']}  ({' | '.join(BACKEND_LABELS.get(b, b) for b in backends)}, "
              f"{w['frames']} frames at {w['fps']} fps)")
    print(f"  {s['first_frames']}  (first frame of every world and backend)")
    print(f"  {s['summary_json']}  (success rates and per-episode results)")
    return EXIT_OK


# --- cosmos-sim compare / evaluate -----------------------------------------------------------------
def add_compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--world", default="push", help="world name (default: push)")
    p.add_argument("--model", required=True, help="world model: run directory or world_model.safetensors")
    p.add_argument("--policies", default="ladder",
                   help="comma-separated policy specs (scripted:SKILL, random, explore) or 'ladder' "
                        "(random + scripted at skill 0, .25, .5, .75, 1) (default: ladder)")
    p.add_argument("--episodes", type=positive_int, default=50, help="closed-loop episodes per policy and backend")
    p.add_argument("--open-loop-episodes", type=positive_int, default=16, help="open-loop episodes (default: 16)")
    p.add_argument("--horizon", type=positive_int, default=32, help="open-loop steps (default: 32)")
    p.add_argument("--videos", type=int, default=3, help="side-by-side videos to write (default: 3)")
    p.add_argument("--camera", default=None, choices=["default", "random"],
                   help="camera per episode (default: the mode the model was trained with)")
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed SEED+i in every backend")
    p.add_argument("--device", default=None, help="device of the world model (default: cuda when available)")
    p.add_argument("--out", type=Path, required=True, help="report directory")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_compare(args: argparse.Namespace) -> int:
    from cosmos_sim.evaluation.compare import CompareConfig, compare, load_checked_model

    _check_device(args.device)
    cfg = CompareConfig(world=args.world, policies=(args.policies,), episodes=args.episodes, seed=args.seed,
                        open_loop_episodes=args.open_loop_episodes, horizon=args.horizon, videos=args.videos,
                        camera=args.camera, device=args.device)
    model = load_checked_model(args.model, cfg.world, args.device)  # a bad path or world fails here, first
    report = compare(cfg, model, args.out, progress=not args.no_progress)
    report["model"]["path"] = str(args.model)
    rk = report["ranking"]
    print(format_table(["policy", *[BACKEND_LABELS.get(b, b) + " success %" for b in cfg.backends]],
                       [[r["policy"], *[f"{r[b]:.0f}" for b in cfg.backends]] for r in rk["rows"]]))
    for b, p in rk["pairs"].items():
        rho = p["success"]["spearman"]
        print(f"{BACKEND_LABELS.get(b, b)} vs MuJoCo: Spearman rho {'n/a' if rho is None else f'{rho:.3f}'}, "
              f"success MAE {p['success_mae_points']:.1f} points")
    print(f"report: {Path(args.out) / 'report.md'}")
    return EXIT_OK


def add_evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--world", default="push", help="world name (default: push)")
    p.add_argument("--backend", default="mujoco", help="mujoco, pybullet or world_model (default: mujoco)")
    p.add_argument("--model", default=None,
                   help="world model (needed for --backend world_model, and to plan in for --policy planner)")
    p.add_argument("--policy", default="scripted",
                   help="scripted[:SKILL], random, explore, planner[:cem|mppi] (plans in --model), or a trained "
                        "policy RUN (from cosmos-sim train-policy) (default: scripted)")
    p.add_argument("--episodes", type=positive_int, default=50, help="episodes (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed SEED+i")
    p.add_argument("--camera", default=None, choices=["default", "random"], help="camera per episode")
    p.add_argument("--device", default=None, help="device of the world model")
    p.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cosmos_sim.evaluation.closed_loop import BACKENDS, evaluate
    from cosmos_sim.evaluation.compare import load_checked_model
    from cosmos_sim.policies.registry import check_policy_spec
    from cosmos_sim.worlds import get_world

    world = get_world(args.world).name
    check_policy_spec(args.policy)
    if args.backend not in BACKENDS:
        from cosmos_sim.errors import UnknownChoiceError

        raise UnknownChoiceError("backend", args.backend, BACKENDS)
    model = None
    if args.policy.startswith("planner") and args.model is None:
        raise ValueError("--policy planner needs --model RUN, the world model to plan in (make one with "
                         "`cosmos-sim train` or `cosmos-sim demo`)")
    if args.backend == "world_model" or args.policy.startswith("planner"):
        _check_device(args.device)
        model = load_checked_model(args.model, world, args.device)
    r = evaluate(world, args.backend, args.policy, episodes=args.episodes, seed=args.seed,
                 model=model if args.backend == "world_model" else None, device=args.device, camera=args.camera,
                 planner_model=model)

    def ci(c, scale=1.0, d=1):
        return f"{c['mean'] * scale:.{d}f} [{c['lo'] * scale:.{d}f}, {c['hi'] * scale:.{d}f}]"

    print(format_table(["world", "backend", "policy", "episodes", "success %", "return", "length"],
                       [[world, args.backend, args.policy, args.episodes, ci(r["success_rate"], 100, 0),
                         ci(r["return"]), ci(r["length"])]]))
    if args.out is not None:
        write_json(args.out, r)
        print(f"wrote {args.out}")
    return EXIT_OK


# --- cosmos-sim collect / data ---------------------------------------------------------------------
def skill_range(text: str) -> tuple[float, float]:
    """`0.7` or `0.3:1.0`."""
    try:
        parts = [float(v) for v in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"skill must be a number or LO:HI, got {text!r}") from None
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"skill must be a number or LO:HI, got {text!r}")
    return (parts[0], parts[-1])


def add_collect_args(p: argparse.ArgumentParser) -> None:
    from cosmos_sim.data.collect import CAMERA_MODES

    p.add_argument("--world", required=True, help="world name, e.g. push")
    p.add_argument("--backend", default="mujoco", help="mujoco or pybullet (default: mujoco)")
    p.add_argument("--policy", default="mix", help="scripted, explore, random or mix (default: mix)")
    p.add_argument("--skill", type=skill_range, default=(1.0, 1.0),
                   help="expert skill, or a range LO:HI drawn per episode (default: 1.0)")
    p.add_argument("--episodes", type=positive_int, required=True, help="episodes wanted in the dataset")
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed SEED + i (default: 0)")
    p.add_argument("--camera", default="fixed", choices=CAMERA_MODES, help="camera per episode (default: fixed)")
    p.add_argument("--image-size", type=positive_int, default=64, help="frame size (default: 64)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default: 1)")
    p.add_argument("--shard-mb", type=float, default=32.0, help="target shard size in MB (default: 32)")
    p.add_argument("--out", required=True, help="dataset directory; re-running resumes")


def cmd_collect(args: argparse.Namespace) -> int:
    from cosmos_sim.data import CollectConfig, collect

    cfg = CollectConfig(world=args.world, backend=args.backend, policy=args.policy, skill=args.skill,
                        episodes=args.episodes, base_seed=args.seed, camera=args.camera,
                        image_size=args.image_size, workers=args.workers, shard_mb=args.shard_mb)
    t = time.perf_counter()
    m = collect(cfg, args.out)
    eps = sum(s["episodes"] for s in m["shards"])
    frames = sum(s["frames"] for s in m["shards"])
    print(f"{args.out}: {eps} episodes, {frames} frames in {len(m['shards'])} shards "
          f"({time.perf_counter() - t:.1f} s)")
    return EXIT_OK


def add_data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="dataset directory")


def add_data_info_args(p: argparse.ArgumentParser) -> None:
    add_data_dir_arg(p)
    p.add_argument("--thumbnails", default=None, help="thumbnail grid PNG (default: DIR/thumbnails.png)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def cmd_data_info(args: argparse.Namespace) -> int:
    from cosmos_sim.data.inspect import info

    r = info(args.dir, thumbnails=args.thumbnails or Path(args.dir) / "thumbnails.png")
    if args.json:
        print(json.dumps(r, indent=2))
        return EXIT_OK
    moved = "n/a" if r["objects_moved_share"] is None else f"{100 * r['objects_moved_share']:.0f}%"
    rows = [("world", r["world"]), ("image size", "x".join(map(str, r["image_size"]))),
            ("episodes", r["episodes"]), ("frames", r["frames"]), ("shards", r["shards"]),
            ("size", f"{r['bytes'] / 2**20:.1f} MiB"), ("backends", r["backends"]), ("policies", r["policies"]),
            ("cameras", r["cameras"]), ("success", f"{100 * r['success_rate']:.0f}%"),
            ("objects moved", moved), ("diverged", r["diverged"]), ("curated view", r["curated"]),
            ("thumbnails", r.get("thumbnails", "-"))]
    print(format_table(["", ""], rows))
    return EXIT_OK


def cmd_data_verify(args: argparse.Namespace) -> int:
    from cosmos_sim.data.inspect import verify

    problems = verify(args.dir)
    for name, msg in problems:
        print(f"{name}: {msg}", file=sys.stderr)
    if problems:
        _fail(f"{len(problems)} problem(s) in {args.dir}")
        return EXIT_ERROR
    print(f"{args.dir}: OK (checksums, schema and counts)")
    return EXIT_OK


def add_data_curate_args(p: argparse.ArgumentParser) -> None:
    add_data_dir_arg(p)
    p.add_argument("--out", required=True, help="directory for the curated view (a manifest; no data copied)")
    p.add_argument("--min-motion", type=float, default=0.002,
                   help="share of pixels that ever change below which an episode is static (default: 0.002)")
    p.add_argument("--keep-duplicates", action="store_true", help="keep episodes with the same start and actions")


def cmd_data_curate(args: argparse.Namespace) -> int:
    from cosmos_sim.data.curate import CurateConfig, curate

    s = curate(args.dir, args.out, CurateConfig(min_motion=args.min_motion,
                                                drop_duplicates=not args.keep_duplicates))
    print(f"{args.out}: kept {s['kept']} of {s['episodes_in']} episodes; dropped " +
          ", ".join(f"{v} {k}" for k, v in s["dropped"].items()) + f" (see {Path(args.out) / 'curation.json'})")
    return EXIT_OK


# --- cosmos-sim train ------------------------------------------------------------------------------
def add_train_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset directory (from cosmos-sim collect)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl, config.json)")
    p.add_argument("--steps", type=positive_int, default=2000, help="optimizer steps (default: 2000)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="batch size per process (default: 16)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this much training time (0: no limit)")
    p.add_argument("--time-schedule", action="store_true",
                   help="end the learning-rate decay at --minutes (or --steps, whichever comes first), so a time "
                        "budget is used in full; the rate then follows the clock, so reruns differ slightly")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--seed", type=int, default=0)


def add_train_tokenizer_args(p: argparse.ArgumentParser) -> None:
    from cosmos_sim.tokenizer import PRESETS

    add_train_common(p)
    p.add_argument("--preset", default="cv8", help=f"one of {', '.join(PRESETS)} (default: cv8)")


def _check_device(device: str | None) -> None:
    import torch

    if device is not None and device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available on this machine")


def cmd_train_tokenizer(args: argparse.Namespace) -> int:
    from cosmos_sim.data import EpisodeDataset
    from cosmos_sim.tokenizer import preset, train_tokenizer

    _check_device(args.device)
    size = EpisodeDataset(args.data).spec.image_size[0]
    cfg = preset(args.preset, image_size=size)
    r = train_tokenizer(args.data, args.out, cfg, _train_config(args), resume=args.resume, device=args.device)
    ev = r["eval"]
    print(f"{args.out}: step {r['step']}, held-out PSNR {ev['psnr']:.2f} dB (objects {ev['psnr_objects']:.2f} dB), "
          f"SSIM {ev['ssim']:.3f}; reconstruction grids in {args.out}")
    return EXIT_OK


def add_train_dynamics_args(p: argparse.ArgumentParser) -> None:
    add_train_common(p)
    p.add_argument("--tokenizer", required=True, help="tokenizer run directory or checkpoint")
    p.add_argument("--model", default="deterministic", help="deterministic, diffusion or autoregressive")
    p.add_argument("--preset", default="small", help="tiny, small or base (default: small)")
    p.add_argument("--horizon", type=positive_int, default=None,
                   help="training rollout length on the model's own predictions (default: the preset's)")
    p.add_argument("--state-steps", type=int, default=None,
                   help="state-model updates before the latent training (default: 8x --steps, at most 4000)")


def _train_config(args: argparse.Namespace, checkpoints: int = 4) -> object:
    from cosmos_sim.training import TrainConfig

    if args.time_schedule and not args.minutes > 0:
        raise ValueError("--time-schedule needs a time budget: --minutes M (M > 0)")
    return TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       time_limit_s=args.minutes * 60, schedule_by_time=args.time_schedule,
                       warmup_steps=min(200, max(1, args.steps // 10)),
                       eval_every=max(1, args.steps // checkpoints), checkpoint_every=max(1, args.steps // checkpoints))


def cmd_train_dynamics(args: argparse.Namespace) -> int:
    from cosmos_sim.dynamics.train import train_dynamics

    _check_device(args.device)
    overrides = {"horizon": args.horizon} if args.horizon else {}
    r = train_dynamics(args.data, args.tokenizer, args.out, args.model, args.preset, _train_config(args),
                       overrides=overrides, resume=args.resume, device=args.device, state_steps=args.state_steps)
    print(f"{args.out}: step {r['step']}, loss {r.get('loss', float('nan')):.4f}; world model: {r['world_model']}")
    return EXIT_OK


def add_train_all_args(p: argparse.ArgumentParser) -> None:
    add_train_common(p)
    for action in p._actions:  # `train tokenizer|dynamics` take their own --data/--out
        if action.dest in ("data", "out"):
            action.required = False
    p.add_argument("--tokenizer-preset", default="cv8", help="tokenizer preset (default: cv8)")
    p.add_argument("--tokenizer-steps", type=positive_int, default=2000, help="tokenizer steps (default: 2000)")
    p.add_argument("--model", default="deterministic", help="dynamics family (default: deterministic)")
    p.add_argument("--preset", default="small", help="dynamics preset (default: small)")


def cmd_train_all(args: argparse.Namespace) -> int:
    """Both stages: OUT/tokenizer, then OUT/dynamics; the world model lands in OUT/world_model.safetensors."""
    import shutil

    from cosmos_sim.data import EpisodeDataset
    from cosmos_sim.dynamics.train import train_dynamics
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.world_model import FILE

    if not args.data or not args.out:
        raise ValueError("train needs --data DIR and --out RUN (or a stage: train tokenizer|dynamics)")
    _check_device(args.device)
    out = Path(args.out)
    size = EpisodeDataset(args.data).spec.image_size[0]
    tok_args = argparse.Namespace(**{**vars(args), "steps": args.tokenizer_steps})
    train_tokenizer(args.data, out / "tokenizer", preset(args.tokenizer_preset, image_size=size),
                    _train_config(tok_args), resume=args.resume, device=args.device)
    r = train_dynamics(args.data, out / "tokenizer", out / "dynamics", args.model, args.preset, _train_config(args),
                       resume=args.resume, device=args.device)
    shutil.copyfile(r["world_model"], out / FILE)
    print(f"world model: {out / FILE}  (use it: gym.make('cosmos_sim/<World>-v0', backend='world_model', "
          f"model='{out}'))")
    return EXIT_OK


# --- cosmos-sim train-policy ----------------------------------------------------------------------
def add_train_policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--world", default="push", help="world name (default: push)")
    p.add_argument("--algo", required=True, choices=["ppo", "bc"], help="ppo (on a backend) or bc (from --data)")
    p.add_argument("--backend", default="mujoco", help="ppo: mujoco, pybullet or world_model (default: mujoco)")
    p.add_argument("--model", default=None, help="ppo on world_model: the world model run or file")
    p.add_argument("--data", default=None, help="bc: dataset directory (from cosmos-sim collect)")
    p.add_argument("--obs-mode", default="state", choices=["state", "pixels", "both"],
                   help="what the policy sees (default: state)")
    p.add_argument("--num-envs", type=positive_int, default=16, help="ppo: parallel envs (default: 16)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="ppo: total env steps (default 100000); bc: optimizer steps (default 2000)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: ppo 1e-3, bc 1e-3)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="run directory; the policy is OUT/policy.safetensors")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_train_policy(args: argparse.Namespace) -> int:
    from cosmos_sim.worlds import get_world

    _check_device(args.device)
    world = get_world(args.world).name
    if args.algo == "bc":
        from cosmos_sim.policies.bc import BCConfig, train_bc
        from cosmos_sim.training import TrainConfig

        if not args.data:
            raise ValueError("--algo bc needs --data DIR (a dataset from cosmos-sim collect)")
        steps = args.steps or 2000
        tc = TrainConfig(steps=steps, batch_size=256, lr=args.lr or 1e-3, warmup_steps=min(100, steps // 10),
                         checkpoint_every=max(1, steps // 4), seed=args.seed, ema_decay=0.99)
        r = train_bc(args.data, args.out, BCConfig(obs_mode=args.obs_mode), tc, progress=not args.no_progress,
                     device=args.device)
        print(f"bc: {r['step']} steps, action mse {r.get('mse', r.get('loss', float('nan'))):.4f}; "
              f"policy: {r['policy_path']}")
        return EXIT_OK
    from cosmos_sim.evaluation.closed_loop import BACKENDS
    from cosmos_sim.policies.ppo import PPOConfig, train_ppo

    if args.backend not in BACKENDS:
        from cosmos_sim.errors import UnknownChoiceError

        raise UnknownChoiceError("backend", args.backend, BACKENDS)
    import gymnasium as gym

    from cosmos_sim.envs.registration import env_id

    kw: dict = {"backend": args.backend, "obs_mode": args.obs_mode}
    if args.backend == "world_model":
        from cosmos_sim.evaluation.compare import load_checked_model

        kw |= {"model": load_checked_model(args.model, world, args.device), "array_type": "torch",
               "device": args.device}
    cfg = PPOConfig(total_steps=args.steps or 100_000, lr=args.lr or PPOConfig.lr, seed=args.seed)
    envs = gym.make_vec(env_id(world), num_envs=args.num_envs, **kw)
    try:
        r = train_ppo(envs, cfg, args.obs_mode, out=args.out, world=world, device=args.device,
                      progress=not args.no_progress)
    finally:
        envs.close()
    rets = r["episode_returns"]
    last = sum(rets[-20:]) / max(1, len(rets[-20:]))
    print(f"ppo on {args.backend}: {r['steps']} env steps in {r['wall_s']:.0f} s, {len(rets)} episodes, "
          f"mean return of the last 20: {last:.2f}; policy: {r['policy_path']}")
    print(f"evaluate it: cosmos-sim evaluate --world {args.world} --backend mujoco --policy {args.out}")
    return EXIT_OK


# --- registration ----------------------------------------------------------------------------------
COMMANDS: list[Command] = [
    Command("worlds", "list the worlds: actions, state layout, control rate, episode length, backends",
            cmd_worlds, add_worlds_args,
            description="List every world (or the WORLDs named) with its action names, state vector layout\n"
                        "(entry names and sizes), control rate, maximum episode steps and backends."),
    Command("demo", "collect, train a small world model, compare it with MuJoCo and PyBullet, write the report",
            cmd_demo, add_demo_args,
            description="The whole loop on small defaults: collect Push episodes in MuJoCo, train a tokenizer\n"
                        "and latent dynamics (time-boxed), then compare the learned world with MuJoCo and\n"
                        "PyBullet (open loop, closed loop over a policy ladder, ranking) and write\n"
                        "OUT/report/report.md with plots and videos. Re-running continues where it stopped.\n"
                        "--physics-only runs the scripted expert in both physics backends instead."),
    Command("compare", "learned vs physics: open-loop fidelity, policy evaluation and ranking; writes a report",
            cmd_compare, add_compare_args,
            description="Compare a world model with MuJoCo (and PyBullet as a physics-vs-physics yardstick):\n"
                        "open-loop PSNR/SSIM/state error against the horizon, closed-loop success of each policy\n"
                        "in every backend, and rank correlations. Writes report.json, report.md, PNG plots and\n"
                        "MP4 videos (MuJoCo | PyBullet | learned | difference) into --out."),
    Command("train-policy", "train a policy: PPO on any backend (the learned one batched on its device), or BC",
            cmd_train_policy, add_train_policy_args,
            description="PPO (policies/ppo.py) on a vector env of any backend -- with --backend world_model the\n"
                        "rollouts stay on the model's device -- or behaviour cloning from a dataset. The policy\n"
                        "is saved as OUT/policy.safetensors and evaluated with `cosmos-sim evaluate --policy OUT`."),
    Command("evaluate", "evaluate one policy in one backend: success rate, return, length with 95%% CIs",
            cmd_evaluate, add_evaluate_args),
    Command("collect", "record episodes from a physics backend into a sharded dataset (resumable)",
            cmd_collect, add_collect_args,
            description="Collect EPISODES episodes (seed SEED+i for episode i) into --out as safetensors shards\n"
                        "with a manifest. Re-running the same command after a kill continues where it stopped."),
    Command("data", "inspect, verify and curate datasets", subcommands=(
        Command("info", "counts, worlds, cameras, policies, object motion, and a thumbnail grid",
                cmd_data_info, add_data_info_args),
        Command("verify", "check every shard's checksums, schema and counts against the manifest",
                cmd_data_verify, add_data_dir_arg),
        Command("curate", "drop static, diverged and duplicate episodes into a curated view",
                cmd_data_curate, add_data_curate_args),
    )),
    Command("train", "train a world model (tokenizer, then dynamics) or one stage", cmd_train_all,
            add_train_all_args, subcommands=(
        Command("tokenizer", "train a causal video tokenizer (continuous or FSQ) with the shared trainer",
                cmd_train_tokenizer, add_train_tokenizer_args),
        Command("dynamics", "train latent dynamics + state head on a tokenizer's latents; export a WorldModel",
                cmd_train_dynamics, add_train_dynamics_args),
    )),
]


def _add_commands(parent: argparse.ArgumentParser, commands: Sequence[Command]) -> None:
    sub = parent.add_subparsers(title="commands", metavar="COMMAND", dest=f"_cmd_{parent.prog}")
    for c in commands:
        # No abbreviations: a group's own options must not swallow its subcommands' longer ones.
        p = sub.add_parser(c.name, help=c.help, description=c.description or c.help, formatter_class=_Formatter,
                           allow_abbrev=False)
        if c.add_arguments is not None:
            c.add_arguments(p)
        if c.subcommands:
            _add_commands(p, c.subcommands)
        p.set_defaults(_run=c.run, _parser=p)


def build_parser() -> argparse.ArgumentParser:
    from cosmos_sim import __version__

    p = _Parser(prog=PROG, formatter_class=_Formatter, allow_abbrev=False,
                description="cosmos_sim: learned world models as Gymnasium envs, beside MuJoCo and PyBullet twins.\n"
                            "Run 'cosmos-sim COMMAND --help' for what a command does.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_commands(p, COMMANDS)
    p.set_defaults(_run=None, _parser=p)
    return p


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    if isinstance(e, FileNotFoundError) and e.filename:
        return f"no such file or directory: {e.filename}"
    return str(e) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    from cosmos_sim.errors import CosmosSimError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args._run is None:  # `cosmos-sim` or a command group without its subcommand
        args._parser.print_help()
        return EXIT_OK if args._parser is parser else EXIT_USAGE
    try:
        return int(args._run(args) or EXIT_OK)
    except (CosmosSimError, ValueError, FileNotFoundError, KeyError) as e:
        if os.environ.get("COSMOS_SIM_DEBUG"):
            raise
        _fail(_message(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `cosmos-sim worlds | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
