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
              position_entry: str | None = None, zero_actions: bool = False, generator_seed: int = 0) -> dict:
    """Per-horizon mean PSNR (whole / objects), SSIM and position error for model, copy-last and ceiling."""
    ds = EpisodeDataset(data_dir)
    world = get_world(ds.world)
    entry = position_entry or (world.object_entries[0] if world.object_entries else None)
    K, T = model.context, max(horizons)
    bg = BackgroundRenderer(world, (model.image_size, model.image_size))
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
    bg.close()
    out = {"episodes": used, "horizons": list(horizons), "position_entry": entry, "zero_actions": zero_actions}
    for name, per_h in acc.items():
        out[name] = {}
        for h, rows in per_h.items():
            keys = {k for r in rows for k in r}
            out[name][h] = {k: float(np.mean([r[k] for r in rows if k in r])) for k in sorted(keys)}
    return out
