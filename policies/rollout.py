"""The one episode loop: a policy acting in an env, recorded step by step.

Collection, comparison, closed-loop evaluation and the physics demo all run episodes through
`run_episodes`, so "an episode" means the same thing everywhere: reset with the episode's seed,
the policy reset once, then step until the env terminates or truncates.

It takes a single env (a batch of one) or a vector env (env i reset with seeds[i]); of a vector
env, each sub-env's first episode is recorded and what its autoreset does afterwards is ignored.
`steps=T` instead runs exactly T steps on a single env, stepping on past termination: a
fixed-length trajectory for step-by-step comparisons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from cosmos_sim.errors import InputError
from cosmos_sim.policies.base import Obs, Policy, obs_dict


@dataclass
class Episode:
    """One recorded episode of T steps: T+1 observations (the reset's first), T actions and rewards."""

    seed: int
    actions: np.ndarray  # [T, A], exactly what was passed to env.step
    rewards: np.ndarray  # [T]
    success: np.ndarray  # bool [T+1]: info["success"] at the reset and after each step
    terminated: bool
    truncated: bool
    observations: dict[str, np.ndarray] | None = None  # each entry [T+1, ...] (keep_obs)
    infos: dict[str, list] | None = None  # the kept info keys, T+1 values each (keep_info)

    @property
    def length(self) -> int:
        return len(self.rewards)

    @property
    def ret(self) -> float:
        return float(np.sum(self.rewards))

    @property
    def succeeded(self) -> bool:
        """Success reached after some step (a start that is already solved does not count)."""
        return bool(self.success[1:].any())


class _Track:
    """Per-env lists, appended to while the env's first episode lasts."""

    def __init__(self, keep_obs: bool, keep_info: Sequence[str]):
        self.obs: dict[str, list] | None = {} if keep_obs else None
        self.info: dict[str, list] = {k: [] for k in keep_info}
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.success: list[bool] = []
        self.terminated = self.truncated = False

    def frame(self, obs: Obs, info: dict, i: int) -> None:
        if self.obs is not None:
            for k, v in obs.items():
                self.obs.setdefault(k, []).append(np.asarray(v[i]))
        for k in self.info:
            self.info[k].append(info[k][i])
        self.success.append(bool(info["success"][i]))

    def episode(self, seed: int) -> Episode:
        A = np.asarray(self.actions[0]).shape if self.actions else (0,)
        return Episode(seed=seed, actions=np.asarray(self.actions, dtype=np.float32).reshape(-1, *A),
                       rewards=np.asarray(self.rewards, dtype=np.float64), success=np.asarray(self.success, bool),
                       terminated=self.terminated, truncated=self.truncated,
                       observations=None if self.obs is None else {k: np.stack(v) for k, v in self.obs.items()},
                       infos=self.info or None)


def _as_batch(obs: Obs, info: dict, keys: Sequence[str]) -> tuple[Obs, dict]:
    """A single env's observation and info as a batch of one."""
    return ({k: np.asarray(v)[None] for k, v in obs_dict(obs).items()},
            {k: [info[k]] for k in ("success", *keys)})


def run_episodes(env: gym.Env | gym.vector.VectorEnv, policy: Policy, seeds: Sequence[int], *,
                 steps: int | None = None, keep_obs: bool = True, keep_info: Sequence[str] = (),
                 reset_options: dict | None = None, progress: Callable[[int], None] | None = None
                 ) -> list[Episode]:
    """Env i's first episode from `reset(seed=seeds[i])`, one `Episode` per seed.

    `keep_obs` records every observation entry; `keep_info` the named info keys (e.g. "state",
    "camera"); `reset_options` go to `env.reset`; `progress(n)` is called after each step with the
    number of envs still running.
    """
    vector = isinstance(env, gym.vector.VectorEnv)
    n = env.num_envs if vector else 1
    seeds = [int(s) for s in seeds]
    if len(seeds) != n:
        raise InputError(f"{n} env(s) need {n} seed(s), got {len(seeds)}")
    if steps is not None and (vector or steps < 1):
        raise InputError("steps=T runs a single env for exactly T >= 1 steps (a vector env would autoreset)")
    keep_info = tuple(k for k in keep_info if k != "success")
    if vector:
        obs, info = env.reset(seed=seeds, options=reset_options)
        obs = obs_dict(obs)
    else:
        obs, info = _as_batch(*env.reset(seed=seeds[0], options=reset_options), keep_info)
    policy.reset()
    tracks = [_Track(keep_obs, keep_info) for _ in range(n)]
    for i, tr in enumerate(tracks):
        tr.frame(obs, info, i)
    done = np.zeros(n, bool)
    t = 0
    while (t < steps) if steps is not None else not done.all():
        actions = np.asarray(policy.act({k: np.asarray(v) for k, v in obs.items()}))
        if vector:
            obs, reward, term, trunc, info = env.step(actions)
            obs = obs_dict(obs)
        else:
            o, r, te, tr_, inf = env.step(actions[0])
            (obs, info), reward, term, trunc = _as_batch(o, inf, keep_info), [r], [te], [tr_]
        live = np.ones(n, bool) if steps is not None else ~done
        for i in np.flatnonzero(live):
            tr = tracks[i]
            tr.actions.append(actions[i])
            tr.rewards.append(float(reward[i]))
            tr.frame(obs, info, i)
            tr.terminated |= bool(term[i])
            tr.truncated |= bool(trunc[i])
        done |= np.asarray(term, bool) | np.asarray(trunc, bool)
        t += 1
        if progress is not None:
            progress(int(live.sum()))
    return [tr.episode(s) for tr, s in zip(tracks, seeds, strict=True)]


def run_episode(env: gym.Env, policy: Policy, seed: int, **kwargs) -> Episode:
    """`run_episodes` on a single env."""
    return run_episodes(env, policy, [seed], **kwargs)[0]


class ReplayPolicy:
    """Acts recorded actions `[N, T, A]` in order: the same actions replayed in another backend."""

    def __init__(self, actions: np.ndarray):
        self.actions = np.asarray(actions, dtype=np.float32)
        if self.actions.ndim != 3:
            raise InputError(f"actions must be [N, T, A], got shape {self.actions.shape}")
        self.name = "replay"
        self.t = 0

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self.t = 0

    def act(self, obs: Obs) -> np.ndarray:
        if self.t >= self.actions.shape[1]:
            raise IndexError(f"replay has {self.actions.shape[1]} recorded actions; step {self.t + 1} asked for")
        a = self.actions[:, self.t]
        self.t += 1
        return a
