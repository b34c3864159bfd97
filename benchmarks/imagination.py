"""Policies that use the learned world, checked in physics (Push).

    python benchmarks/imagination.py --model demo_out              # after `cosmos-sim demo --train`
    python benchmarks/imagination.py --model RUN --steps 200000 --device cuda

(a) PPO trained in MuJoCo and (b) PPO trained only in the learned world, the same number of env
steps each, both evaluated in MuJoCo, PyBullet and the learned world, with the exploitation gap
(learned minus MuJoCo success, paired by seed); (c) the CEM planner planning in the learned world
while acting in MuJoCo (the planner's defaults: PlannerConfig). Prints success rate, return and
wall-clock per method and writes benchmarks/results/imagination_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

ROOT = Path(__file__).parent
RESULTS = ROOT / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo_out", help="world model run (default: cosmos-sim demo --train's)")
    ap.add_argument("--steps", type=int, default=100_000, help="PPO env steps per method")
    ap.add_argument("--num-envs", type=int, default=32)
    ap.add_argument("--episodes", type=int, default=50, help="evaluation episodes (seeds 1000..)")
    ap.add_argument("--planner-episodes", type=int, default=20)
    ap.add_argument("--planner", default="cem", choices=["cem", "mppi"])
    ap.add_argument("--population", type=int, default=256)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--physics-vectorization", default="sync", choices=["sync", "async"],
                    help="how the MuJoCo PPO run steps its envs (async: one process per env)")
    ap.add_argument("--eval-backends", default="mujoco,pybullet", help="where the PPO policies are evaluated")
    ap.add_argument("--planner-obs", default="state", choices=["state", "both", "pixels"],
                    help="what the planner observes in MuJoCo (state: plans from the observed state)")
    ap.add_argument("--skip", default="", help="comma-separated: ppo_mujoco, ppo_learned, planner")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=str(ROOT / ".runs" / "imagination"))
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym

    import cosmos_sim  # noqa: F401
    from cosmos_sim.evaluation.closed_loop import (
        evaluate,
        exploitation_gap,
        make_vector_env,
        run_policy,
        summarize_episodes,
    )
    from cosmos_sim.policies.planning import Planner, PlannerConfig
    from cosmos_sim.policies.ppo import PPOConfig, train_ppo
    from cosmos_sim.world_model import WorldModel

    model = WorldModel.load(args.model, device=args.device)
    skip = set(filter(None, args.skip.split(",")))
    out = Path(args.out)
    rows = []
    for name, backend in (("ppo_mujoco", "mujoco"), ("ppo_learned", "world_model")):
        if name in skip:
            continue
        kw = {"backend": backend, "obs_mode": "state"}
        if backend == "mujoco" and args.physics_vectorization == "async":
            kw["vectorization_mode"] = "async"
        if backend == "world_model":
            kw |= {"model": model, "array_type": "torch", "device": args.device}
        envs = gym.make_vec("cosmos_sim/Push-v0", num_envs=args.num_envs, **kw)
        t0 = time.perf_counter()
        r = train_ppo(envs, PPOConfig(total_steps=args.steps), "state", out=out / name, world="Push",
                      device=args.device)
        wall = time.perf_counter() - t0
        envs.close()
        row = {"method": name, "trained_in": backend, "env_steps": r["steps"], "train_wall_s": wall}
        results = {}
        for ev in [*args.eval_backends.split(","), "world_model"]:
            results[ev] = evaluate("push", ev, str(out / name), episodes=args.episodes, seed=1000,
                                   model=model if ev == "world_model" else None, device=args.device)
            row[ev] = {"success_rate": results[ev]["success_rate"], "return": results[ev]["return"]}
        if "mujoco" in results:  # what the policy gains from the model's errors: learned minus MuJoCo success
            row["exploitation_gap"] = exploitation_gap(results["world_model"], results["mujoco"], seed=1000)
        rows.append(row)
        print(f"{name}: {wall:.0f} s; success " + ", ".join(
            f"{ev} {row[ev]['success_rate']['mean']:.2f}" for ev in results) +
            (f"; exploitation gap {row['exploitation_gap']['mean']:+.0f} points [{row['exploitation_gap']['lo']:+.0f}, "
             f"{row['exploitation_gap']['hi']:+.0f}]" if "exploitation_gap" in row else ""), flush=True)
    if "planner" not in skip:
        cfg = PlannerConfig(method=args.planner, horizon=args.horizon, population=args.population,
                            iterations=args.iterations)
        planner = Planner(model, cfg, obs_mode=args.planner_obs)
        seeds = list(range(1000, 1000 + args.planner_episodes))
        env = make_vector_env("push", "mujoco", len(seeds), obs_mode=args.planner_obs, image_size=model.image_size)
        t0 = time.perf_counter()
        eps = run_policy(env, planner, seeds)
        wall = time.perf_counter() - t0
        env.close()
        s = summarize_episodes(eps)
        rows.append({"method": f"planner_{args.planner}", "trained_in": "world_model (plans)", "obs": args.planner_obs,
                     "planner": cfg.to_dict(), "act_wall_s": wall, "mujoco": {k: s[k] for k in ("success_rate",
                                                                                                 "return")}})
        print(f"planner: {wall:.0f} s for {len(seeds)} episodes; MuJoCo success {s['success_rate']['mean']:.2f}")
    print(f"\nPush, device {args.device}; evaluation episodes: PPO {args.episodes}, planner {args.planner_episodes}")
    print(f"{'method':>16} {'MuJoCo success':>15} {'PyBullet success':>17} {'learned success':>16} "
          f"{'gap (points, 95% CI)':>22} {'MuJoCo return':>14} {'wall s':>8}")
    for r in rows:
        pb = r.get("pybullet", {}).get("success_rate", {}).get("mean")
        lw = r.get("world_model", {}).get("success_rate", {}).get("mean")
        g = r.get("exploitation_gap")
        gap = f"{g['mean']:+.0f} [{g['lo']:+.0f}, {g['hi']:+.0f}]" if g else ""
        print(f"{r['method']:>16} {r['mujoco']['success_rate']['mean']:>15.2f} "
              f"{'' if pb is None else f'{pb:.2f}':>17} {'' if lw is None else f'{lw:.2f}':>16} {gap:>22} "
              f"{r['mujoco']['return']['mean']:>14.1f} {r.get('train_wall_s', r.get('act_wall_s', 0)):>8.0f}")
    RESULTS.mkdir(exist_ok=True)
    res = {"benchmark": "imagination", "args": vars(args), "rows": rows,
           "model": {"path": args.model, "family": model.family, "info": model.info},
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                       "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}}
    path = RESULTS / f"imagination_{args.device}.json"
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
