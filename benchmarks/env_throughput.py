"""Env throughput: physics backends against the learned world, 64x64 frames, obs_mode="both".

    python benchmarks/env_throughput.py                    # CPU: N = 1, 16, 64, 256
    python benchmarks/env_throughput.py --quick            # smoke run
    python benchmarks/env_throughput.py --device cuda --sizes 1,64,256,1024,4096

Physics: one process (a single env), and gym.make_vec(vectorization_mode="async") with 2 processes.
Learned world: WorldModelVectorEnv at each N, one batched forward pass per step, autoresets included.
World models come from `--runs` (benchmarks/.runs/dynamics_<family>, written by benchmarks/dynamics.py)
when present; otherwise the same architecture with untrained weights (throughput depends on the
architecture, not on the weights; the table says which). Writes benchmarks/results/env_throughput.json.
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

ROOT = Path(__file__).parent
RESULTS = ROOT / "results"
FAMILIES = {"deterministic": "cv8", "diffusion": "cv8", "autoregressive": "dv8"}


def physics_rate(backend: str, seconds: float) -> float:
    import gymnasium as gym

    env = gym.make("cosmos_sim/Push-v0", backend=backend, obs_mode="both")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        n += 1
        if term or trunc:
            env.reset()
    rate = n / (time.perf_counter() - t0)
    env.close()
    return rate


def physics_async_rate(backend: str, seconds: float, processes: int = 2) -> float:
    import gymnasium as gym

    env = gym.make_vec("cosmos_sim/Push-v0", num_envs=processes, vectorization_mode="async", backend=backend,
                       obs_mode="both")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        env.step(rng.uniform(-1, 1, (processes, 2)).astype(np.float32))
        n += processes
    rate = n / (time.perf_counter() - t0)
    env.close()
    return rate


def world_model(family: str, runs: Path, device: str, demo: Path | None = None):
    """(WorldModel, "trained"|"untrained") for a family's small preset (deterministic: the demo's model)."""
    from cosmos_sim.dynamics import build_dynamics
    from cosmos_sim.dynamics.train import dynamics_config
    from cosmos_sim.errors import CheckpointError
    from cosmos_sim.tokenizer import CausalVideoTokenizer, preset
    from cosmos_sim.world_model import StateHead, WorldModel
    from cosmos_sim.worlds import get_world

    path = runs / f"dynamics_{family}" / "world_model.safetensors"
    if family == "deterministic" and demo is not None and (demo / "world_model.safetensors").is_file():
        path = demo / "world_model.safetensors"
    if path.is_file():
        try:
            return WorldModel.load(path, device=device), "trained"
        except CheckpointError as e:  # a file from an older layout: measure the architecture instead
            print(f"{path}: {e}; using untrained weights")
    world = get_world("push")
    torch.manual_seed(0)
    tok = CausalVideoTokenizer(preset(FAMILIES[family]))
    cfg = dynamics_config(family, "small", tok, world.action_dim + world.state_dim)
    dyn = build_dynamics(family, cfg)
    D = tok.config.latent_dim
    head = StateHead(D, tok.config.latent_size, world.state_dim, world.action_dim)
    S = world.state_dim
    stats = {"latent_mean": torch.zeros(D, 1, 1), "latent_std": torch.ones(D, 1, 1),
             "state_mean": torch.zeros(S), "state_std": torch.full((S,), 1e-3)}  # states stay near 0: no resets
    model = WorldModel(tok, dyn, head, world=world.name, state_layout=[list(e) for e in world.state_layout.entries],
                       action_names=list(world.action_names), **stats)
    return model.to(device), "untrained"


def learned_rate(model, N: int, seconds: float, device: str, min_steps: int = 5, obs_mode: str = "both"
                 ) -> tuple[float, float]:
    """(env steps/s, ms per batched step) over at least `seconds` and `min_steps` steps."""
    from cosmos_sim.envs.world_model_env import LearnedEnvConfig, WorldModelVectorEnv

    env = WorldModelVectorEnv(LearnedEnvConfig(world="push", model=model, obs_mode=obs_mode, device=device,
                                               array_type="torch" if device == "cuda" else "numpy"), num_envs=N)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = [rng.uniform(-1, 1, (N, 2)).astype(np.float32) for _ in range(8)]
    for i in range(2):  # warm-up
        env.step(acts[i])
    n, t0 = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - t0 < seconds:
        env.step(acts[n % 8])
        n += 1
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    env.close()
    return N * n / dt, dt / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,16,64,256", help="numbers of learned envs")
    ap.add_argument("--families", default="deterministic,diffusion,autoregressive")
    ap.add_argument("--seconds", type=float, default=4.0, help="time per measurement")
    ap.add_argument("--runs", default=str(ROOT / ".runs"), help="where trained dynamics runs live")
    ap.add_argument("--demo", default="demo_out", help="`cosmos-sim demo --train` output (deterministic)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--no-physics", action="store_true")
    ap.add_argument("--physics", default="mujoco,pybullet", help="physics backends to time")
    ap.add_argument("--obs-modes", default="both", help="learned-world observation modes to time, e.g. both,state "
                    "(state skips the latent dynamics and decoding)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    import cosmos_sim  # noqa: F401  (registers the ids)

    if args.quick:
        args.sizes, args.seconds = "1,4", 0.3
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    if not args.no_physics:
        for backend in args.physics.split(","):
            rows.append({"backend": backend, "mode": "1 process", "N": 1,
                         "steps_per_s": physics_rate(backend, args.seconds)})
            rows.append({"backend": backend, "mode": "async x2", "N": 2,
                         "steps_per_s": physics_async_rate(backend, args.seconds)})
            print(f"{backend}: {rows[-2]['steps_per_s']:.0f} steps/s, async x2 {rows[-1]['steps_per_s']:.0f}",
                  flush=True)
    for family in args.families.split(","):
        model, weights = world_model(family, Path(args.runs), args.device, Path(args.demo))
        params = sum(p.numel() for p in model.dynamics.parameters())
        for obs_mode in args.obs_modes.split(","):
            if obs_mode == "state" and family != args.families.split(",")[0]:
                continue  # state-only steps skip the family's network: time them once
            for N in sizes:
                rate, ms = learned_rate(model, N, args.seconds, args.device, obs_mode=obs_mode)
                rows.append({"backend": "world_model", "family": family if obs_mode != "state" else "state head",
                             "weights": weights, "mode": args.device, "obs_mode": obs_mode, "N": N,
                             "steps_per_s": rate, "ms_per_batch_step": ms, "dynamics_parameters": params})
                print(f"world_model {family:>14} {obs_mode:>6} N={N:<5} {rate:>9.0f} steps/s  ({ms:.1f} ms per "
                      "batched step)", flush=True)
    mujoco = next((r["steps_per_s"] for r in rows if r["backend"] == "mujoco" and r["N"] == 1), None)
    print(f"\nEnv steps/s, Push, 64x64, device {args.device} ({os.cpu_count()} CPUs)")
    print(f"{'backend':>12} {'model':>15} {'mode':>10} {'obs':>6} {'N':>6} {'steps/s':>10} {'vs mujoco':>10}")
    for r in rows:
        rel = f"{r['steps_per_s'] / mujoco:.2f}x" if mujoco else ""
        print(f"{r['backend']:>12} {r.get('family', '') + ('*' if r.get('weights') == 'untrained' else ''):>15} "
              f"{r['mode']:>10} {r.get('obs_mode', 'both'):>6} {r['N']:>6} {r['steps_per_s']:>10.0f} {rel:>10}")
    if any(r.get("weights") == "untrained" for r in rows):
        print("* untrained weights of the same architecture (no run found under --runs)")
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "env_throughput", "args": vars(args), "rows": rows,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                       "threads": torch.get_num_threads(),
                       "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}}
    name = "env_throughput_quick.json" if args.quick else f"env_throughput_{args.device}.json"
    (RESULTS / name).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS / name}")


if __name__ == "__main__":
    main()
