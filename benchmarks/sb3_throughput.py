"""SB3 PPO's env steps per second on the learned world: N single envs (SB3's DummyVecEnv) against one
batched vector env behind `cosmos_sim.envs.sb3.SB3VecEnv`.

    python benchmarks/sb3_throughput.py                      # Push's shipped model, N = 64, CPU
    python benchmarks/sb3_throughput.py --obs-mode both --num-envs 64 --device cuda

Counts PPO's whole loop (rollouts and updates) over `--steps` env steps after a warm-up; prints a table and
writes benchmarks/results/sb3_throughput_<device>_<obs mode>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def rate(make_venv, steps: int, n_steps: int) -> float:
    from stable_baselines3 import PPO

    venv = make_venv()
    policy = {"Box": "MlpPolicy" if len(venv.observation_space.shape) == 1 else "CnnPolicy"}.get(
        type(venv.observation_space).__name__, "MultiInputPolicy")  # obs_mode state / pixels / both
    model = PPO(policy, venv, n_steps=n_steps, batch_size=256, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=venv.num_envs * n_steps)  # warm-up: first resets, allocations
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, reset_num_timesteps=False)
    dt = time.perf_counter() - t0
    venv.close()
    return steps / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", default="push")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--obs-mode", default="state")
    p.add_argument("--steps", type=int, default=64 * 64 * 4)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import cosmos_sim
    from cosmos_sim.envs.sb3 import SB3VecEnv

    env_id = f"cosmos_sim/{cosmos_sim.get_world(args.world).name}-v0"
    kw = {"backend": "world_model", "obs_mode": args.obs_mode, "device": args.device}
    n_steps = 64
    singles = rate(lambda: DummyVecEnv([lambda: gym.make(env_id, **kw)] * args.num_envs), args.steps, n_steps)
    batched = rate(lambda: SB3VecEnv(gym.make_vec(env_id, num_envs=args.num_envs, **kw)), args.steps, n_steps)
    result = {"world": args.world, "num_envs": args.num_envs, "obs_mode": args.obs_mode, "device": args.device,
              "steps": args.steps, "single_envs_steps_per_s": singles, "batched_adapter_steps_per_s": batched,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"sb3_throughput_{args.device.split(':')[0]}_{args.obs_mode}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"| SB3 PPO on the learned {args.world}, N={args.num_envs}, obs {args.obs_mode} | steps/s |")
    print("|---|---:|")
    print(f"| {args.num_envs} single envs (DummyVecEnv) | {singles:.0f} |")
    print(f"| one batched env (SB3VecEnv) | {batched:.0f} |")


if __name__ == "__main__":
    main()
