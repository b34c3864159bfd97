"""The Policy protocol: batched in, batched out, so one policy drives one env or a thousand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from cosmos_sim.errors import InputError

Obs = dict[str, np.ndarray]


def _is_pixels(dtype: Any) -> bool:
    return str(dtype).rsplit(".", 1)[-1] == "uint8"  # numpy's and torch's uint8 alike


def obs_dict(obs: Any) -> Obs:
    """An observation as the policies read it: a Dict as is, a bare array (obs_mode "state" or "pixels"
    envs return the array itself, as Gymnasium users expect) keyed by what it holds: uint8 frames are
    "pixels", anything else "state"."""
    if isinstance(obs, Mapping):
        return dict(obs)
    if not hasattr(obs, "dtype"):
        obs = np.asarray(obs)
    return {"pixels" if _is_pixels(obs.dtype) else "state": obs}


def space_dict(space: spaces.Space) -> dict[str, spaces.Space]:
    """`obs_dict` for an observation space."""
    if isinstance(space, spaces.Dict):
        return dict(space.spaces)
    if isinstance(space, spaces.Box):
        return {"pixels" if _is_pixels(space.dtype) else "state": space}
    raise TypeError(f"observations must be a Box or a Dict of Boxes, got {space}")


@runtime_checkable
class Policy(Protocol):
    """`act` maps a dict of `[N, ...]` arrays (or one array: see `obs_dict`) to `[N, A]` float32 actions
    in [-1, 1].

    `reset(mask)` forgets per-env memory where `mask` is True (all envs when None), so a vector
    env's autoreset can reset only the envs that finished.
    """

    name: str

    def act(self, obs: Obs) -> np.ndarray: ...

    def reset(self, mask: np.ndarray | None = None) -> None: ...


def batch_obs(obs: Any) -> Obs:
    """One env's observation -> a batch of one."""
    return {k: np.asarray(v)[None] for k, v in obs_dict(obs).items()}


def batch_size(obs: Any) -> int:
    obs = obs_dict(obs)
    sizes = {np.asarray(v).shape[0] for v in obs.values()}
    if len(sizes) != 1:
        raise InputError(f"observation entries disagree on the batch size: {sorted(sizes)}")
    return sizes.pop()


class RandomPolicy:
    """Uniform actions in [-1, 1]^A from its own seeded generator."""

    def __init__(self, action_dim: int, seed: int | None = 0):
        self.action_dim = int(action_dim)
        self.rng = np.random.default_rng(seed)
        self.name = "random"

    def act(self, obs: Obs) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (batch_size(obs), self.action_dim)).astype(np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        return None
