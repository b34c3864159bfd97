"""Pixel ladders: policies that see only frames, ranked in the learned video world as in MuJoCo, beside the state
ladder, with the oracle-frame and frozen-frame rows (issue 37, items 2 and 3).

    python benchmarks/pixel_ladder.py                                   # Push and Reach, default camera (CPU)
    python benchmarks/pixel_ladder.py --worlds push --camera random     # a random in-range pose per episode
    python benchmarks/pixel_ladder.py --worlds push --model RUN         # another learned world, same ladder

Per world and camera: the expert data of benchmarks/pixel_policies.py (200 scripted episodes at 64x64), one pixel
BC run (its defaults: IMPALA CNN, 2 frames, random shift; the pose beside the frames under random cameras) of
--steps updates with a checkpoint every --every, each checkpoint exported as a policy (policies/bc.py
`export_checkpoints`). The ladder: --rungs checkpoints whose MuJoCo success on seeds 500..519 (not the ranking's)
spreads evenly over the run's range. Then `compare` with the world's shipped model, MuJoCo and the learned world,
the state ladder and the pixel ladder, 50 episodes each (seeds 0..49): the report's ranking (pixel group) and its
pixel section (oracle frames: the tokenizer's redraw of the true frames; frozen frames).
Writes benchmarks/results/pixel_ladder_<device>.json; the runs and reports stay in --out.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
PICK_SEED, PICK_EPISODES, EPISODES = 500, 20, 50


def pick_rungs(success: dict[str, float], k: int) -> list[str]:
    """k policies whose success spreads evenly from the lowest to the highest (nearest unchosen to each target)."""
    items = sorted(success.items(), key=lambda kv: (kv[1], kv[0]))
    vals = np.array([v for _, v in items])
    chosen: list[str] = []
    for q in np.linspace(vals.min(), vals.max(), k):
        for i in np.argsort(np.abs(vals - q), kind="stable"):
            if items[i][0] not in chosen:
                chosen.append(items[i][0])
                break
    return sorted(chosen)


def run(world: str, camera: str, out: Path, steps: int, every: int, rungs: int, device: str | None,
        model: str = "pretrained", name: str = "shipped") -> dict:
    from cosmos_sim.evaluation.closed_loop import evaluate_policies
    from cosmos_sim.evaluation.compare import CompareConfig, compare
    from cosmos_sim.fileio import atomic_write_json
    from cosmos_sim.policies.bc import BCConfig, export_checkpoints, train_bc

    cam = None if camera == "default" else camera
    from pixel_policies import expert_data

    data = expert_data(world, camera, out.parent.parent / "pixel_policies")
    cfg = BCConfig(obs_mode="pixels", steps=steps, batch_size=64)
    bc_run = out / "bc"
    t0 = time.perf_counter()
    train_bc(data, bc_run, cfg, replace(cfg.train_config(), checkpoint_every=every, keep_last=10**6), resume=True,
             progress=True, device=device)
    train_min = (time.perf_counter() - t0) / 60
    policies = [str(p) for p in export_checkpoints(bc_run)]
    pick = out / "pick.json"  # MuJoCo success per checkpoint on seeds the ranking does not use
    if not pick.is_file():
        res = evaluate_policies(world, "mujoco", policies, episodes=PICK_EPISODES, seed=PICK_SEED, device=device,
                                camera=cam)
        atomic_write_json(pick, {p: 100.0 * r["success_rate"]["mean"] for p, r in res.items()}, indent=1)
    ladder = pick_rungs(json.loads(pick.read_text()), rungs)
    t0 = time.perf_counter()
    ccfg = CompareConfig(world=world, policies=("ladder", *ladder), episodes=EPISODES,
                         backends=("mujoco", "world_model"), camera=camera, videos=1, device=device)
    report = out / ("report" if model == "pretrained" else f"report_{name}")
    rep = compare(ccfg, model, report, progress=True)
    compare_min = (time.perf_counter() - t0) / 60
    wm = rep["ranking"]["pairs"]["world_model"]["groups"]
    pf = rep["pixel_frames"]
    return {"world": world, "camera": camera, "bc": cfg.to_dict(), "steps": steps, "every": every,
            "train_minutes": train_min, "compare_minutes": compare_min,
            "rungs": [{"policy": Path(p).name, "steps": int(Path(p).stem.split("-")[1]),
                       **{src: pf["success"][src][p] for src in pf["success"]}} for p in ladder],
            "pixel": {"learned": wm["pixel"], **{src: pf["pairs"][src] for src in ("oracle", "frozen")}},
            "state_ladder": wm.get("ladder"), "model": model, "model_name": name, "report": str(report / "report.md")}


def table(results: dict) -> str:
    def f(x, d=2):
        return "–" if x is None else f"{x:.{d}f}"

    lines = ["| world | camera | model | rungs (MuJoCo success %) | learned ρ / MAE | oracle frames ρ / MAE | "
             "frozen frames ρ / MAE | state ladder ρ / MAE |", "|---|---|---|---|---|---|---|---|"]
    for r in results["runs"].values():
        cells = []
        for g in (r["pixel"]["learned"], r["pixel"]["oracle"], r["pixel"]["frozen"], r["state_ladder"]):
            cells.append("–" if g is None else f"{f((g['success'] or {}).get('spearman'))} / "
                                               f"{f(g['success_mae_points'], 1)}")
        rungs = ", ".join(f"{x['mujoco']:.0f}" for x in r["rungs"])
        model = "shipped" if r.get("model", "pretrained") == "pretrained" else r.get("model_name", r["model"])
        lines.append(f"| {r['world']} | {r['camera']} | {model} | {rungs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    from cosmos_sim.fileio import update_results

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worlds", default="push,reach")
    p.add_argument("--camera", choices=("default", "random"), default="default")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=50, help="updates between checkpoints (the candidate rungs)")
    p.add_argument("--rungs", type=int, default=7)
    p.add_argument("--model", default="pretrained", help="the learned world: the shipped model, or a run / file")
    p.add_argument("--name", default=None, help="that model's name in the results (default: its path's last part)")
    p.add_argument("--out", type=Path, default=ROOT / ".runs" / "pixel_ladder")
    p.add_argument("--device", default=None)
    p.add_argument("--table", action="store_true", help="print the saved results and exit")
    args = p.parse_args()
    dev = args.device or "cpu"
    path = RESULTS / f"pixel_ladder_{dev.split(':')[0]}.json"
    results = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    if not args.table:
        import torch

        torch.set_num_threads(1)  # the figures are one CPU core's
        for world in [w.strip() for w in args.worlds.split(",") if w.strip()]:
            name = args.name or Path(args.model).name
            r = run(world, args.camera, args.out / f"{world}_{args.camera}", args.steps, args.every, args.rungs,
                    args.device, args.model, name)
            tag = "" if args.model == "pretrained" else f"/{name}"
            results = update_results(path, "runs", f"{world}/{args.camera}{tag}", r, dev)
    print(table(results))


if __name__ == "__main__":
    main()
