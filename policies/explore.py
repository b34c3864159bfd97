"""Exploration that makes things happen: random actions rarely touch the objects.

`ContactExplorer` drives the actuator toward random points on or near the object it should
disturb, overshooting through it, so pushes in random directions fill the dataset; the world names
the two state entries (`World.contact_targets`). Worlds whose action already acts on an object (Drop)
or that have no object (Reach) set none and get smooth random actions (an Ornstein-Uhlenbeck
process), which cover the action space better than white noise.
"""

from __future__ import annotations

import numpy as np

from cosmos_sim.policies.base import Obs, batch_size, obs_dict
from cosmos_sim.worlds import World, get_world


class ContactExplorer:
    def __init__(self, world: str | World, seed: int | None = 0, hold_steps: tuple[int, int] = (4, 12),
                 theta: float = 0.3, sigma: float = 0.5):
        self.world = get_world(world)
        self.rng = np.random.default_rng(seed)
        self.hold_steps, self.theta, self.sigma = hold_steps, theta, sigma
        self.name = "explore"
        self._goal: np.ndarray | None = None
        self._left: np.ndarray | None = None
        self._ou: np.ndarray | None = None

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self._goal = self._left = self._ou = None
        elif self._left is not None:
            self._left[np.asarray(mask, dtype=bool)] = 0
            self._ou[np.asarray(mask, dtype=bool)] = 0.0

    def act(self, obs: Obs) -> np.ndarray:
        obs = obs_dict(obs)
        n, A = batch_size(obs), self.world.action_dim
        if self._ou is None or len(self._ou) != n:
            self._ou = np.zeros((n, A))
            self._left = np.zeros(n, dtype=int)
            self._goal = np.zeros((n, 2))
        self._ou += -self.theta * self._ou + self.sigma * self.rng.normal(size=(n, A))
        action = np.clip(self._ou, -1.0, 1.0)
        entries = self.world.contact_targets
        if entries is None or "state" not in obs:
            return action.astype(np.float32)
        L = self.world.state_layout
        state = np.asarray(obs["state"])
        me, obj = L.get(state, entries[0]), L.get(state, entries[1])
        for i in np.flatnonzero(self._left <= 0):  # pick a new point through the object
            direction = obj[i] - me[i]
            direction /= max(np.linalg.norm(direction), 1e-6)
            self._goal[i] = obj[i] + direction * self.rng.uniform(0.0, 0.2) + self.rng.normal(0, 0.03, 2)
            self._left[i] = self.rng.integers(*self.hold_steps)
        self._left -= 1
        delta = self._goal - me
        dist = np.linalg.norm(delta, axis=1, keepdims=True)
        self._left[dist[:, 0] < 0.02] = 0
        speed = self.rng.uniform(0.4, 1.0, (n, 1))
        toward = delta / np.maximum(dist, 1e-6) * speed
        action[:, :2] = np.clip(toward + 0.2 * self._ou[:, :2], -1.0, 1.0)
        return action.astype(np.float32)


class CameraWalk:
    """Smooth random camera motion for `camera="moving"` collection: 3 normalized deltas a step."""

    def __init__(self, seed: int | None = 0, theta: float = 0.2, sigma: float = 0.4):
        self.rng = np.random.default_rng(seed)
        self.theta, self.sigma = theta, sigma
        self.x = np.zeros(3)

    def __call__(self) -> np.ndarray:
        self.x += -self.theta * self.x + self.sigma * self.rng.normal(size=3)
        return np.clip(self.x, -1.0, 1.0).astype(np.float32)
