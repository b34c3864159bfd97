"""PPO trained in the learned world, measured in physics: does it carry over, and what makes it?

    python benchmarks/imagination.py                                   # Push and Reach, every variant (CPU)
    python benchmarks/imagination.py --worlds reach --variants dyna    # one world, one variant
    python benchmarks/imagination.py --device cuda                     # on a GPU

Per world:
1. PPO trained in MuJoCo (`--mujoco-steps`, a checkpoint every `--checkpoint-every` steps), each checkpoint
   evaluated in MuJoCo: "the steps MuJoCo PPO needed" is the first checkpoint within 5 points of the best.
2. PPO trained in the learned world with at most `--budget` (default 10 %) of those physics steps, counting
   every step the state model learned from (policies/dyna.py; the state model is fresh, so nothing else
   counts), in five variants that share the budget and the imagined steps:
   none      one round of data from --initial-policy, imagined episodes from physics resets, no protection
   penalty   + reward minus lambda x the ensemble's disagreement (MOPO)
   halting   + episodes truncated where the disagreement passes tau (MOReL)
   branched  + short imagined episodes branched from the recorded real steps (MBPO)
   dyna      branched, over `--rounds` rounds, each collecting its share of the budget with the policy
   dyna-resets  the same rounds, imagined episodes from physics resets (not branched)
3. Each policy evaluated over `--episodes` held-out seeds (1000..) in MuJoCo and in its learned world: success
   with 95 % intervals, the ratio to MuJoCo PPO's success and the exploitation gap (learned minus MuJoCo,
   paired by seed).
Prints one table per world and writes benchmarks/results/imagination_<device>.json; runs resume from --out.
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
VARIANTS = ("none", "penalty", "halting", "branched", "dyna", "dyna-resets")
MUJOCO_STEPS = {"push": 600_000, "reach": 200_000}


def variant_config(name: str, world: str, budget: int, imagined: int, args) -> dict:
    """DynaConfig fields of one ablation variant: every variant spends `budget` physics steps and
    `imagined` imagined ones."""
    one = {"world": world, "rounds": 1, "real_steps": budget, "imagined_steps": imagined,
           "branch": False, "initial_policy": args.initial_policy, "eval_episodes": args.episodes,
           "state_steps": args.state_steps, "seed": args.seed}
    if name == "none":
        return one
    if name == "penalty":
        return one | {"uncertainty_penalty": args.penalty}
    if name == "halting":
        return one | {"halt_uncertainty": args.halt if args.halt == "data" else float(args.halt)}
    if name == "branched":
        return one | {"branch": True}
    if name in ("dyna", "dyna-resets"):
        return one | {"branch": name == "dyna", "rounds": args.rounds, "real_steps": budget // args.rounds,
                      "imagined_steps": imagined // args.rounds}
    raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")


def mujoco_ppo(world: str, steps: int, args, out: Path) -> dict:
    """Train (or reuse) PPO in MuJoCo with checkpoints; evaluate each checkpoint in MuJoCo."""
    import gymnasium as gym

    from cosmos_sim.envs.registration import env_id
    from cosmos_sim.evaluation.closed_loop import evaluate
    from cosmos_sim.policies.ppo import PPOConfig, train_ppo
    from cosmos_sim.worlds import get_world

    run = out / world / "ppo_mujoco"
    wall = None
    if not (run / "policy.safetensors").is_file():
        envs = gym.make_vec(env_id(get_world(world).name), num_envs=32, backend="mujoco", obs_mode="state")
        t0 = time.perf_counter()
        train_ppo(envs, PPOConfig(total_steps=steps, seed=args.seed), "state", out=run, world=world,
                  device=args.device, progress=True, save_every=args.checkpoint_every)
        wall = time.perf_counter() - t0
        envs.close()
        (run / "wall.json").write_text(json.dumps({"train_wall_s": wall}))
    wall = json.loads((run / "wall.json").read_text())["train_wall_s"] if (run / "wall.json").is_file() else wall
    from cosmos_sim.training.checkpoint import read_checkpoint

    curve = []
    for ck in [*sorted((run / "checkpoints").glob("step_*")), run]:  # the checkpoints, then the final policy
        r = evaluate(world, "mujoco", str(ck), episodes=args.episodes, seed=1000, device=args.device)
        steps = int(read_checkpoint(Path(ck) / "policy.safetensors")[1]["info"]["steps"])
        curve.append({"steps": steps, "success_rate": r["success_rate"], "return": r["return"]})
        print(f"  {world} MuJoCo PPO at {curve[-1]['steps']:>7} steps: success {r['success_rate']['mean']:.0%}",
              flush=True)
    best = max(c["success_rate"]["mean"] for c in curve)
    needed = next(c for c in curve if c["success_rate"]["mean"] >= best - 0.05)
    return {"train_wall_s": wall, "curve": curve, "best_success": best, "steps_needed": needed["steps"],
            "success_at_needed": needed["success_rate"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", default="push,reach")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--mujoco-steps", type=int, default=None, help="MuJoCo PPO steps (default: push 600k, reach 200k)")
    ap.add_argument("--checkpoint-every", type=int, default=50_000)
    ap.add_argument("--budget", type=float, default=0.10, help="physics steps allowed, as a fraction of MuJoCo PPO's")
    ap.add_argument("--imagined-steps", default="push:800000,reach:400000",
                    help="PPO steps in the learned world per variant: N, or per world (WORLD:N,...)")
    ap.add_argument("--rounds", type=int, default=4, help="dyna: rounds (each collects budget / rounds)")
    ap.add_argument("--state-steps", type=int, default=1500, help="state-model updates per round")
    ap.add_argument("--penalty", type=float, default=1.0, help="penalty: lambda")
    ap.add_argument("--halt", default="data", help="halting: tau, or 'data': the largest disagreement on the real "
                                                    "steps (MOReL)")
    ap.add_argument("--initial-policy", default="mix", help="who collects the first real steps (as datasets are "
                                                            "collected: experts of varied skill, exploration, noise)")
    ap.add_argument("--episodes", type=int, default=50, help="evaluation episodes (held-out seeds 1000..)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=str(ROOT / ".runs" / "imagination"))
    ap.add_argument("--table", action="store_true", help="print the saved results as markdown tables and stop")
    args = ap.parse_args()
    if args.table:
        return markdown_tables(RESULTS / f"imagination_{args.device}.json")
    os.environ.setdefault("MUJOCO_GL", "egl")
    import cosmos_sim  # noqa: F401
    from cosmos_sim.policies.dyna import DynaConfig, run_dyna

    out = Path(args.out)
    path = RESULTS / f"imagination_{args.device}.json"
    imagined = {w: int(v) for w, v in (x.split(":") for x in args.imagined_steps.split(","))} \
        if ":" in args.imagined_steps else None
    for world in args.worlds.split(","):
        t0 = time.perf_counter()
        base = mujoco_ppo(world, args.mujoco_steps or MUJOCO_STEPS[world], args, out)
        budget = int(args.budget * base["steps_needed"])
        print(f"{world}: MuJoCo PPO needed {base['steps_needed']} steps (best {base['best_success']:.0%}); "
              f"physics budget {budget} steps", flush=True)
        w = {"mujoco_ppo": base, "budget_steps": budget, "budget_fraction": args.budget, "variants": {}}
        steps = imagined[world] if imagined else int(args.imagined_steps)
        for name in filter(None, args.variants.split(",")):
            cfg = DynaConfig(**variant_config(name, world, budget, steps, args))
            t1 = time.perf_counter()
            data = "" if args.initial_policy == "mix" else f"_{args.initial_policy}"
            log = run_dyna(cfg, "pretrained", out / world / f"{name}{data}_b{budget}", device=args.device,
                           progress=False)
            last = log["rounds"][-1]
            ratio = last["mujoco"]["success_rate"]["mean"] / max(base["success_at_needed"]["mean"], 1e-9)
            key = name if args.initial_policy == "mix" else f"{name} ({args.initial_policy} data)"
            w["variants"][key] = {
                "config": cfg.to_dict(), "physics_steps": last["real_steps_total"],
                "imagined_steps": last["imagined_steps_total"], "mujoco": last["mujoco"],
                "world_model": last["world_model"], "exploitation_gap": last["exploitation_gap"],
                "ratio_to_mujoco_ppo": ratio, "wall_s": time.perf_counter() - t1,
                "rounds": [{k: r[k] for k in ("round", "real_steps_total", "mujoco", "world_model", "exploitation_gap",
                                              "data_disagreement", "halt_uncertainty")} for r in log["rounds"]]}
            print(f"  {name}: MuJoCo {last['mujoco']['success_rate']['mean']:.0%}, ratio {ratio:.2f}, gap "
                  f"{last['exploitation_gap']['mean']:+.0f}", flush=True)
        w |= {"wall_s": time.perf_counter() - t0, "args": vars(args), "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}}
        print_table(world, w)
        # one world at a time, re-read first: runs for different worlds may share the file
        res = json.loads(path.read_text()) if path.is_file() else {}
        if res.get("benchmark") != "imagination_transfer":
            res = {"benchmark": "imagination_transfer", "worlds": {}}
        w["variants"] = {**res["worlds"].get(world, {}).get("variants", {}), **w["variants"]}  # keep other runs
        res["worlds"][world] = w
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(res, indent=1, default=float) + "\n")
        print(f"wrote {path}")


def ci(c: dict, scale: float = 100) -> str:
    return f"{c['mean'] * scale:.0f} [{c['lo'] * scale:.0f}, {c['hi'] * scale:.0f}]"


def print_table(world: str, w: dict) -> None:
    b = w["mujoco_ppo"]
    print(f"\n{world}: MuJoCo PPO {ci(b['success_at_needed'])} % success after {b['steps_needed']} steps; "
          f"budget {w['budget_steps']} physics steps ({w['budget_fraction']:.0%})")
    print(f"{'variant':>9} {'physics steps':>14} {'imagined':>9} {'MuJoCo success %':>17} {'learned %':>13} "
          f"{'ratio':>6} {'gap (points)':>14}")
    for name, r in w["variants"].items():
        g = r["exploitation_gap"]
        print(f"{name:>9} {r['physics_steps']:>14} {r['imagined_steps']:>9} {ci(r['mujoco']['success_rate']):>17} "
              f"{ci(r['world_model']['success_rate']):>13} {r['ratio_to_mujoco_ppo']:>6.2f} "
              f"{g['mean']:>+5.0f} [{g['lo']:+.0f}, {g['hi']:+.0f}]")


def markdown_tables(path: Path) -> None:
    res = json.loads(path.read_text())
    for world, w in res["worlds"].items():
        b = w["mujoco_ppo"]
        print(f"\n{world.capitalize()}: MuJoCo PPO reaches {ci(b['success_at_needed'])} % after {b['steps_needed']:,} "
              f"steps (best {100 * b['best_success']:.0f} %); budget {w['budget_steps']:,} physics steps "
              f"({w['budget_fraction']:.0%}).\n")
        print("| variant | physics steps | imagined steps | MuJoCo success % | learned success % | × MuJoCo PPO | "
              "gap, points |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        order = {v: i for i, v in enumerate(VARIANTS)}
        for name, r in sorted(w["variants"].items(), key=lambda kv: ("(" in kv[0], order.get(kv[0].split()[0], 99))):
            g = r["exploitation_gap"]
            print(f"| {name} | {r['physics_steps']:,} | {r['imagined_steps']:,} | {ci(r['mujoco']['success_rate'])} | "
                  f"{ci(r['world_model']['success_rate'])} | {r['ratio_to_mujoco_ppo']:.2f} | "
                  f"{g['mean']:+.0f} [{g['lo']:+.0f}, {g['hi']:+.0f}] |")


if __name__ == "__main__":
    main()
