"""MuJoCo 3.3 against 4.x on our worlds: the scripted expert's success, and the same actions' states and frames.

Run it once in each venv (.venv has MuJoCo 4.x; `make venv-mujoco3` builds .venv-mj33 with 3.3.0):

    .venv-mj33/bin/python benchmarks/mujoco_versions.py      # writes results/mujoco_versions_3.3.0.json (+ .npz)
    .venv/bin/python benchmarks/mujoco_versions.py --compare benchmarks/results/mujoco_versions_3.3.0.json

Each run plays every world's scripted expert (skill 1, closed loop) in the mujoco backend from seeds 0..N-1 for
the world's whole horizon (acting on past the episode's end, so that both versions have the same steps) and
records the episode's success and return, the actions, the task objects' positions at a few steps and the 64x64
frames there for the first seeds (the .npz beside the JSON). The yardstick, in this version alone: the expert's
actions replayed with N(0, --noise) added (how far float-sized differences carry in each world). With
--compare OTHER.json it also:

- compares the two closed-loop runs seed by seed (same seed, same expert; each version's own trajectory): how far
  the task objects end up apart;
- replays OTHER's expert actions here from the same seeds (open loop: same seed, same actions, only the physics
  and the renderer differ) and reports how far the task objects are from where OTHER had them at those steps, how
  many episodes' success flips, and the PSNR between the two versions' frames (t=0: the renderer alone).

Prints a table and writes benchmarks/results/mujoco_versions_<version>.json (config, machine, results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

import cosmos_sim  # noqa: E402  (registers the gym ids)
from cosmos_sim.envs import env_id  # noqa: E402
from cosmos_sim.fileio import atomic_write_json  # noqa: E402
from cosmos_sim.policies import ScriptedPolicy  # noqa: E402
from cosmos_sim.worlds import WORLDS, get_world  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FRAME_STEPS = (0, 10, 30)  # steps whose frames and object positions are kept (within every world's horizon)


def out_paths(version: str, results: Path = RESULTS) -> tuple[Path, Path]:
    return results / f"mujoco_versions_{version}.json", results / f"mujoco_versions_{version}.npz"


def make_env(world: str, image_size: int) -> gym.Env:
    return gym.make(env_id(world), backend="mujoco", obs_mode="state", image_size=image_size, render_mode="rgb_array")


def object_positions(world, state: np.ndarray) -> np.ndarray:
    """[K, 3] positions of the world's task objects (planar entries padded with z = 0), metres."""
    out = []
    for name in world.object_entries:
        p = np.asarray(state[world.state_layout.slice(name)], np.float64)
        out.append(np.pad(p, (0, 3 - p.size)))
    return np.stack(out)


def play(world, env: gym.Env, seed: int, actions: np.ndarray | None, frame_seed: bool) -> dict:
    """From reset(seed), the world's whole horizon (max_episode_steps) of the expert's actions (actions None) or of
    the given ones, past the episode's end: both versions then have the same steps to compare. Success is the
    episode's, at its first termination or truncation. Object positions at FRAME_STEPS and at the end; frames at
    FRAME_STEPS when `frame_seed`."""
    policy = ScriptedPolicy(world, skill=1.0, seed=seed) if actions is None else None
    horizon = world.max_episode_steps if actions is None else len(actions)
    obs, info = env.reset(seed=seed)
    taken, objects, ret, success, steps = [], {0: object_positions(world, obs)}, 0.0, None, horizon
    frames = {0: env.render()} if frame_seed else {}
    for t in range(1, horizon + 1):
        a = policy.act(obs) if actions is None else actions[t - 1]
        obs, r, term, trunc, info = env.step(a)
        taken.append(np.asarray(a, np.float32))
        if success is None:
            ret += float(r)
            if term or trunc:
                success, steps = bool(info["success"]), t
        if t in FRAME_STEPS:
            objects[t] = object_positions(world, obs)
            if frame_seed:
                frames[t] = env.render()
    objects["end"] = object_positions(world, obs)
    return {"actions": np.stack(taken), "objects": objects, "frames": frames,
            "success": bool(info["success"]) if success is None else success, "return": ret, "steps": steps}


def run_world(name: str, episodes: int, frame_seeds: int, image_size: int, noise: float,
              other: dict | None) -> tuple[dict, dict]:
    """(figures, arrays for the .npz) of one world; with `other` (the other version's arrays), the comparison."""
    world = get_world(name)
    key = world.name.lower()
    env = make_env(world.name, image_size)
    arrays: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    runs = [play(world, env, s, None, s < frame_seeds) for s in range(episodes)]
    seconds = time.perf_counter() - t0  # of episodes * max_episode_steps steps
    for s, r in enumerate(runs):
        arrays[f"{key}__actions__{s}"] = r["actions"]
        arrays[f"{key}__success__{s}"] = np.array(r["success"])
        for k, pos in r["objects"].items():
            arrays[f"{key}__objects__{s}__{k}"] = pos
        for k, frame in r["frames"].items():
            arrays[f"{key}__frame__{s}__{k}"] = frame
    succ = [r["success"] for r in runs]
    fig = {"world": key, "episodes": episodes, "successes": int(sum(succ)), "success_rate": float(np.mean(succ)),
           "mean_return": float(np.mean([r["return"] for r in runs])),
           "mean_steps": float(np.mean([r["steps"] for r in runs])),
           "steps_per_s": float(episodes * world.max_episode_steps / seconds)}
    fig["noise_floor"] = noise_floor(world, env, runs, noise)
    if other is not None:
        fig["compare"] = compare_world(world, env, key, runs, other, frame_seeds)
    env.close()
    return fig, arrays


def noise_floor(world, env, runs: list[dict], noise: float) -> dict:
    """The yardstick, in this version alone: each expert episode's actions replayed with N(0, noise) added. How far
    the task objects then end up from the expert's, and how many successes flip: a world whose contacts amplify tiny
    differences (a block pushed along its edge) moves that far from float noise alone."""
    at = {str(k): [] for k in (*FRAME_STEPS[1:], "end")}
    flips = 0
    for s, r in enumerate(runs):
        rng = np.random.default_rng(s)
        acts = np.clip(r["actions"] + rng.normal(0.0, noise, r["actions"].shape), -1, 1).astype(np.float32)
        q = play(world, env, s, acts, False)
        flips += q["success"] != r["success"]
        for k in at:
            key = int(k) if k.isdigit() else k
            if key in q["objects"] and key in r["objects"]:
                at[k].append(cm(q["objects"][key], r["objects"][key]))
    return {"noise": noise, "same_actions_cm": {k: spread(v) for k, v in at.items()}, "success_flips": int(flips)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def cm(a: np.ndarray, b: np.ndarray) -> float:
    """The largest distance between matching task objects, in cm."""
    return float(np.max(np.linalg.norm(a - b, axis=-1)) * 100)


def spread(values: list[float]) -> dict:
    return {"median": float(np.median(values)), "max": float(np.max(values)), "n": len(values)} if values else {}


def compare_world(world, env, key: str, runs: list[dict], other: dict, frame_seeds: int) -> dict:
    seeds = [s for s in range(len(runs)) if f"{key}__actions__{s}" in other]
    # Closed loop: each version's own expert episode from the same seed.
    closed = [cm(runs[s]["objects"]["end"], other[f"{key}__objects__{s}__end"]) for s in seeds]
    # Open loop: the other version's expert actions replayed here.
    at = {str(k): [] for k in (*FRAME_STEPS, "end")}
    frames = {str(k): [] for k in FRAME_STEPS}
    flips = 0
    for s in seeds:
        r = play(world, env, s, other[f"{key}__actions__{s}"], s < frame_seeds)
        flips += r["success"] != bool(other[f"{key}__success__{s}"])
        for k, pos in r["objects"].items():
            ref = other.get(f"{key}__objects__{s}__{k}")
            if ref is not None:
                at[str(k)].append(cm(pos, ref))
        for k, frame in r["frames"].items():
            ref = other.get(f"{key}__frame__{s}__{k}")
            if ref is not None:
                frames[str(k)].append(psnr(frame, ref))
    return {"seeds": len(seeds),
            "other_successes": int(sum(bool(other[f"{key}__success__{s}"]) for s in seeds)),
            "closed_loop_end_cm": spread(closed),
            "same_actions_cm": {k: spread(v) for k, v in at.items()},
            "same_actions_success_flips": int(flips),
            # Mean PSNR over the compared frames; "identical" when every pair is equal, bit for bit.
            "psnr_db": {k: (None if not v else "identical" if np.isinf(v).all() else
                            float(np.mean([x for x in v if np.isfinite(x)])) if np.isfinite(v).all() else
                            f"{float(np.mean([x for x in v if np.isfinite(x)])):.1f} ({int(np.isinf(v).sum())} of "
                            f"{len(v)} identical)") for k, v in frames.items()}}


def load_other(path: Path) -> tuple[dict, dict]:
    meta = json.loads(path.read_text())
    with np.load(path.with_suffix(".npz")) as z:
        return meta, {k: z[k] for k in z.files}


def machine_info() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "MUJOCO_GL": os.environ.get("MUJOCO_GL"), "mujoco": mujoco.__version__, "gymnasium": gym.__version__,
            "numpy": np.__version__, "cosmos_sim": cosmos_sim.__version__}


def fmt_spread(d: dict) -> str:
    return f"{d['median']:.2f} / {d['max']:.2f}" if d else "-"


def fmt_psnr(v) -> str:
    return "-" if v is None else "=" if v == "identical" else v if isinstance(v, str) else f"{v:.1f}"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return [line(headers), "  ".join("-" * w for w in widths), *map(line, rows)]


def format_tables(results: list[dict], version: str, other_version: str | None) -> str:
    lines = [f"MuJoCo {version}: the scripted expert (skill 1) in the mujoco backend; the yardstick: its actions "
             "replayed with noise, task objects' distance in cm (median / max over seeds), success flips", ""]
    noise = results[0]["noise_floor"]["noise"] if results else 0.0
    lines += table(["world", "success", "mean return", "mean steps", f"actions + N(0, {noise:g}): t=10", "t=30", "end",
                    "flips"],  # steps/s: in the JSON (noisy on a shared VM)
                   [[r["world"], f"{r['successes']}/{r['episodes']}", f"{r['mean_return']:.2f}",
                     f"{r['mean_steps']:.1f}", *(fmt_spread(r["noise_floor"]["same_actions_cm"][k])
                                                 for k in ("10", "30", "end")),
                     str(r["noise_floor"]["success_flips"])] for r in results])
    if other_version is None:
        return "\n".join(lines)
    lines += ["", f"MuJoCo {other_version} against {version}: task objects' distance in cm (median / max over seeds), "
              f"success flips of {other_version}'s actions replayed in {version}, PSNR in dB ('=': identical)", ""]
    rows = []
    for r in results:
        c = r["compare"]
        a = c["same_actions_cm"]
        rows.append([r["world"], f"{c['other_successes']} | {r['successes']}", fmt_spread(c["closed_loop_end_cm"]),
                     fmt_spread(a["10"]), fmt_spread(a["30"]), fmt_spread(a["end"]),
                     str(c["same_actions_success_flips"]),
                     " | ".join(fmt_psnr(c["psnr_db"][str(k)]) for k in FRAME_STEPS)])
    lines += table(["world", f"success {other_version} | {version}", "expert: end", "same actions: t=10", "t=30",
                    "end", "flips", "PSNR t=" + " | ".join(map(str, FRAME_STEPS))], rows)
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--episodes", type=int, default=30, help="expert episodes per world (seeds 0..N-1)")
    p.add_argument("--frame-seeds", type=int, default=4, help="the first seeds whose frames are kept and compared")
    p.add_argument("--worlds", nargs="+", default=[w.lower() for w in WORLDS], help="worlds to run")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--noise", type=float, default=1e-4,
                   help="std of the noise added to the expert's actions for the same-version yardstick")
    p.add_argument("--compare", type=Path, help="another version's JSON (its .npz beside it): replay and compare")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of the JSON and .npz written")
    args = p.parse_args(argv)
    if args.episodes < 1 or not 0 <= args.frame_seeds <= args.episodes:
        p.error("--episodes must be >= 1 and 0 <= --frame-seeds <= --episodes")
    other_meta, other = load_other(args.compare) if args.compare else (None, None)
    if other_meta is not None and other_meta["config"]["image_size"] != args.image_size:
        p.error(f"{args.compare} has {other_meta['config']['image_size']}px frames; pass --image-size to match")

    version = mujoco.__version__
    t_all = time.perf_counter()
    results, arrays = [], {}
    for w in args.worlds:
        print(f"[{w}] mujoco {version} ...", file=sys.stderr, flush=True)
        fig, arr = run_world(w, args.episodes, args.frame_seeds, args.image_size, args.noise, other)
        results.append(fig)
        arrays.update(arr)
    other_version = other_meta["machine"]["mujoco"] if other_meta else None
    print(format_tables(results, version, other_version))
    json_path, npz_path = out_paths(version, args.results)
    args.results.mkdir(parents=True, exist_ok=True)
    tmp = npz_path.with_name(npz_path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, npz_path)
    atomic_write_json(json_path, {
        "benchmark": "mujoco_versions",
        "command": "python benchmarks/mujoco_versions.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {"episodes": args.episodes, "frame_seeds": args.frame_seeds, "frame_steps": list(FRAME_STEPS),
                   "image_size": args.image_size, "noise": args.noise,
                   "policy": "scripted expert, skill 1, seed = episode seed",
                   "backend": "mujoco", "compare": str(args.compare) if args.compare else None,
                   "other_mujoco": other_version},
        "machine": machine_info(), "seconds": round(time.perf_counter() - t_all, 1), "results": results})
    print(f"\nwrote {json_path} and {npz_path.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
