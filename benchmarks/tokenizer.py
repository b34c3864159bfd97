"""Tokenizer benchmark: train presets on Push episodes for a CPU time budget, evaluate on held-out episodes.

    python benchmarks/tokenizer.py                      # cv8 and dv8, 10 minutes each
    python benchmarks/tokenizer.py --presets cv8 --minutes 20
    python benchmarks/tokenizer.py --quick              # smoke run (tiny data, seconds of training)

Prints, per preset: PSNR (whole frame and object pixels), SSIM, parameters, encode/decode ms per
frame, training time, and PSNR against training minutes. Writes benchmarks/results/tokenizer.json
and a reconstruction grid per evaluation in the run directories.
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
CACHE = ROOT / ".cache"
TOKENBENCH = {"CV4x8x8": 37.27, "DV4x8x8": 35.14}  # Cosmos tokenizer paper, TokenBench PSNR (real video)


def ensure_data(path: Path, episodes: int) -> Path:
    from cosmos_sim.data import CollectConfig, collect

    cfg = CollectConfig(world="push", policy="mix", skill=(0.3, 1.0), episodes=episodes, camera="random",
                        workers=2)
    collect(cfg, path)
    return path


@torch.no_grad()
def codec_ms(model, device: str, frames: int = 32) -> tuple[float, float]:
    """Per-frame encode and decode time for a batch of single frames (the env-step shape)."""
    s = model.config.image_size
    T = 1 + model.config.temporal if model.config.temporal > 1 else 1
    x = torch.rand(frames, T, 3, s, s, device=device) * 2 - 1
    model.decode(model.encode(x))
    z = model.encode(x)
    times = []
    for fn in (lambda: model.encode(x), lambda: model.decode(z)):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(3):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / 3 / (frames * T) * 1000)
    return times[0], times[1]


def main() -> None:
    from cosmos_sim.tokenizer import CausalVideoTokenizer, preset, train_tokenizer
    from cosmos_sim.training import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="cv8,dv8")
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per preset")
    ap.add_argument("--marks", default="1,2,5,10,20", help="evaluate at these training minutes (within budget)")
    ap.add_argument("--episodes", type=int, default=300, help="Push episodes to collect (random cameras)")
    ap.add_argument("--data", default=None, help="dataset directory (collected if missing)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.minutes, args.episodes, args.marks = 0.1, 12, "0.05"
    data = Path(args.data or CACHE / f"push_random_{args.episodes}")
    ensure_data(data, args.episodes)
    marks = [float(m) * 60 for m in args.marks.split(",") if float(m) <= args.minutes]
    rows = []
    for name in args.presets.split(","):
        cfg = preset(name)
        probe = CausalVideoTokenizer(cfg).to(args.device)
        enc_ms, dec_ms = codec_ms(probe.eval(), args.device)
        # Size the cosine schedule to the time budget from a short timing run (after a warm-up step).
        from cosmos_sim.tokenizer.train import clip_length

        opt = torch.optim.AdamW(probe.parameters())
        x = torch.randint(0, 255, (args.batch_size, clip_length(cfg), 3, cfg.image_size, cfg.image_size),
                          dtype=torch.uint8, device=args.device)
        for i in range(6):
            if i == 1:
                t = time.perf_counter()
            loss, _ = probe.train().training_loss({"frames": x})
            opt.zero_grad()
            loss.backward()
            opt.step()
        step_s = (time.perf_counter() - t) / 5
        steps = max(20, int(args.minutes * 60 / step_s))
        tc = TrainConfig(steps=steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=min(200, steps // 10),
                         time_limit_s=args.minutes * 60, eval_at_s=tuple(marks), checkpoint_every=10**9,
                         ema_decay=0.995, log_every=50)
        run = ROOT / ".runs" / f"tokenizer_{name}"
        if run.exists():
            import shutil

            shutil.rmtree(run)
        result = train_tokenizer(data, run, cfg, tc, device=args.device)
        ev = result["eval"]
        rows.append({"preset": name, "config": cfg.to_dict(), "parameters": result["parameters"],
                     "psnr": ev["psnr"], "psnr_objects": ev["psnr_objects"],
                     "psnr_objects_pooled": ev["psnr_objects_pooled"], "ssim": ev["ssim"],
                     "encode_ms_per_frame": enc_ms, "decode_ms_per_frame": dec_ms, "device": args.device,
                     "train_seconds": result["train_seconds"], "steps": result["step"],
                     "curve": [{"minutes": e["train_s"] / 60, **e["eval"]} for e in result["evals"]],
                     "run": str(run)})
    print(f"\nTokenizers on held-out Push episodes (64x64, random cameras), {args.minutes:g} min training, "
          f"device {args.device}")
    print(f"{'preset':>7} {'params':>8} {'PSNR':>6} {'PSNRobj':>8} {'pooled':>7} {'SSIM':>6} {'enc ms':>7} "
          f"{'dec ms':>7} {'train s':>8} {'steps':>6}")
    for r in rows:
        print(f"{r['preset']:>7} {r['parameters'] / 1e6:>7.2f}M {r['psnr']:>6.2f} {r['psnr_objects']:>8.2f} "
              f"{r['psnr_objects_pooled']:>7.2f} {r['ssim']:>6.3f} {r['encode_ms_per_frame']:>7.2f} "
              f"{r['decode_ms_per_frame']:>7.2f} {r['train_seconds']:>8.0f} {r['steps']:>6}")
    print("\nPSNR (whole / objects) against training minutes")
    for r in rows:
        print(f"{r['preset']:>7}: " + "  ".join(f"{c['minutes']:.1f}min {c['psnr']:.2f}/{c['psnr_objects']:.2f}"
                                               for c in r["curve"]))
    print("\nFor context, Cosmos TokenBench (real video): " + ", ".join(f"{k} {v} dB" for k, v in TOKENBENCH.items()))
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "tokenizer", "args": vars(args), "rows": rows, "tokenbench_reference": TOKENBENCH,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                       "threads": torch.get_num_threads()}}
    name = "tokenizer_quick.json" if args.quick else "tokenizer.json"
    (RESULTS / name).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS / name}")


if __name__ == "__main__":
    main()
