"""Scripted experts with a skill knob: a ladder of policies whose success rates are known to differ.

Each world declares its expert (`World.expert(state [N, S], aim [N, 2]) -> actions [N, A]`) and how it
gets sloppy (`expert_miss`, `expert_noise`, `expert_random_prob`). `ScriptedPolicy` wraps it and adds
sloppiness as `skill` falls from 1 to 0:

- a wrong-ish subgoal: with probability `1 - skill` per episode (drawn again by `reset`), the expert aims
  at a point a few success radii off the real goal (the world's `expert_miss` range),
- Gaussian action noise with std `expert_noise * (1 - skill)`,
- a per-step probability `expert_random_prob * (1 - skill)` of a uniformly random action
  (per world: a random walk must not find the goal by luck too often).

All randomness comes from the policy's own seeded generators: one for per-episode draws, one for per-step
noise. The same seed and the same observations give the same actions, and because a mistaken episode is
`u < 1 - skill` with the same `u` at every skill, the mistaken episodes of a higher skill are a subset of
those of a lower one (given the same seed and batching): the ladder's rungs are nested, not just ordered on
average; the per-step noise still adds some scatter.
"""

from __future__ import annotations

import numpy as np

from cosmos_sim.errors import InputError
from cosmos_sim.policies.base import Obs
from cosmos_sim.worlds import WORLDS, World, get_world


def _check_skill(skill) -> float:
    if isinstance(skill, bool):
        raise InputError(f"skill must be a number in [0, 1], got {skill!r}")
    try:
        s = float(skill)
    except (TypeError, ValueError):
        raise InputError(f"skill must be a number in [0, 1], got {skill!r}") from None
    if not 0.0 <= s <= 1.0:  # also rejects NaN
        raise InputError(f"skill must be in [0, 1], got {skill!r}")
    return s


class ScriptedPolicy:
    """The world's scripted expert, made sloppier as `skill` falls from 1 (expert) to 0.

    `ScriptedPolicy("push", skill=0.75)`; `act(obs)` takes a dict with `"state"` `[N, S]` (or `[S]`,
    giving `[A]`) and returns float32 actions in [-1, 1].
    """

    def __init__(self, world: str | World, skill: float = 1.0, seed: int | None = 0):
        self.world = get_world(world)
        if not self.world.has_expert():
            raise InputError(f"no scripted expert for world {self.world.name!r}; experts exist for: "
                             f"{', '.join(n.lower() for n, cls in WORLDS.items() if cls.has_expert())}")
        if self.world.expert_miss is None:
            raise InputError(f"world {self.world.name!r} has an expert but no expert_miss: set the length range "
                             "(metres) of a mistaken episode's aim error")
        self.miss = tuple(float(v) for v in self.world.expert_miss)
        self.noise = float(self.world.expert_noise)
        self.random_prob = float(self.world.expert_random_prob)
        self.skill = _check_skill(skill)
        self.seed = seed
        episode_seq, step_seq = np.random.SeedSequence(seed).spawn(2)
        self.episode_rng = np.random.default_rng(episode_seq)  # per-episode draws, made by reset
        self.step_rng = np.random.default_rng(step_seq)  # per-step noise
        self.name = f"scripted(skill={self.skill:g})"
        self._aim: np.ndarray | None = None  # per-env subgoal error [N, 2], metres

    @property
    def sloppiness(self) -> float:
        return 1.0 - self.skill

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Forget per-env memory (the episode's subgoal error) where `mask` is True; all envs when None."""
        if mask is None or self._aim is None:
            self._aim = None  # drawn on the next act, when the batch size is known
            return
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        if mask.shape[0] != self._aim.shape[0]:
            raise InputError(f"reset mask has {mask.shape[0]} entries but the policy acts on {self._aim.shape[0]} envs")
        self._aim[mask] = self._draw_aim(int(mask.sum()))

    def _draw_aim(self, n: int) -> np.ndarray:
        # Always three draws per env, whatever the skill, so every skill sees the same u, angle, length.
        u = self.episode_rng.random(n)
        angle = self.episode_rng.uniform(-np.pi, np.pi, n)
        length = self.episode_rng.uniform(*self.miss, n)
        mistaken = u < self.sloppiness
        return (mistaken * length)[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)

    def _state(self, obs) -> tuple[np.ndarray, bool]:
        if isinstance(obs, dict):
            if "state" not in obs:
                raise InputError(f"ScriptedPolicy needs the state vector but the observation has only "
                                 f"{sorted(obs)}; make the env with obs_mode='state' or 'both', or pass "
                                 "{'state': info['state']}")
            state = obs["state"]
        else:
            state = obs
        state = np.asarray(state, dtype=np.float64)
        shape = state.shape
        single = state.ndim == 1
        if single:
            state = state[None]
        S = self.world.state_dim
        if state.ndim != 2 or state.shape[1] != S:
            raise InputError(f"{self.world.name} state must have shape [N, {S}] (or [{S}]), "
                             f"got {shape}")
        if not np.all(np.isfinite(state)):
            raise InputError("state contains NaN or inf")
        return state, single

    def act(self, obs: Obs) -> np.ndarray:
        state, single = self._state(obs)
        n = state.shape[0]
        if self._aim is None or self._aim.shape[0] != n:
            self._aim = self._draw_aim(n)
        a = np.asarray(self.world.expert(state, self._aim), dtype=np.float64)
        s = self.sloppiness
        if s > 0:
            a = a + self.step_rng.normal(size=a.shape) * (self.noise * s)
            rand = self.step_rng.random(n) < self.random_prob * s
            a = np.where(rand[:, None], self.step_rng.uniform(-1.0, 1.0, a.shape), a)
        a = np.clip(a, -1.0, 1.0).astype(np.float32)
        return a[0] if single else a

    def __repr__(self) -> str:
        return f"ScriptedPolicy({self.world.name!r}, skill={self.skill:g}, seed={self.seed!r})"
