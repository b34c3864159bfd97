"""Open-loop fidelity of a WorldModel against recorded physics episodes.

From the first K true frames of each held-out episode, the model rolls out with the episode's
recorded actions and cameras; its frames and predicted states are compared with physics at each
horizon. Two references come along: copying the last context frame (the floor to beat) and the
tokenizer's own reconstruction of the true frames (the ceiling a latent model cannot pass).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from cosmos_sim.camera import CameraPose
from cosmos_sim.data import EpisodeDataset
from cosmos_sim.evaluation.masks import BackgroundRenderer
from cosmos_sim.evaluation.metrics import psnr, ssim
from cosmos_sim.tokenizer import Stream
from cosmos_sim.tokenizer.model import pixels_to_unit, unit_to_pixels
from cosmos_sim.worlds import get_world


def _unit(frames: torch.Tensor) -> torch.Tensor:  # uint8 [N, H, W, 3] -> float [N, 3, H, W] in [0, 1]
    return frames.permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def open_loop(model, data_dir: str | os.PathLike, episodes: list[int], horizons=(1, 4, 16, 32),
              position_entry: str | None = None, zero_actions: bool = False, generator_seed: int = 0,
              background: BackgroundRenderer | None = None) -> dict:
    """Per-horizon mean PSNR (whole / objects), SSIM and position error for model, copy-last and ceiling.

    `background` renders the empty scene for the object masks; by default a MuJoCo BackgroundRenderer,
    made and closed here (a caller's own stays open)."""
    ds = EpisodeDataset(data_dir)
    world = get_world(ds.world)
    entry = position_entry or (world.object_entries[0] if world.object_entries else None)
    K, T = model.context, max(horizons)
    bg = background or BackgroundRenderer(world, (model.image_size, model.image_size))
    acc: dict[str, dict[int, list]] = {}
    used = 0
    g = torch.Generator(device=model.device).manual_seed(generator_seed)
    for i in episodes:
        ep = ds[i]
        if len(ep["actions"]) < K - 1 + T:
            continue
        used += 1
        px = torch.from_numpy(ep["pixels"])
        ext, fov = torch.from_numpy(ep["extrinsics"]), torch.from_numpy(ep["fovy"])
        acts = torch.from_numpy(ep["actions"])
        if zero_actions:
            acts = torch.zeros_like(acts)
        # the rollout starts from the true state at the last context frame, as a physics reset gives it
        state = model.start(px[None, :K], ext[None, :K], fov[None, :K],
                            states=torch.from_numpy(ep["states"][K - 1])[None])
        pred_frames, pred_states = [], []
        for t in range(T):
            f, s = model.step(state, acts[None, K - 1 + t], ext[None, K + t], fov[None, K + t], generator=g)
            pred_frames.append(f[0].cpu())
            pred_states.append(s[0].cpu())
        # tokenizer ceiling: encode and decode the true frames causally
        x = pixels_to_unit(px[None].permute(0, 1, 4, 2, 3).to(model.device))
        rec = unit_to_pixels(model.tokenizer.decode(model.tokenizer.encode(x, Stream()), Stream()))
        rec = rec[0].permute(0, 2, 3, 1).cpu()
        for h in horizons:
            idx = K - 1 + h  # frame index in the episode
            truth = px[idx]
            mask = torch.from_numpy(bg.masks(ep["pixels"][idx:idx + 1], ep["extrinsics"][idx:idx + 1],
                                             ep["fovy"][idx:idx + 1]))
            for name, frame in (("model", pred_frames[h - 1]), ("copy_last", px[K - 1]), ("ceiling", rec[idx])):
                a, b = _unit(truth[None]), _unit(frame[None])
                rec_h = acc.setdefault(name, {}).setdefault(h, [])
                row = {"psnr": float(psnr(a, b)), "ssim": float(ssim(a, b))}
                if mask.any():
                    row["psnr_objects"] = float(psnr(a, b, mask=mask))
                if entry is not None:
                    L = world.state_layout
                    true_pos = L.get(ep["states"][idx], entry)[:2]
                    if name == "model":
                        p = L.get(pred_states[h - 1].numpy(), entry)[:2]
                    elif name == "copy_last":
                        p = L.get(ep["states"][K - 1], entry)[:2]
                    else:
                        p = None
                    if p is not None:
                        row["position_error_m"] = float(np.linalg.norm(p - true_pos))
                rec_h.append(row)
    if background is None:
        bg.close()
    out = {"episodes": used, "horizons": list(horizons), "position_entry": entry, "zero_actions": zero_actions}
    for name, per_h in acc.items():
        out[name] = {}
        for h, rows in per_h.items():
            keys = {k for r in rows for k in r}
            out[name][h] = {k: float(np.mean([r[k] for r in rows if k in r])) for k in sorted(keys)}
    return out


@torch.no_grad()
def camera_swap(model, data_dir: str | os.PathLike, episodes: list[int], horizons=(1, 4, 16, 32),
                seed: int = 0, min_azimuth_change: float = 20.0) -> dict:
    """Does the model use its camera input? Held-out start states under a new in-range camera pose.

    Each episode is replayed in physics (same seed => same initial state, same recorded actions)
    with the camera moved to a pose B drawn from the world's range (at least `min_azimuth_change`
    degrees of azimuth from the recorded pose A). The model starts from the frames rendered at B and
    rolls out twice: told the camera is at B (`matched`), and told it is still at A (`held`). Both
    are scored against the physics frames at B; a model that uses its camera scores higher matched.
    """
    from cosmos_sim.envs.physics_env import PhysicsEnv

    ds = EpisodeDataset(data_dir)
    world = get_world(ds.world)
    K, T, s = model.context, max(horizons), model.image_size
    rng = np.random.default_rng(seed)
    acc: dict[str, dict[int, list[float]]] = {"matched": {}, "held": {}}
    used, skipped = 0, 0
    env = PhysicsEnv(world, backend=model.info.get("backend", "mujoco"), obs_mode="both", image_size=(s, s))
    try:
        for i in episodes:
            ep = ds[i]
            if len(ep["actions"]) < K - 1 + T:
                continue
            pose_a = CameraPose.from_extrinsics(ep["extrinsics"][0], float(ep["fovy"][0]))
            pose_b = world.camera_range.sample(rng)
            while abs(pose_b.orbit_params()[0] - pose_a.orbit_params()[0]) < min_azimuth_change:
                pose_b = world.camera_range.sample(rng)
            obs, _ = env.reset(seed=int(ep["metadata"]["seed"]), options={"camera": pose_b})
            if not np.allclose(obs["state"], ep["states"][0], atol=1e-5):
                skipped += 1  # not a replayable episode (another seed scheme)
                continue
            frames = [obs["pixels"]]
            for t in range(K - 1 + T):
                obs, *_ = env.step(ep["actions"][t])
                frames.append(obs["pixels"])
            truth = torch.from_numpy(np.stack(frames))
            used += 1
            ext_b = torch.from_numpy(pose_b.extrinsics().astype(np.float32))[None]
            fov_b = torch.tensor([pose_b.fovy], dtype=torch.float32)
            ext_a = torch.from_numpy(ep["extrinsics"][:1])
            fov_a = torch.from_numpy(ep["fovy"][:1])
            acts = torch.from_numpy(ep["actions"])
            for name, (ext, fov) in (("matched", (ext_b, fov_b)), ("held", (ext_a, fov_a))):
                state = model.start(truth[None, :K], ext_b[:, None].expand(1, K, 4, 4), fov_b[:, None].expand(1, K),
                                    states=torch.from_numpy(ep["states"][K - 1])[None])
                rays = model.rays(ext, fov)
                for t in range(T):
                    f, _ = model.step(state, acts[None, K - 1 + t], rays=rays)
                    if t + 1 in horizons:
                        a, b = _unit(truth[K + t][None]), _unit(f.cpu())
                        acc[name].setdefault(t + 1, []).append(float(psnr(a, b)))
    finally:
        env.close()
    return {"episodes": used, "skipped": skipped, "horizons": list(horizons),
            **{name: {h: float(np.mean(v)) for h, v in per_h.items()} for name, per_h in acc.items()}}
