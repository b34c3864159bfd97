"""Encode a dataset once with a frozen tokenizer, then train dynamics on latent windows.

Dynamics training never touches pixels: every frame's latent, its camera's Plücker rays at
latent resolution, and the states and actions are cached in one safetensors file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from cosmos_sim.camera import plucker_from_extrinsics
from cosmos_sim.data import EpisodeDataset
from cosmos_sim.errors import DatasetError
from cosmos_sim.fileio import atomic_write_bytes
from cosmos_sim.tokenizer.model import pixels_to_unit


@torch.no_grad()
def build_latent_cache(data_dir: str | os.PathLike, tokenizer, path: str | os.PathLike,
                       device: str | torch.device = "cpu", progress: bool = True) -> dict[str, torch.Tensor]:
    """Encode every episode (whole, causally) and save latents, rays, actions and states. With V camera views,
    each view of an episode is encoded as its own sequence: cache episode e * V + v is episode e's view v."""
    from tqdm.auto import tqdm

    ds = EpisodeDataset(data_dir)
    tok = tokenizer.to(device).eval()
    if tok.config.temporal != 1:
        raise DatasetError("dynamics need one latent per control step: use a tokenizer with temporal=1")
    h = tok.config.latent_size
    V = ds.spec.views
    lat, ray, act, st, fo, so, seeds = [], [], [], [], [0], [0], []
    for i in tqdm(range(len(ds)), desc="encode latents", disable=not progress):
        ep = ds[i]
        for v in range(V):
            px, ext, fov = ((ep["pixels"][:, v], ep["extrinsics"][:, v], ep["fovy"][:, v]) if V > 1
                            else (ep["pixels"], ep["extrinsics"], ep["fovy"]))
            x = pixels_to_unit(torch.from_numpy(np.ascontiguousarray(px)).to(device).permute(0, 3, 1, 2)[None])
            lat.append(tok.encode(x)[0].float().cpu())
            ray.append(plucker_from_extrinsics(np.ascontiguousarray(ext), np.ascontiguousarray(fov), h))
            act.append(torch.from_numpy(ep["actions"]))
            st.append(torch.from_numpy(ep["states"]))
            fo.append(fo[-1] + len(ep["states"]))
            so.append(so[-1] + len(ep["actions"]))
            seeds.append(int(ep["metadata"]["seed"]))
    tensors = {"latents": torch.cat(lat), "plucker": torch.cat(ray), "actions": torch.cat(act),
               "states": torch.cat(st), "frame_offsets": torch.tensor(fo), "step_offsets": torch.tensor(so),
               "seeds": torch.tensor(seeds), "views": torch.tensor(V)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, save(tensors, metadata={"world": ds.world}))
    return tensors


def sequences(cache: dict[str, torch.Tensor], episodes: list[int], views: str = "all") -> list[int]:
    """The cache's sequences of dataset episodes `episodes`: every view's ("all"), or one per episode ("first":
    for what the views share, states and actions)."""
    V = int(cache["views"]) if "views" in cache else 1
    return [e * V + v for e in episodes for v in (range(V) if views == "all" else range(1))]


def cache_key(data_dir: str | os.PathLike, tokenizer_path: str | os.PathLike) -> str:
    h = hashlib.sha256((Path(data_dir) / "manifest.json").read_bytes())
    h.update(Path(tokenizer_path).read_bytes()[:1 << 20])
    h.update(str(Path(tokenizer_path).stat().st_size).encode())
    return h.hexdigest()[:16]


def load_or_build_cache(data_dir, tokenizer, tokenizer_path, cache_dir, device="cpu", progress=True):
    path = Path(cache_dir) / f"latents-{cache_key(data_dir, tokenizer_path)}.safetensors"
    if path.is_file():
        return load_file(path)
    return build_latent_cache(data_dir, tokenizer, path, device, progress)


class LatentWindows(torch.utils.data.Dataset):
    """Windows of `context + horizon` consecutive latents (see cosmos_sim.dynamics.base).

    Episode starts are included the way an env starts a rollout: the first frame repeated to fill
    the context (with zero actions between the copies), so `WorldModel.start` from one frame is
    in distribution.

    `cross_view` (a cache of several camera views): each window also comes with its targets from the other
    views of the same steps, after context frames from one view, so the dynamics learns to render the
    state from the pose it is told (its Plücker rays), not from the context's viewpoint.
    """

    def __init__(self, cache: dict[str, torch.Tensor], context: int, horizon: int, episodes: list[int] | None = None,
                 cross_view: bool = False):
        self.c, self.context, self.length = cache, context, context + horizon
        fo = cache["frame_offsets"].tolist()
        so = cache["step_offsets"].tolist()
        eps = list(range(len(fo) - 1) if episodes is None else episodes)
        V = int(cache["views"]) if "views" in cache else 1
        if cross_view and V < 2:
            raise DatasetError("cross_view training needs a dataset of several camera views (collect --views N)")
        # frame offset from a sequence to each sequence of the same episode (the views' targets)
        shifts = {e: [0] + ([fo[e - e % V + w] - fo[e] for w in range(V) if w != e % V] if cross_view else [])
                  for e in eps}
        L = self.length
        self.index = [(fo[e], so[e], pad, d) for e in eps for pad in range(context - 1, 0, -1)
                      if fo[e + 1] - fo[e] >= L - pad for d in shifts[e]]
        self.index += [(fo[e] + s, so[e] + s, 0, d) for e in eps for s in range(fo[e + 1] - fo[e] - L + 1)
                       for d in shifts[e]]
        if not self.index:
            raise DatasetError(f"no episode has {self.length} frames for a window")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        f, s, pad, d = self.index[i]
        n = self.length - pad

        def frames(key):
            x = self.c[key][f:f + n]
            if d:  # context from this view, targets from another view of the same steps
                k = self.context - pad
                x = torch.cat([x[:k], self.c[key][f + d + k:f + d + n]])
            return torch.cat([x[:1].expand(pad, *x.shape[1:]), x]) if pad else x

        actions = self.c["actions"][s:s + n - 1]
        if pad:
            actions = torch.cat([actions.new_zeros(pad, actions.shape[1]), actions])
        return {"latents": frames("latents"), "plucker": frames("plucker"), "states": frames("states"),
                "actions": actions}


def describe(cache: dict[str, torch.Tensor]) -> str:
    return json.dumps({k: list(v.shape) for k, v in cache.items()})
