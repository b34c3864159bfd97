"""Pixel policies that work: behaviour cloning on the frames alone, evaluated in MuJoCo on frames.

    python benchmarks/pixel_policies.py                       # Push and Reach, default camera (CPU)
    python benchmarks/pixel_policies.py --worlds push --camera random    # a random pose per episode, given

Per world: `collect` 200 episodes of the scripted expert (skill 1.0) at 64x64 from the default camera (or a
random pose per episode: `--camera random`), then pixel BC (`BCConfig(obs_mode="pixels")`: IMPALA CNN, the last
2 frames, DrQ random shift, and under random cameras the pose beside the frames; the defaults) for --steps
updates of batch 64, one CPU thread, then 50 MuJoCo episodes (seeds 1000..1049) on the frames, from the same
kind of camera.
Writes benchmarks/results/pixel_policies_<device>.json; the data and runs stay in --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
EPISODES = 200
EVAL_EPISODES, EVAL_SEED = 50, 1000


def expert_data(world: str, camera: str, out: Path, dart: float = 0.0) -> Path:
    """The expert's episodes (collected once into out/WORLD, shared with benchmarks/pixel_ladder.py); with `dart`,
    the expert acts with that much action noise (BC then labels its states with the clean expert)."""
    from cosmos_sim.data import CollectConfig, collect

    data = out / world / (f"expert_{camera}" + (f"_dart{dart:g}" if dart else ""))
    if not (data / "manifest.json").is_file():
        collect(CollectConfig(world=world, policy=f"scripted@noise={dart:g}" if dart else "scripted",
                              skill=(1.0, 1.0), episodes=EPISODES, camera="fixed" if camera == "default" else camera),
                data, progress=False)
    return data


def run_world(world: str, camera: str, out: Path, steps: int, device: str | None, encoder: str = "impala",
              dart: float = 0.0) -> dict:
    from cosmos_sim.evaluation.closed_loop import evaluate_policies
    from cosmos_sim.policies.bc import BCConfig, train_bc

    data = expert_data(world, camera, out, dart)
    cfg = BCConfig(obs_mode="pixels", steps=steps, batch_size=64, encoder=encoder,
                   relabel="expert" if dart else "none")
    run = out / world / (f"bc_{camera}_{steps}" + ("" if encoder == "impala" else f"_{encoder}")
                         + (f"_dart{dart:g}" if dart else ""))
    t0 = time.perf_counter()
    result = train_bc(data, run, cfg, resume=True, progress=True, device=device)
    minutes = (time.perf_counter() - t0) / 60
    res = evaluate_policies(world, "mujoco", [result["policy_path"]], episodes=EVAL_EPISODES, seed=EVAL_SEED,
                            device=device, camera=None if camera == "default" else camera)[result["policy_path"]]
    return {"world": world, "camera": camera, "demos": EPISODES, "dart": dart, "bc": cfg.to_dict(),
            "train_minutes": minutes,
            "success": res["success_rate"], "return": res["return"], "episodes": EVAL_EPISODES,
            "policy": result["policy_path"]}


def table(results: dict) -> str:
    lines = ["| world | camera | encoder | demos | updates | train min | MuJoCo success (95% CI) |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in results["runs"].values():
        s = r["success"]
        demos = f"{r['demos']}" + (f" (DART σ {r['dart']:g})" if r.get("dart") else "")
        lines.append(f"| {r['world']} | {r['camera']} | {r['bc'].get('encoder', 'impala')} | {demos} |"
                     f" {r['bc']['steps']} | {r['train_minutes']:.1f} | "
                     f"{100 * s['mean']:.0f} % ({100 * s['lo']:.0f}–{100 * s['hi']:.0f}) |")
    return "\n".join(lines)


def main() -> None:
    from cosmos_sim.fileio import update_results

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worlds", default="push,reach")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--camera", choices=("default", "random"), default="default")
    p.add_argument("--encoder", choices=("impala", "small"), default="impala")
    p.add_argument("--dart", type=float, default=0.0, help="collect with the expert's actions noised by this std "
                   "and label every state with the clean expert (DART; 0: the clean expert's own episodes)")
    p.add_argument("--out", type=Path, default=ROOT / ".runs" / "pixel_policies")
    p.add_argument("--device", default=None)
    p.add_argument("--table", action="store_true", help="print the saved results and exit")
    args = p.parse_args()
    dev = args.device or "cpu"
    path = RESULTS / f"pixel_policies_{dev.split(':')[0]}.json"
    results = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    if not args.table:
        import torch

        torch.set_num_threads(1)  # the figure is one CPU core's
        for world in [w.strip() for w in args.worlds.split(",") if w.strip()]:
            key = (f"{world}/{args.camera}/{args.steps}" + ("" if args.encoder == "impala" else f"/{args.encoder}")
                   + (f"/dart={args.dart:g}" if args.dart else ""))
            r = run_world(world, args.camera, args.out, args.steps, args.device, args.encoder, args.dart)
            results = update_results(path, "runs", key, r, dev)
    print(table(results))


if __name__ == "__main__":
    main()
