"""CUDA paths, checked on a GPU machine (tests never need one): training, rollouts, envs, determinism.

    python benchmarks/cuda_check.py --model demo_out

1. Collect 6 tiny Push episodes, train a tiny tokenizer and each dynamics family for a few steps
   on CUDA; each writes a WorldModel that loads back.
2. The `--model` world model on CUDA against the same model on CPU: same states and (nearly) the
   same frames from the same start and actions.
3. `WorldModelVectorEnv(device=dev, array_type="torch")`: same seed => identical observations,
   tensors stay on the GPU; Gymnasium's check_env on a CUDA WorldModelEnv.
4. Diffusion and autoregressive sampling on CUDA: same generator seed => identical samples.
Prints PASS/FAIL per check and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str):
    def wrap(fn):
        t = time.perf_counter()
        try:
            detail = fn() or ""
            RESULTS.append((name, True, detail))
        except Exception as e:  # noqa: BLE001  (report every check, then fail at the end)
            traceback.print_exc()
            RESULTS.append((name, False, f"{type(e).__name__}: {e}"))
        ok, detail = RESULTS[-1][1], RESULTS[-1][2]
        print(f"{'PASS' if ok else 'FAIL'} {name} ({time.perf_counter() - t:.1f} s) {detail}", flush=True)
        return fn

    return wrap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo_out")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script where there is no GPU")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        sys.exit("cuda_check: no CUDA device (--device cpu for a dry run)")
    import gymnasium as gym

    import cosmos_sim  # noqa: F401
    from cosmos_sim.data import CollectConfig, EpisodeDataset, collect
    from cosmos_sim.dynamics.train import train_dynamics
    from cosmos_sim.envs.world_model_env import LearnedEnvConfig, WorldModelEnv, WorldModelVectorEnv
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.training import TrainConfig
    from cosmos_sim.world_model import WorldModel

    print(torch.cuda.get_device_name() if dev == "cuda" else "cpu", torch.__version__, flush=True)
    tmp = Path(tempfile.mkdtemp())

    @check("train tokenizer + 3 dynamics families on cuda, export, reload")
    def _train():
        collect(CollectConfig(world="push", policy="mix", skill=(0.3, 1.0), image_size=32, episodes=6),
                tmp / "data", progress=False)
        train_tokenizer(tmp / "data", tmp / "tok", preset("tiny", 32), TrainConfig(steps=20, batch_size=4),
                        progress=False, device=dev)
        train_tokenizer(tmp / "data", tmp / "tokd", preset("tiny-dv", 32), TrainConfig(steps=20, batch_size=4),
                        progress=False, device=dev)
        out = []
        for fam in ("deterministic", "diffusion", "autoregressive"):
            tok = tmp / ("tokd" if fam == "autoregressive" else "tok")
            r = train_dynamics(tmp / "data", tok, tmp / fam, fam, "tiny",
                               TrainConfig(steps=20, batch_size=8, warmup_steps=2), progress=False, device=dev)
            m = WorldModel.load(r["world_model"], device=dev)
            out.append(f"{fam} {r['step']} steps")
            assert m.device.type == dev
        return ", ".join(out)

    model_cpu = WorldModel.load(args.model)
    model = WorldModel.load(args.model, device=dev)

    @check("world model: cuda rollout matches cpu")
    def _match():
        ds_frames = torch.zeros(2, 1, model.image_size, model.image_size, 3, dtype=torch.uint8)
        env = gym.make("cosmos_sim/Push-v0", obs_mode="both", image_size=model.image_size)
        states = []
        for i in range(2):
            obs, info = env.reset(seed=i)
            ds_frames[i, 0] = torch.from_numpy(obs["pixels"])
            states.append(obs["state"])
        cam = info["camera"]
        ext = torch.from_numpy(np.stack([cam.extrinsics()] * 2).astype(np.float32))[:, None]
        fov = torch.full((2, 1), cam.fovy)
        st = torch.from_numpy(np.stack(states))
        acts = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (8, 2, 2)).astype(np.float32))
        a = model_cpu.start(ds_frames, ext, fov, states=st)
        b = model.start(ds_frames, ext, fov, states=st)
        worst_px, worst_s = 0.0, 0.0
        for t in range(8):
            fa, sa = model_cpu.step(a, acts[t], ext[:, 0], fov[:, 0])
            fb, sb = model.step(b, acts[t], ext[:, 0], fov[:, 0])
            worst_px = max(worst_px, (fa.float() - fb.cpu().float()).abs().mean().item())
            worst_s = max(worst_s, (sa - sb.cpu()).abs().max().item())
        assert worst_px < 1.0 and worst_s < 1e-3, (worst_px, worst_s)
        return f"mean |frame diff| <= {worst_px:.3f} levels, max |state diff| {worst_s:.2e}"

    @check("vector env on cuda: same seed => same obs, tensors on device")
    def _vec():
        outs = []
        for _ in range(2):
            env = WorldModelVectorEnv(LearnedEnvConfig(world="push", model=model, obs_mode="both", device=dev,
                                                       array_type="torch"), num_envs=16)
            obs, _ = env.reset(seed=3)
            g = torch.Generator(device=dev).manual_seed(0)
            for _ in range(120):  # past the 100-step limit: autoresets included
                act = torch.rand(16, 2, device=dev, generator=g) * 2 - 1
                obs, r, term, trunc, _ = env.step(act)
            assert obs["pixels"].device.type == dev and r.device.type == dev
            outs.append((obs["pixels"].clone(), obs["state"].clone()))
            env.close()
        assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])

    @check("gymnasium check_env on a cuda WorldModelEnv")
    def _check_env():
        from gymnasium.utils.env_checker import check_env

        check_env(WorldModelEnv(LearnedEnvConfig(world="push", model=model, obs_mode="both", device=dev)),
                  skip_render_check=True)

    @check("diffusion / autoregressive sampling on cuda: same seed => same sample")
    def _sampling():
        out = []
        for fam in ("diffusion", "autoregressive"):
            m = WorldModel.load(tmp / fam, device=dev)
            ep = EpisodeDataset(tmp / "data")[0]
            px = torch.from_numpy(ep["pixels"][None, :1])
            ext, fov = torch.from_numpy(ep["extrinsics"][None, :2]), torch.from_numpy(ep["fovy"][None, :2])
            frames = []
            for _ in range(2):
                st = m.start(px, ext[:, :1], fov[:, :1])
                g = torch.Generator(device=dev).manual_seed(7)
                f, _ = m.step(st, torch.from_numpy(ep["actions"][None, 0]), ext[:, 1], fov[:, 1], generator=g,
                              sampling=m.sampling_options(temperature=1.0) if fam == "autoregressive" else None)
                frames.append(f)
            assert torch.equal(frames[0], frames[1])
            out.append(fam)
        return ", ".join(out)

    failed = [n for n, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} {dev} checks passed"
          + (f"; failed: {failed}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
