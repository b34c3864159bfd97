"""The scripted-expert ladder: success rate per world x backend x skill over fixed seeds.

    .venv/bin/python benchmarks/policy_ladder.py [--episodes 50] [--worlds push reach drop]
                                                 [--backends mujoco pybullet] [--skills 0 0.25 0.5 0.75 1]

Episode `i` starts from `env.reset(seed=i)`; it succeeds when `info["success"]` turns True (the episode
then terminates) before the world's `max_episode_steps`. Envs run `--num-envs` at a time against one
batched `ScriptedPolicy`, and the (world, backend, skill) cells are spread over `--workers` processes.
Prints a table and writes JSON (with the config) to benchmarks/results/policy_ladder.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import cosmos_sim  # noqa: E402
from cosmos_sim.envs import PHYSICS_BACKENDS  # noqa: E402
from cosmos_sim.policies import ScriptedPolicy  # noqa: E402
from cosmos_sim.worlds import get_world, world_names  # noqa: E402

DEFAULT_SKILLS = (0.0, 0.25, 0.5, 0.75, 1.0)
RESULTS = Path(__file__).resolve().parent / "results" / "policy_ladder.json"


def run_cell(world: str, backend: str, skill: float, seeds: list[int], num_envs: int = 8,
             policy_seed: int = 0) -> dict:
    """Run one policy on `seeds`, `num_envs` episodes at a time. Returns per-episode results."""
    name = get_world(world).name
    policy = ScriptedPolicy(name, skill=skill, seed=policy_seed)
    envs = [gym.make(f"cosmos_sim/{name}-v0", backend=backend, obs_mode="state")
            for _ in range(min(num_envs, len(seeds)))]
    success, returns, lengths = {}, {}, {}
    try:
        for start in range(0, len(seeds), len(envs)):
            chunk = seeds[start:start + len(envs)]
            active = envs[:len(chunk)]
            states = np.stack([env.reset(seed=int(s))[0] for env, s in zip(active, chunk, strict=True)])
            policy.reset()
            done = np.zeros(len(chunk), bool)
            ret = np.zeros(len(chunk))
            length = np.zeros(len(chunk), int)
            ok = np.zeros(len(chunk), bool)
            while not done.all():
                actions = policy.act({"state": states})
                for i, env in enumerate(active):
                    if done[i]:
                        continue
                    obs, r, term, trunc, info = env.step(actions[i])
                    states[i] = obs
                    ret[i] += r
                    length[i] += 1
                    ok[i] |= bool(info["success"])
                    done[i] = term or trunc
            for i, s in enumerate(chunk):
                success[s], returns[s], lengths[s] = bool(ok[i]), float(ret[i]), int(length[i])
    finally:
        for env in envs:
            env.close()
    return {"world": name, "backend": backend, "skill": float(skill), "policy": policy.name,
            "success_rate": float(np.mean(list(success.values()))),
            "mean_return": float(np.mean(list(returns.values()))),
            "mean_length": float(np.mean(list(lengths.values()))),
            "episodes": len(seeds),
            "per_seed": {"seed": list(seeds), "success": [success[s] for s in seeds],
                         "return": [returns[s] for s in seeds], "length": [lengths[s] for s in seeds]}}


def _run_cell_job(args) -> dict:
    return run_cell(*args)


def expert_min_success(worlds: list[str]) -> dict[str, float]:
    """Each world's own bar for its skill-1 expert (`World.expert_min_success`), lower-case names."""
    found = [get_world(w) for w in worlds]
    return {w.name.lower(): w.expert_min_success for w in found if w.expert_min_success is not None}


def check_ladder(rows: list[dict], expert_min: dict[str, float]) -> list[str]:
    """Problems: expert below its target, or success that falls as skill rises."""
    problems = []
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cells.setdefault((r["world"], r["backend"]), []).append(r)
    for (world, backend), rs in cells.items():
        rs = sorted(rs, key=lambda r: r["skill"])
        rates = [r["success_rate"] for r in rs]
        if any(b < a for a, b in zip(rates, rates[1:], strict=False)):
            problems.append(f"{world}/{backend}: success not non-decreasing in skill: {rates}")
        top = rs[-1]
        need = expert_min.get(world.lower())
        if top["skill"] == 1.0 and need is not None and top["success_rate"] < need:
            problems.append(f"{world}/{backend}: expert success {top['success_rate']:.2f} < {need:.2f}")
    return problems


def format_table(rows: list[dict]) -> str:
    head = f"{'world':<7} {'backend':<9} {'skill':>5} {'success':>8} {'return':>9} {'length':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['world']:<7} {r['backend']:<9} {r['skill']:>5.2f} {r['success_rate']:>8.2f} "
                     f"{r['mean_return']:>9.2f} {r['mean_length']:>7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=50, help="seeds 0..N-1 per cell (default 50)")
    ap.add_argument("--worlds", nargs="+", default=[w.lower() for w in world_names()],
                    help="worlds (default: all)")
    ap.add_argument("--backends", nargs="+", default=list(PHYSICS_BACKENDS), choices=PHYSICS_BACKENDS,
                    help="physics backends (default: all)")
    ap.add_argument("--skills", nargs="+", type=float, default=list(DEFAULT_SKILLS), help="skill ladder")
    ap.add_argument("--num-envs", type=int, default=10, help="episodes stepped together per policy batch")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: CPU count)")
    ap.add_argument("--policy-seed", type=int, default=0, help="seed of the policies' own generators")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = ap.parse_args(argv)
    if args.episodes < 1 or args.num_envs < 1 or args.workers < 1:
        ap.error("--episodes, --num-envs and --workers must be >= 1")
    try:
        worlds = [get_world(w).name for w in args.worlds]
        for s in args.skills:
            ScriptedPolicy(worlds[0], skill=s)
    except ValueError as e:
        ap.error(str(e))

    seeds = list(range(args.episodes))
    jobs = [(w, b, float(s), seeds, args.num_envs, args.policy_seed)
            for w in worlds for b in args.backends for s in sorted(args.skills)]
    # Longest cells (low skill, slow backends) first, so the workers finish together.
    order = {(w, b, s): i for i, (w, b, s, *_) in enumerate(jobs)}
    t0 = time.perf_counter()
    rows = []
    bar = tqdm(total=len(jobs), desc="ladder", unit="cell", file=sys.stderr)
    if args.workers == 1:
        for job in jobs:
            rows.append(run_cell(*job))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(_run_cell_job, job) for job in sorted(jobs, key=lambda j: (j[2], j[1] == "mujoco"))]
            for f in as_completed(futures):
                rows.append(f.result())
                bar.set_postfix_str(f"{rows[-1]['world']}/{rows[-1]['backend']}/{rows[-1]['skill']:g}")
                bar.update()
    bar.close()
    elapsed = time.perf_counter() - t0
    rows.sort(key=lambda r: order[(r["world"], r["backend"], r["skill"])])

    print(format_table(rows))
    expert_min = expert_min_success(worlds)
    problems = check_ladder(rows, expert_min)
    for p in problems:
        print(f"WARNING: {p}")
    print(f"{len(jobs)} cells x {args.episodes} episodes in {elapsed:.1f} s")

    report = {
        "benchmark": "policy_ladder",
        "config": {"episodes": args.episodes, "seeds": [0, args.episodes - 1], "worlds": worlds,
                   "backends": args.backends, "skills": sorted(args.skills), "num_envs": args.num_envs,
                   "workers": args.workers, "policy_seed": args.policy_seed, "obs_mode": "state",
                   "expert_min_success": expert_min},
        "environment": {"cosmos_sim": cosmos_sim.__version__, "python": platform.python_version(),
                        "platform": platform.platform(), "cpu_count": os.cpu_count()},
        "elapsed_s": round(elapsed, 2),
        "problems": problems,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
