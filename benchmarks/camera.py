"""Does the learned world use its camera input?

    python benchmarks/camera.py --minutes 8     # after benchmarks/tokenizer.py (data + cv8 tokenizer)
    cosmos-sim collect --world push --policy mix --skill 0.3:1.0 --episodes 300 --camera moving \
        --out benchmarks/.cache/push_moving_300
    python benchmarks/camera.py --data benchmarks/.cache/push_moving_300 \
        --run benchmarks/.runs/camera_moving_deterministic --out benchmarks/results/camera_moving.json

Trains the deterministic family (small preset) on episodes recorded under random camera poses
(one per episode, or moving every step with `--camera moving` data), then, for held-out start
states, renders them in physics under a new in-range pose B and rolls the model out from those
frames twice: told the camera is at B, and told it is still at the episode's recorded pose A.
Both are scored against physics at B (PSNR per horizon). Writes
benchmarks/results/camera.json (or `--out`).

    python benchmarks/camera.py --views MODEL [--world push] [--episodes 20]

measures a trained model instead (`cosmos_sim.evaluation.views`): novel-view PSNR (a context frame at
pose A, the rollout told pose B, scored against physics at B) beside the same-pose PSNR, and camera
following (the learned env and physics along one smooth random camera path); writes
benchmarks/results/camera_views_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).parent
# the object read from each of two views: its rgba in the world's MJCF, the height of its centre at rest
OBJECT_COLOURS = {"push": ((0.15, 0.3, 0.9), 0.05),  # the block
                  "drop": ((0.15, 0.3, 0.9), 0.04)}  # obj1, the box


def main() -> None:
    from cosmos_sim.data import EpisodeDataset
    from cosmos_sim.dynamics.train import train_dynamics
    from cosmos_sim.evaluation.open_loop import camera_swap
    from cosmos_sim.tokenizer.train import split_episodes
    from cosmos_sim.training import TrainConfig
    from cosmos_sim.world_model import WorldModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / ".cache" / "push_random_300"))
    ap.add_argument("--tokenizer", default=str(ROOT / ".runs" / "tokenizer_cv8"))
    ap.add_argument("--run", default=str(ROOT / ".runs" / "camera_deterministic"))
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=1000, help="schedule length (the time limit usually ends first)")
    ap.add_argument("--eval-episodes", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "results" / "camera.json"), help="results file")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--views", default=None, metavar="MODEL", help="measure this model's camera obedience instead")
    ap.add_argument("--world", default="push")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--name", default=None, help="results name (default: the model directory's name)")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    if args.views:
        return views(args)
    run = Path(args.run)
    if not (run / "world_model.safetensors").is_file():
        tc = TrainConfig(steps=args.steps, batch_size=32, lr=1e-3, warmup_steps=100, time_limit_s=args.minutes * 60,
                         checkpoint_every=10**9, ema_decay=0.995, log_every=50)
        train_dynamics(args.data, args.tokenizer, run, "deterministic", "small", tc, device=args.device)
    model = WorldModel.load(run, device=args.device)
    data = EpisodeDataset(args.data)
    _, held = split_episodes(len(data))
    r = camera_swap(model, args.data, held[: args.eval_episodes])
    print(f"\nHeld-out Push start states under a new camera pose B ({r['episodes']} episodes, "
          f"{model.info.get('steps')} training steps); PSNR (dB) against physics at B")
    print(f"{'camera input':>22} " + " ".join(f"{'h=' + str(h):>7}" for h in r["horizons"]))
    for name, label in (("matched", "B (the true pose)"), ("held", "A (the recorded pose)")):
        print(f"{label:>22} " + " ".join(f"{r[name][h]:>7.2f}" for h in r["horizons"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    camera = data.manifest.get("collection", {}).get("camera")
    out.write_text(json.dumps(
        {"benchmark": "camera", "args": vars(args), "data_camera": camera, "result": r, "model_info": model.info,
         "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__}},
        indent=1, default=str) + "\n")
    print(f"wrote {out}")


def views(args) -> None:
    import time

    from cosmos_sim.evaluation import views as measures
    from cosmos_sim.video import save_png
    from cosmos_sim.world_model import WorldModel
    from cosmos_sim.zoo import pretrained_path

    path = pretrained_path(args.world) if args.views == "pretrained" else args.views
    model = WorldModel.load(path, device=args.device)
    cfg = measures.ViewConfig(episodes=args.episodes)
    t = time.perf_counter()
    examples: list = []
    nv = measures.novel_view(model, args.world, cfg, progress=True, examples=examples)
    follow = measures.camera_following(model, args.world, cfg, progress=True)
    consistency = None
    if args.world.lower() in OBJECT_COLOURS:  # the object read from each of two views (colour, centre height)
        colour, height = OBJECT_COLOURS[args.world.lower()]
        consistency = measures.view_consistency(model, args.world, colour, height, cfg, progress=True)
    seconds = time.perf_counter() - t
    name = args.name or ("pretrained_" + args.world if args.views == "pretrained" else Path(args.views).name)
    picture = save_png(ROOT / "results" / f"camera_views_{name}.png",
                       measures.novel_view_grid(examples))
    print(f"\n{args.views}: trained cameras {nv['coverage']}; PSNR dB against physics, {args.episodes} episodes")
    print(f"{'':>34} " + " ".join(f"{'h=' + str(h):>7}" for h in cfg.horizons))
    for label, row in (("same pose (context at B, told B)", nv["same"]), ("novel view (context at A, told B)",
                                                                            nv["novel"]),
                       ("camera following (moving path)", follow["following"])):
        print(f"{label:>34} " + " ".join(f"{row[str(h)]:>7.2f}" for h in cfg.horizons))
    if consistency is not None:
        for label, row in (("two views apart, learned (cm)", consistency["learned"]),
                           ("two views apart, physics (cm)", consistency["physics"])):
            print(f"{label:>34} " + " ".join(f"{row[str(h)]:>7.2f}" for h in cfg.horizons))
    out = ROOT / "results" / f"camera_views_{name}.json"
    out.write_text(json.dumps(
        {"benchmark": "camera_views", "model": str(args.views), "world": args.world, "novel_view": nv,
         "camera_following": follow, "view_consistency": consistency, "seconds": seconds, "model_info": model.info,
         "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__}},
        indent=1, default=str) + "\n")
    print(f"wrote {out} and {picture} (context at A; physics and learned at B, h = 1 and {cfg.horizon})")


if __name__ == "__main__":
    main()
