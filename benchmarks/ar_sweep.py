"""Autoregressive preset sweep at CPU-budget-equivalent step counts, run side by side on a GPU.

Each variant trains as many steps as it would get in `benchmarks/dynamics.py`'s 30 CPU minutes (the
reference variant's steps there x its CPU step time / the variant's, timed on the CPU with `probe`),
so one GPU sitting ranks preset changes for the CPU budget; the CPU benchmark then confirms the pick.

    python benchmarks/ar_sweep.py probe          # on the CPU: seconds a step per variant
    python benchmarks/ar_sweep.py backgrounds    # on the CPU: the empty scene of the eval frames (MuJoCo)
    python benchmarks/ar_sweep.py run --device cuda --jobs 13     # on the GPU box: all variants at once

`backgrounds` exists because the GPU box may lack MuJoCo: object masks then come from the saved
renders (the demo data has one fixed camera, so one image). Data and tokenizer as in dynamics.py.
Writes benchmarks/results/ar_sweep_probe.json and ar_sweep.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).parent
RESULTS = ROOT / "results"
# The reference variant and its step count in 30 CPU minutes (from its CPU benchmark run: docs/experiments.md);
# the other variants get steps in proportion to their CPU step times.
REFERENCE, REFERENCE_STEPS = "gh4", 1334
# name -> (overrides on the small preset, seed, peak lr); guide_horizon is explicit so the sweep
# means the same whatever the preset's current default
VARIANTS: dict[str, tuple[dict, int, float]] = {
    "gh4": ({"guide_horizon": 4}, 0, 1e-3),
    "gh4_seed1": ({"guide_horizon": 4}, 1, 1e-3),
    "gh4_lr2e-3": ({"guide_horizon": 4}, 0, 2e-3),
    "gh4_h1": ({"guide_horizon": 4, "horizon": 1, "self_forcing": 0.0}, 0, 1e-3),
    "gh4_sf0": ({"guide_horizon": 4, "self_forcing": 0.0}, 0, 1e-3),
    "gh4_width128": ({"guide_horizon": 4, "width": 128}, 0, 1e-3),
    "gh4_width256": ({"guide_horizon": 4, "width": 256}, 0, 1e-3),
    "gh4_depth3": ({"guide_horizon": 4, "depth": 3}, 0, 1e-3),
    "gh4_mlp2": ({"guide_horizon": 4, "mlp_ratio": 2}, 0, 1e-3),
    "gh4_guide128": ({"guide_horizon": 4, "guide_width": 128}, 0, 1e-3),
    "gh6": ({"guide_horizon": 6}, 0, 1e-3),
    "gh8": ({"guide_horizon": 8}, 0, 1e-3),
}


def probe(args) -> None:
    """CPU seconds a training step (steps 12-32 of a 32-step run), per distinct variant."""
    from cosmos_sim.dynamics.train import StateModelConfig, train_dynamics
    from cosmos_sim.training import TrainConfig

    path = RESULTS / "ar_sweep_probe.json"
    done = json.loads(path.read_text())["step_seconds"] if path.is_file() else {}
    for name in args.variants:
        if name in done:
            continue
        ov, seed, lr = VARIANTS[name]
        out = ROOT / ".runs" / "ar_sweep_probe"
        shutil.rmtree(out, ignore_errors=True)
        train_dynamics(args.data, args.tokenizer, out, "autoregressive", "small",
                       TrainConfig(steps=32, batch_size=32, lr=lr, warmup_steps=1, log_every=1,
                                   checkpoint_every=10**9, seed=seed),
                       overrides={"temperature": 0.0, **ov}, progress=False, state=StateModelConfig(steps=50))
        logged = {m["step"]: m["time_s"] for m in map(json.loads, (out / "metrics.jsonl").open())}
        done[name] = (logged[32] - logged[12]) / 20
        print(f"{name:>14} {done[name]:.3f} s/step", flush=True)
        path.write_text(json.dumps({"step_seconds": done, "threads": torch.get_num_threads(),
                                    "machine": platform.platform()}, indent=1) + "\n")


def backgrounds(args) -> None:
    from cosmos_sim.data import EpisodeDataset
    from cosmos_sim.evaluation.masks import BackgroundRenderer, pose_key
    from cosmos_sim.tokenizer.train import split_episodes

    ds = EpisodeDataset(args.data)
    _, held = split_episodes(len(ds))
    bg = BackgroundRenderer(ds.world, tuple(ds.spec.image_size))
    poses = {}
    for i in held[: args.eval_episodes]:
        ep = ds[i]
        for e, f in zip(ep["extrinsics"], ep["fovy"], strict=True):
            poses.setdefault(pose_key(e, f), (e, f))
    if len(poses) != 1:
        raise SystemExit(f"the eval frames have {len(poses)} camera poses; this sweep handles one fixed camera")
    (e, f), = poses.values()
    np.save(ROOT / ".runs" / "ar_sweep_background.npy", bg.render(e, f))
    bg.close()
    print("wrote", ROOT / ".runs" / "ar_sweep_background.npy")


def one(args) -> None:
    """Train and score one variant (a worker of `run`): prints one JSON line."""
    torch.set_num_threads(1)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # as on the CPU
    from cosmos_sim.data import EpisodeDataset
    from cosmos_sim.dynamics.train import StateModelConfig, train_dynamics
    from cosmos_sim.evaluation.masks import BackgroundRenderer
    from cosmos_sim.evaluation.open_loop import held_out
    from cosmos_sim.tokenizer.train import split_episodes
    from cosmos_sim.training import TrainConfig
    from cosmos_sim.world_model import WorldModel

    empty = np.load(ROOT / ".runs" / "ar_sweep_background.npy")

    class SavedBackground(BackgroundRenderer):  # the fixed camera's empty scene, rendered by `backgrounds`
        def __init__(self):  # no MuJoCo: masks() only needs render()
            pass

        def render(self, extrinsics, fovy):
            return empty

    background = SavedBackground()
    name, steps = args.name, args.steps
    ov, seed, lr = VARIANTS[name]
    t = time.perf_counter()
    tc = TrainConfig(steps=steps, batch_size=32, lr=lr, warmup_steps=min(200, steps // 10), checkpoint_every=10**9,
                     ema_decay=0.995, log_every=50, seed=seed)
    r = train_dynamics(args.data, args.tokenizer, ROOT / ".runs" / f"ar_sweep_{name}", "autoregressive", "small", tc,
                       overrides={"temperature": 0.0, **ov}, progress=False, device=args.device,
                       state=StateModelConfig(steps=min(4000, 8 * steps)))
    _, held = split_episodes(len(EpisodeDataset(args.data)))
    held = held[: args.eval_episodes]
    m = WorldModel.load(r["world_model"], device=args.device)
    res = {"name": name, "overrides": ov, "seed": seed, "lr": lr, "steps": steps}
    for label, zero in (("model", False), ("a0", True)):
        ev = held_out(m, args.data, held, zero_actions=zero, background=background)
        res[label] = {h: ev["model"][h] for h in ev["horizons"]}
        if not zero:
            res["copy"] = {h: ev["copy_last"][h]["psnr"] for h in ev["horizons"]}
            res["ceil"] = {h: ev["ceiling"][h]["psnr"] for h in ev["horizons"]}
    res["cost16"] = res["model"][16]["psnr"] - res["a0"][16]["psnr"]
    guide = WorldModel(m.tokenizer, m.dynamics.guide, m.state_head, world=m.world, state_layout=m.state_layout,
                       action_names=m.action_names, latent_mean=m.latent_mean, latent_std=m.latent_std,
                       state_mean=m.state_mean, state_std=m.state_std).to(args.device)
    ev = held_out(guide, args.data, held, background=background)
    res["guide"] = {h: ev["model"][h]["psnr"] for h in ev["horizons"]}
    res["total_s"] = time.perf_counter() - t
    print(json.dumps(res))


def table(results: dict) -> None:
    print(f"\n{'variant':>14} {'steps':>5} {'PSNR h=1 / 4 / 16 / 32':>27} {'a=0 h16':>7} {'cost':>5} {'obj16':>6} "
          f"{'block cm 16 / 32':>16} {'guide alone h16':>15}")
    for name, r in results.items():
        m, psnr = r["model"], " / ".join(f"{r['model'][h]['psnr']:.2f}" for h in ("1", "4", "16", "32"))
        print(f"{name:>14} {r['steps']:>5} {psnr:>27} {r['a0']['16']['psnr']:>7.2f} {r['cost16']:>5.2f} "
              f"{m['16']['psnr_objects']:>6.2f} {100 * m['16']['position_error_m']:>7.1f} / "
              f"{100 * m['32']['position_error_m']:<6.1f} {r['guide']['16']:>15.2f}")


def run(args) -> None:
    step_s = json.loads((RESULTS / "ar_sweep_probe.json").read_text())["step_seconds"]
    ref = step_s[REFERENCE]
    procs = {}
    for name in args.variants:
        steps = round(args.reference_steps * ref / step_s.get(name, ref))
        cmd = [sys.executable, __file__, "one", name, str(steps), "--device", args.device, "--data", args.data,
               "--tokenizer", args.tokenizer, "--eval-episodes", str(args.eval_episodes)]
        while len([p for p in procs.values() if p.poll() is None]) >= args.jobs:
            time.sleep(2)
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        print(f"started {name}: {steps} steps", flush=True)
    results = {}
    for name, p in procs.items():
        out, _ = p.communicate()
        if p.returncode == 0:
            results[name] = json.loads(out.strip().splitlines()[-1])  # horizons become string keys
        else:
            print(f"{name} failed (exit {p.returncode})", flush=True)
    table(results)
    path = Path(args.out)
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__, "device": device}
    report = {"benchmark": "ar_sweep", "args": vars(args), "reference": [REFERENCE, args.reference_steps],
              "results": results, "machine": machine}
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, fn in (("probe", probe), ("backgrounds", backgrounds), ("run", run), ("one", one)):
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        p.add_argument("--data", default="demo_out/data")
        p.add_argument("--tokenizer", default=str(ROOT / ".runs" / "tokenizer_dv8_long"))
        p.add_argument("--eval-episodes", type=int, default=30)
        if name == "one":
            p.add_argument("name", choices=list(VARIANTS))
            p.add_argument("steps", type=int)
        else:
            p.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
        if name in ("run", "one"):
            p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        if name == "run":
            p.add_argument("--jobs", type=int, default=13, help="variants trained at once")
            p.add_argument("--reference-steps", type=int, default=REFERENCE_STEPS,
                           help=f"{REFERENCE}'s steps in 30 CPU minutes; the others scale by their step time")
            p.add_argument("--out", default=str(RESULTS / "ar_sweep.json"))
    args = ap.parse_args()
    if getattr(args, "variants", None):
        unknown = [v for v in args.variants if v not in VARIANTS]
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    args.fn(args)


if __name__ == "__main__":
    main()
