"""The episode schema, checked when an episode is written rather than when it is read.

An episode of T steps holds T+1 frames. Per frame: pixels, states, camera extrinsics and fov (with V > 1
views of one scene: pixels [V, H, W, 3], extrinsics [V, 4, 4] and fovy [V] per frame). Per step: actions,
rewards, terminated, truncated. Metadata says where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosmos_sim.errors import EpisodeSchemaError

SCHEMA_VERSION = 1
# key -> (dtype, per-item shape builder, "frame" or "step")
FRAME_KEYS = ("pixels", "states", "extrinsics", "fovy")
STEP_KEYS = ("actions", "rewards", "terminated", "truncated")
REQUIRED_METADATA = ("world", "backend", "seed", "policy", "image_size", "world_hash", "version")


@dataclass(frozen=True)
class EpisodeSpec:
    """What every episode of one dataset shares: image size, vector widths and the number of camera views."""

    image_size: tuple[int, int]
    action_dim: int
    state_dim: int
    views: int = 1

    def to_dict(self) -> dict:
        d = {"image_size": list(self.image_size), "action_dim": self.action_dim, "state_dim": self.state_dim}
        return d | ({"views": self.views} if self.views > 1 else {})  # single-view specs read as before

    @classmethod
    def from_dict(cls, d: dict) -> EpisodeSpec:
        return cls(image_size=tuple(int(v) for v in d["image_size"]), action_dim=int(d["action_dim"]),
                   state_dim=int(d["state_dim"]), views=int(d.get("views", 1)))

    def item_shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        h, w = self.image_size
        v = (self.views,) if self.views > 1 else ()
        return {
            "pixels": ((*v, h, w, 3), np.dtype(np.uint8)),
            "states": ((self.state_dim,), np.dtype(np.float32)),
            "extrinsics": ((*v, 4, 4), np.dtype(np.float32)),
            "fovy": (v, np.dtype(np.float32)),
            "actions": ((self.action_dim,), np.dtype(np.float32)),
            "rewards": ((), np.dtype(np.float32)),
            "terminated": ((), np.dtype(np.uint8)),
            "truncated": ((), np.dtype(np.uint8)),
        }

    def validate(self, episode: dict) -> int:
        """Raise EpisodeSchemaError naming the first problem; return the step count T."""
        missing = [k for k in (*FRAME_KEYS, *STEP_KEYS, "metadata") if k not in episode]
        if missing:
            raise EpisodeSchemaError(f"episode is missing keys: {', '.join(missing)}")
        T = np.asarray(episode["actions"]).shape[0] if np.ndim(episode["actions"]) else -1
        if T < 1:
            raise EpisodeSchemaError("episode needs at least one step (actions of shape [T>=1, A])")
        for key, (shape, dtype) in self.item_shapes().items():
            a = episode[key]
            if not isinstance(a, np.ndarray):
                raise EpisodeSchemaError(f"episode[{key!r}] must be a numpy array, got {type(a).__name__}")
            if a.dtype != dtype:
                raise EpisodeSchemaError(f"episode[{key!r}] must have dtype {dtype}, got {a.dtype}")
            n = T + 1 if key in FRAME_KEYS else T
            if a.shape != (n, *shape):
                raise EpisodeSchemaError(f"episode[{key!r}] must have shape {(n, *shape)}, got {a.shape}")
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                raise EpisodeSchemaError(f"episode[{key!r}] holds NaN or inf")
        meta = episode["metadata"]
        if not isinstance(meta, dict):
            raise EpisodeSchemaError("episode['metadata'] must be a dict")
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise EpisodeSchemaError(f"episode metadata is missing: {', '.join(missing)}")
        if tuple(meta["image_size"]) != tuple(self.image_size):
            raise EpisodeSchemaError(f"episode image_size {tuple(meta['image_size'])} != dataset {self.image_size}")
        return T
