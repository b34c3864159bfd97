"""What an ensemble state model costs: a learned vector env with K members against one member.

    python benchmarks/ensemble.py                          # CPU: N = 256, K = 1, 3, 5
    python benchmarks/ensemble.py --device cuda --sizes 256,4096

The shipped Push model with its state model replaced by K-member ensembles of the same size (random
members: the cost depends on the architecture, not the weights), `obs_mode="state"` (the state model
alone, where an ensemble's cost shows most), steps/s over the whole batch. Writes
benchmarks/results/ensemble_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"


def with_members(model, members: int):
    from cosmos_sim.world_model import StateHead

    c = model.state_head.config
    return model.with_state_head(StateHead(c["latent_channels"], c["latent_size"], c["state_dim"], c["action_dim"],
                                           width=c["width"], hidden=c["hidden"], members=members))


def steps_per_second(model, n: int, device: str, steps: int) -> float:
    import gymnasium as gym

    envs = gym.make_vec("cosmos_sim/Push-v0", num_envs=n, backend="world_model", model=model, obs_mode="state",
                        device=device, array_type="torch")
    envs.reset(seed=0)
    a = torch.zeros(n, 2, device=device)
    for _ in range(5):
        envs.step(a)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        envs.step(a)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    envs.close()
    return n * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", default="256", help="comma-separated numbers of envs")
    ap.add_argument("--members", default="1,3,5")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    import cosmos_sim  # noqa: F401
    from cosmos_sim.world_model import WorldModel
    from cosmos_sim.zoo import pretrained_path

    base = WorldModel.load(pretrained_path("push"), device=args.device)
    rows = []
    for n in map(int, args.sizes.split(",")):
        ref = None
        for k in map(int, args.members.split(",")):
            model = base if k == 1 else with_members(base.cpu(), k).to(args.device)
            sps = float(np.median([steps_per_second(model, n, args.device, args.steps) for _ in range(3)]))
            ref = ref or sps
            rows.append({"num_envs": n, "members": k, "steps_per_s": round(sps), "cost_vs_one": round(ref / sps, 2)})
            print(f"N={n:5d} K={k}: {sps:10.0f} steps/s  ({ref / sps:.2f}x the cost of one member)", flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ensemble_{args.device.split(':')[0]}.json"
    out.write_text(json.dumps({"benchmark": "ensemble", "args": vars(args), "rows": rows,
                               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                           "torch": torch.__version__}}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
