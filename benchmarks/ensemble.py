"""What an ensemble state model costs, and what it predicts, against one member.

    python benchmarks/ensemble.py                          # CPU: N = 256, K = 1, 3, 5
    python benchmarks/ensemble.py --device cuda --sizes 256,4096
    python benchmarks/ensemble.py --accuracy               # K = 5 vs one MLP, trained on the same Push states

Accuracy (`--accuracy`): the single MLP and a 5-member ensemble fit on the same state-only Push episodes
(the `mix` collection policy, expert skill 0..1, as the datasets are collected; `--train-episodes`), the
same number of updates; scored on held-out episodes by the block's position error after 1, 4 and 16 steps
of the model's own rollout, and by the members' disagreement on held-out steps against random actions
from random states (off the data). Writes benchmarks/results/ensemble_accuracy.json.

Cost:
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
    ap.add_argument("--accuracy", action="store_true", help="measure accuracy instead of cost")
    ap.add_argument("--train-episodes", type=int, default=1000)
    ap.add_argument("--state-steps", type=int, default=4000)
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    import cosmos_sim  # noqa: F401
    if args.accuracy:
        return accuracy(args)
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


def accuracy(args) -> None:
    from cosmos_sim.data.collect import CollectConfig, collect_states
    from cosmos_sim.dynamics.train import fit_state_model, state_cache, state_windows, step_frames
    from cosmos_sim.world_model import StateHead, WorldModel
    from cosmos_sim.worlds import get_world
    from cosmos_sim.zoo import pretrained_path

    world = get_world("push")
    base = WorldModel.load(pretrained_path("push"))
    held = 200
    cfg = CollectConfig(world="push", policy="mix", skill=(0.0, 1.0), episodes=args.train_episodes + held,
                        base_seed=7_000_000)
    t0 = time.perf_counter()
    states, actions = collect_states(cfg, progress=True)
    print(f"collected {len(states)} episodes in {time.perf_counter() - t0:.0f} s", flush=True)

    def cache(eps):
        s = base.normalize_state(torch.from_numpy(np.concatenate([states[e] for e in eps])))
        return state_cache(s, torch.from_numpy(np.concatenate([actions[e] for e in eps])),
                           [len(actions[e]) for e in eps])

    train, test = cache(range(args.train_episodes)), cache(range(args.train_episodes, len(states)))
    steps_idx = step_frames(train, list(range(args.train_episodes)))
    delta_scale = (train["states"][steps_idx + 1] - train["states"][steps_idx]).std(0).clamp_min(1e-4)
    windows = state_windows(train, list(range(args.train_episodes)), 6)
    test16 = state_windows(test, list(range(held)), 16)
    block = list(range(*world.state_layout.slice("block_pos").indices(world.state_dim)))[:2]
    c = base.state_head.config
    rows = []
    for k in (1, 5):
        torch.manual_seed(0)
        head = StateHead(c["latent_channels"], c["latent_size"], c["state_dim"], c["action_dim"], c["width"],
                         c["hidden"], members=k)
        head.delta_scale.copy_(delta_scale)
        t0 = time.perf_counter()
        fit_state_model(head, windows, args.state_steps, progress=True)
        fit_s = time.perf_counter() - t0
        head.eval()
        with torch.no_grad():
            s, errs = test16["start"], {}
            for j in range(16):
                s = head(s, test16["actions"][:, j])
                if j + 1 in (1, 4, 16):
                    pred, true = base.denormalize_state(s), base.denormalize_state(test16["next"][:, j])
                    errs[j + 1] = float(100 * (pred[:, block] - true[:, block]).norm(dim=-1).mean())
            row = {"members": k, "fit_seconds": round(fit_s, 1), "block_err_cm": errs,
                   "parameters": sum(p.numel() for p in head.simulator_parameters())}
            if k > 1:
                on = head.forward_members(test16["start"], test16["actions"][:, 0]).std(0).mean(-1)
                g = torch.Generator().manual_seed(1)
                off_s = test16["start"][torch.randperm(len(test16["start"]), generator=g)] + torch.randn(
                    test16["start"].shape, generator=g)
                off = head.forward_members(off_s, torch.rand(test16["actions"][:, 0].shape, generator=g) * 2 - 1)
                row |= {"uncertainty_held_out": float(on.mean()), "uncertainty_off_data": float(off.std(0).mean())}
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "ensemble_accuracy.json"
    out.write_text(json.dumps({"benchmark": "ensemble_accuracy", "args": vars(args), "rows": rows,
                               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                           "torch": torch.__version__}}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
