"""Dynamics benchmark: train each family on Push latents for a CPU budget; open-loop fidelity vs physics.

    python benchmarks/dynamics.py --tokenizer benchmarks/.runs/tokenizer_cv8 \\
        --dv-tokenizer benchmarks/.runs/tokenizer_dv8 --runs deterministic,deterministic-h1,diffusion,autoregressive

Run `benchmarks/tokenizer.py` first (it collects the dataset and trains the tokenizers). Prints, on
held-out episodes, PSNR (whole frame and object pixels), SSIM and block-position error at horizons
1, 4, 16 and 32 for each model, next to copy-last-frame and the tokenizer's reconstruction ceiling,
plus the same model with its actions zeroed. Writes benchmarks/results/dynamics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import torch

ROOT = Path(__file__).parent
RUNS = {  # name -> (family, overrides)
    "deterministic": ("deterministic", {}),
    "deterministic-h1": ("deterministic", {"horizon": 1}),  # teacher forcing only: what own-rollout training buys
    "diffusion": ("diffusion", {}),
    "autoregressive": ("autoregressive", {"temperature": 0.0}),
    # one target frame, no self-forcing: more steps per CPU minute (what self-forcing costs)
    "autoregressive-h1": ("autoregressive", {"temperature": 0.0, "horizon": 1, "self_forcing": 0.0}),
}


def main() -> None:
    from cosmos_sim.data import EpisodeDataset
    from cosmos_sim.dynamics.train import StateModelConfig, train_dynamics
    from cosmos_sim.evaluation.open_loop import held_out
    from cosmos_sim.tokenizer.train import split_episodes
    from cosmos_sim.training import TrainConfig
    from cosmos_sim.world_model import WorldModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / ".cache" / "push_random_300"))
    ap.add_argument("--tokenizer", default=str(ROOT / ".runs" / "tokenizer_cv8"))
    ap.add_argument("--dv-tokenizer", default=str(ROOT / ".runs" / "tokenizer_dv8"), help="for autoregressive")
    ap.add_argument("--runs", default="deterministic,deterministic-h1")
    ap.add_argument("--minutes", default="10", help="budget per run, one value or one per run (comma-separated)")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval-episodes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0, help="training seed (run-to-run spread)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--merge", action="store_true", help="keep other runs already in the results file")
    ap.add_argument("--out", default=str(ROOT / "results" / "dynamics.json"), help="results file")
    args = ap.parse_args()
    names = args.runs.split(",")
    minutes = [float(m) for m in args.minutes.split(",")]
    minutes = minutes * len(names) if len(minutes) == 1 else minutes
    data = EpisodeDataset(args.data)
    _, held = split_episodes(len(data))
    held = held[: args.eval_episodes]
    results = {}
    for name, budget in zip(names, minutes, strict=True):
        family, overrides = RUNS[name]
        tok = args.dv_tokenizer if family == "autoregressive" else args.tokenizer
        run = ROOT / ".runs" / f"dynamics_{name}"
        if run.exists():
            shutil.rmtree(run)
        # estimate steps for the budget with a short run (sets the warm-up and the state model's
        # updates, min(4000, 8 x steps), timed in the probe: the budget covers them too); the cosine
        # schedule itself runs on training time (schedule_by_time), so it ends with the budget even
        # where the probe's step time is off
        probe = train_dynamics(args.data, tok, run / "probe", family, args.preset,
                               TrainConfig(steps=32, batch_size=args.batch_size, warmup_steps=1, log_every=1),
                               overrides=overrides, progress=False, device=args.device,
                               state=StateModelConfig(steps=200))
        logged = {m["step"]: m["time_s"] for m in map(json.loads, (run / "probe" / "metrics.jsonl").open())}
        step_s = (logged[32] - logged[16]) / 16  # steady state: the first steps are slower
        update_s = probe["state_update_seconds"]
        steps = max(50, int((budget * 60 - 4000 * update_s) / step_s))
        if 8 * steps < 4000:  # fewer state updates: solve steps * step_s + 8 * steps * update_s = budget
            steps = max(50, int(budget * 60 / (step_s + 8 * update_s)))
        tc = TrainConfig(steps=2 * steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=min(200, steps // 10),
                         # 10 s spare: the step running at the limit finishes past it
                         time_limit_s=budget * 60 - 10, schedule_by_time=True, checkpoint_every=10**9,
                         ema_decay=0.995, log_every=50, seed=args.seed)
        t = time.perf_counter()
        r = train_dynamics(args.data, tok, run, family, args.preset, tc, overrides=overrides, device=args.device,
                           state=StateModelConfig(steps=min(4000, 8 * steps)))
        wall = time.perf_counter() - t
        model = WorldModel.load(r["world_model"], device=args.device)
        ev = held_out(model, args.data, held)
        ev_zero = held_out(model, args.data, held, zero_actions=True)
        results[name] = {"family": family, "overrides": overrides, "tokenizer": Path(tok).name, "steps": r["step"],
                         "train_seconds": r["train_seconds"], "state_seconds": r.get("state_seconds"),
                         "wall_seconds": wall, "parameters": r["parameters"],
                         "state_steps": r.get("state_steps"),
                         "open_loop": ev, "zero_actions": ev_zero["model"]}
    camera = data.manifest.get("collection", {}).get("camera", "?")
    used = next(iter(results.values()))["open_loop"]["episodes"] if results else 0
    print(f"\nOpen loop on {used} held-out Push episodes of {args.data} (64x64, {camera} camera, episodes long "
          f"enough for 32 steps), device {args.device}")
    print(f"{'model':>18} {'h':>3} {'PSNR':>6} {'PSNRobj':>8} {'SSIM':>6} {'pos err cm':>10}")
    shown_refs = False
    for name, r in results.items():
        ev = r["open_loop"]
        blocks = [(name, ev["model"]), (name + " (a=0)", r["zero_actions"])]
        if not shown_refs:
            blocks = [("copy-last", ev["copy_last"])] + blocks
            shown_refs = True
        blocks = [(f"ceiling ({r['tokenizer']})", ev["ceiling"])] + blocks
        for label, per_h in blocks:
            for h in ev["horizons"]:
                m = per_h[h]
                pe = m.get("position_error_m")
                print(f"{label:>18} {h:>3} {m['psnr']:>6.2f} {m.get('psnr_objects', float('nan')):>8.2f} "
                      f"{m['ssim']:>6.3f} {'' if pe is None else f'{100 * pe:.1f}':>10}")
        print(f"{'':>18} ({r['parameters'] / 1e6:.2f}M params, {r['steps']} steps, "
              f"{(r['train_seconds'] + (r['state_seconds'] or 0)) / 60:.1f} min incl. "
              f"{(r['state_seconds'] or 0) / 60:.1f} min of state model, {ev['episodes']} episodes)")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and path.is_file():  # earlier runs first, this invocation's replace same-named ones
        results = {**json.loads(path.read_text())["results"], **results}
    path.write_text(json.dumps(
        {"benchmark": "dynamics", "args": vars(args), "results": results,
         "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__}},
        indent=1, default=str) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
