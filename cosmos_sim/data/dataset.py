"""Reading datasets: whole episodes (`EpisodeDataset`) and training windows (`WindowDataset`).

Both are map-style, so `DataLoader` workers and `DistributedSampler` work as usual. Shard readers
open lazily in each process and read only the bytes they need.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from cosmos_sim.data.schema import EpisodeSpec
from cosmos_sim.data.shards import ShardReader, read_manifest
from cosmos_sim.errors import DatasetError, DatasetMismatchError, InputError


class EpisodeDataset:
    """`ds[i]` is episode i (ordered by seed): a dict of arrays plus `"metadata"`."""

    def __init__(self, directory: str | os.PathLike, world: str | None = None, image_size=None):
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        m = self.manifest
        self.world = m["world"]
        self.spec = EpisodeSpec.from_dict(m)
        if world is not None and world.lower() != self.world.lower():
            raise DatasetMismatchError(f"{directory} holds world {self.world}, not {world}")
        if image_size is not None:
            want = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
            if tuple(want) != self.spec.image_size:
                raise DatasetMismatchError(f"{directory} holds {self.spec.image_size} images, not {tuple(want)}")
        selection = m.get("selection")  # curated views list the kept episodes per shard file
        index = []
        for s, shard in enumerate(m["shards"]):
            keep = range(shard["episodes"]) if selection is None else selection.get(shard["file"], [])
            for e in keep:
                index.append((shard["seeds"][e], s, e))
        index.sort()
        self._index = np.array([(s, e) for _, s, e in index], dtype=np.int64).reshape(-1, 2)
        self.seeds = [seed for seed, _, _ in index]
        self._readers: dict[int, ShardReader] = {}

    def __len__(self) -> int:
        return len(self._index)

    def reader(self, s: int) -> ShardReader:
        r = self._readers.get(s)
        if r is None:
            entry = self.manifest["shards"][s]
            r = ShardReader(self.directory / entry["file"], entry)
            if r.spec != self.spec:
                raise DatasetMismatchError(f"shard {entry['file']} has spec {r.spec}, manifest says {self.spec}")
            self._readers[s] = r
        return r

    def locate(self, i: int) -> tuple[ShardReader, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"episode {i} out of range for a dataset of {len(self)}")
        s, e = self._index[i]
        return self.reader(int(s)), int(e)

    def __getitem__(self, i: int) -> dict:
        r, e = self.locate(i)
        return r.episode(e)

    def num_steps(self, i: int) -> int:
        r, e = self.locate(i)
        return r.num_steps(e)

    def steps(self, i: int) -> dict[str, np.ndarray]:
        """Episode i's states [T+1, S] and per-step actions [T, A], rewards [T], terminated [T] and success
        after the step [T] (what a state model and a task head learn from; no frames), and `has_success`:
        whether the env reported success at all."""
        reader, e = self.locate(i)
        small, meta = reader.small_arrays(e), reader.metadata[e]
        T = len(small["actions"])
        return {"states": small["states"].astype(np.float32), "actions": small["actions"].astype(np.float32),
                "rewards": small["rewards"].astype(np.float32), "terminated": small["terminated"].astype(bool),
                "success": np.asarray(meta.get("step_success", [0] * T), bool),
                "has_success": np.asarray(bool(meta.get("has_success", False)))}

    def metadata(self, i: int) -> dict:
        r, e = self.locate(i)
        return dict(r.metadata[e])

    def digest(self) -> str:
        """sha256 of every episode's arrays in seed order: the same data gives the same digest however
        it was split into shards (which depends on worker scheduling) and whatever the manifest says."""
        h = hashlib.sha256()
        for i in range(len(self)):
            ep = self[i]
            h.update(str(self.seeds[i]).encode())
            for key in sorted(k for k in ep if k != "metadata"):
                h.update(key.encode())
                h.update(np.ascontiguousarray(ep[key]).tobytes())
        return h.hexdigest()

    def close(self) -> None:
        for r in self._readers.values():
            r.close()
        self._readers.clear()

    def __getstate__(self):  # file descriptors stay in their process
        state = self.__dict__.copy()
        state["_readers"] = {}
        return state


class WindowDataset(torch.utils.data.Dataset):
    """Windows of `context + horizon` consecutive frames and the actions between them.

    Item: frames uint8 [K+H, 3, h, w], actions float32 [K+H-1, A], states float32 [K+H, S],
    extrinsics float32 [K+H, 4, 4], fovy float32 [K+H], episode and start indices, and the view.
    A dataset of V camera views gives V items per window, one per view (`view` says which).
    """

    def __init__(self, directory: str | os.PathLike, context: int = 2, horizon: int = 1, stride: int = 1,
                 episodes: list[int] | None = None):
        if context < 1 or horizon < 0 or stride < 1:
            raise InputError(f"need context >= 1, horizon >= 0, stride >= 1; got {context}, {horizon}, {stride}")
        self.episodes = EpisodeDataset(directory)
        self.context, self.horizon, self.stride = context, horizon, stride
        self.length = context + horizon
        ids = range(len(self.episodes)) if episodes is None else episodes
        counts, eps = [], []
        for i in ids:
            frames = self.episodes.num_steps(i) + 1
            n = (frames - self.length) // stride + 1 if frames >= self.length else 0
            if n > 0:
                eps.append(i)
                counts.append(n)
        if not eps:
            raise DatasetError(f"no episode in {directory} has {self.length} frames for a window")
        self._eps = np.asarray(eps)
        self._cum = np.concatenate([[0], np.cumsum(counts)])
        self.views = self.episodes.spec.views

    def __len__(self) -> int:
        return int(self._cum[-1]) * self.views

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        if not 0 <= idx < len(self):
            raise IndexError(f"window {idx} out of range for {len(self)}")
        idx, view = divmod(idx, self.views)
        k = int(np.searchsorted(self._cum, idx, side="right") - 1)
        ep = int(self._eps[k])
        start = int(idx - self._cum[k]) * self.stride
        reader, e = self.episodes.locate(ep)
        stop = start + self.length
        small = reader.small_arrays(e)
        pixels = reader.pixels(e, start, stop)
        ext, fov = small["extrinsics"][start:stop], small["fovy"][start:stop]
        if self.views > 1:
            pixels, ext, fov = pixels[:, view], ext[:, view], fov[:, view]
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))),
            "actions": torch.from_numpy(small["actions"][start:stop - 1].copy()),
            "states": torch.from_numpy(small["states"][start:stop].copy()),
            "extrinsics": torch.from_numpy(ext.copy()),
            "fovy": torch.from_numpy(fov.copy()),
            "episode": torch.tensor(ep),
            "start": torch.tensor(start),
            "view": torch.tensor(view),
        }
