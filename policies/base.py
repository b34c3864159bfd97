"""The Policy protocol: batched in, batched out, so one policy drives one env or a thousand."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

Obs = dict[str, np.ndarray]


@runtime_checkable
class Policy(Protocol):
    """`act` maps a dict of `[N, ...]` arrays to `[N, A]` float32 actions in [-1, 1].

    `reset(mask)` forgets per-env memory where `mask` is True (all envs when None), so a vector
    env's autoreset can reset only the envs that finished.
    """

    name: str

    def act(self, obs: Obs) -> np.ndarray: ...

    def reset(self, mask: np.ndarray | None = None) -> None: ...


def batch_obs(obs: Obs) -> Obs:
    """One env's observation -> a batch of one."""
    return {k: np.asarray(v)[None] for k, v in obs.items()}


def batch_size(obs: Obs) -> int:
    sizes = {np.asarray(v).shape[0] for v in obs.values()}
    if len(sizes) != 1:
        raise ValueError(f"observation entries disagree on the batch size: {sorted(sizes)}")
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
