"""Data pipeline throughput: collection frames/s, training-window loading, reader memory.

    python benchmarks/data_throughput.py            # full run (writes a 2 GB synthetic dataset to a temp dir)
    python benchmarks/data_throughput.py --quick    # smaller sizes, for a smoke run

Prints a table and writes benchmarks/results/data_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def bench_collection(root: Path, episodes: int, workers: int) -> dict:
    from cosmos_sim.data import CollectConfig, collect

    out = root / f"collect_w{workers}"
    cfg = CollectConfig(world="push", policy="mix", skill=(0.3, 1.0), episodes=episodes, workers=workers)
    t = time.perf_counter()
    manifest = collect(cfg, out, progress=False)
    dt = time.perf_counter() - t
    frames = sum(s["frames"] for s in manifest["shards"])
    return {"workers": workers, "episodes": episodes, "frames": frames, "seconds": dt, "frames_per_s": frames / dt,
            "dir": str(out)}


def bench_windows(directory: str, batch: int, workers: int, seconds: float) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from cosmos_sim.data import WindowDataset

    ds = WindowDataset(directory, context=2, horizon=1)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))
    n, t0, started = 0, None, time.perf_counter()
    while True:
        for b in loader:
            if t0 is None:  # first batch: workers are up
                t0 = time.perf_counter()
                continue
            n += b["frames"].shape[0]
            if time.perf_counter() - t0 > seconds:
                dt = time.perf_counter() - t0
                return {"loader_workers": workers, "batch": batch, "windows": n, "seconds": dt,
                        "windows_per_s": n / dt, "startup_s": t0 - started}


def write_synthetic(root: Path, gigabytes: float) -> Path:
    """A dataset of random 64x64 frames written through the real shard writer."""
    from cosmos_sim.data import EpisodeSpec
    from cosmos_sim.data.shards import write_manifest, write_shard

    root.mkdir(parents=True, exist_ok=True)
    spec = EpisodeSpec(image_size=(64, 64), action_dim=2, state_dim=12)
    T, per_shard = 100, 50
    ep_bytes = (T + 1) * 64 * 64 * 3
    n_eps = int(np.ceil(gigabytes * 1e9 / ep_bytes))
    rng = np.random.default_rng(0)
    manifest = {"format": "cosmos_sim.dataset", "version": 1, "world": "Push", "world_hash": "synthetic",
                "image_size": [64, 64], "action_dim": 2, "state_dim": 12, "shards": []}
    base = rng.integers(0, 256, (T + 1, 64, 64, 3), dtype=np.uint8)
    for s in range(0, n_eps, per_shard):
        eps = []
        for i in range(s, min(s + per_shard, n_eps)):
            eps.append({
                "pixels": np.roll(base, i, axis=2), "states": np.full((T + 1, 12), i, np.float32),
                "extrinsics": np.tile(np.eye(4, dtype=np.float32), (T + 1, 1, 1)),
                "fovy": np.full(T + 1, 45, np.float32), "actions": np.zeros((T, 2), np.float32),
                "rewards": np.zeros(T, np.float32), "terminated": np.zeros(T, np.uint8),
                "truncated": np.zeros(T, np.uint8),
                "metadata": {"world": "Push", "backend": "synthetic", "seed": i, "policy": "none",
                             "image_size": [64, 64], "world_hash": "synthetic", "version": "0"}})
        manifest["shards"].append(write_shard(root, f"shard-{s:09d}-{len(eps):04d}.safetensors", eps, spec))
    write_manifest(root, manifest)
    return root


READER = """
import resource, sys, time
from cosmos_sim.data import WindowDataset
ds = WindowDataset(sys.argv[1], context=2, horizon=1, stride=3)  # stride 3: every frame read once
t = time.perf_counter()
for i in range(len(ds)):
    ds[i]
dt = time.perf_counter() - t
print(len(ds), dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_reader_memory(directory: Path) -> dict:
    size = sum(f.stat().st_size for f in directory.glob("*.safetensors"))
    out = subprocess.run([sys.executable, "-c", READER, str(directory)], capture_output=True, text=True, check=True)
    n, dt, maxrss_kb = out.stdout.split()
    return {"dataset_bytes": size, "windows_read": int(n), "seconds": float(dt),
            "bytes_read_per_s": size / float(dt), "reader_peak_rss_bytes": int(maxrss_kb) * 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--episodes", type=int, default=None, help="episodes per collection run")
    ap.add_argument("--gigabytes", type=float, default=None, help="size of the synthetic dataset for the RSS check")
    ap.add_argument("--workdir", default=None, help="where to write datasets (default: a temp dir, removed)")
    args = ap.parse_args()
    episodes = args.episodes or (8 if args.quick else 60)
    gigabytes = args.gigabytes or (0.2 if args.quick else 2.1)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="cosmos_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        collection = [bench_collection(root, episodes, w) for w in (1, 2)]
        windows = [bench_windows(collection[1]["dir"], 64, w, 4.0 if args.quick else 10.0) for w in (0, 1, 2)]
        t = time.perf_counter()
        synth = write_synthetic(root / "synthetic", gigabytes)
        write_s = time.perf_counter() - t
        memory = bench_reader_memory(synth) | {"write_seconds": write_s}
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    print("\nCollection (Push, mix policy, 64x64, MuJoCo)")
    print(f"{'workers':>8} {'episodes':>9} {'frames':>8} {'seconds':>8} {'frames/s':>9}")
    for r in collection:
        print(f"{r['workers']:>8} {r['episodes']:>9} {r['frames']:>8} {r['seconds']:>8.1f} {r['frames_per_s']:>9.0f}")
    print("\nTraining windows (K=2, H=1, 64x64, batch 64, shuffled DataLoader)")
    print(f"{'loader workers':>15} {'windows/s':>10}")
    for r in windows:
        print(f"{r['loader_workers']:>15} {r['windows_per_s']:>10.0f}")
    print(f"\nReader memory: {memory['dataset_bytes'] / 1e9:.2f} GB read in {memory['seconds']:.1f} s "
          f"({memory['bytes_read_per_s'] / 1e6:.0f} MB/s), peak RSS {memory['reader_peak_rss_bytes'] / 2**20:.0f} MiB")
    RESULTS.mkdir(exist_ok=True)
    result = {"benchmark": "data_throughput", "config": vars(args) | {"episodes": episodes, "gigabytes": gigabytes},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "collection": [{k: v for k, v in r.items() if k != "dir"} for r in collection],
              "windows": windows, "reader_memory": memory,
              "parent_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    (RESULTS / "data_throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {RESULTS / 'data_throughput.json'}")


if __name__ == "__main__":
    main()
