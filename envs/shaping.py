"""Uncertainty shaping as Gymnasium wrappers: MOPO's reward penalty and MOReL's halting.

A learned env with an ensemble state model reports the members' disagreement as `info["uncertainty"]`
(0 with one member); these wrappers turn it into what offline model-based RL does with it:

- `UncertaintyPenalty(env, penalty)`: reward - penalty × uncertainty (MOPO). A step whose prediction
  diverged (`info["diverged"]`) keeps its reward (0 in the learned envs).
- `HaltOnUncertainty(env, threshold)`: truncate an episode at the step where uncertainty passes the
  threshold (MOReL); `info["halted"]` marks it. A terminated step is not halted.

`gym.make(id, backend="world_model", uncertainty_penalty=λ, halt_uncertainty=τ)` (and `gym.make_vec`,
`make_learned`) put them around the env, halting inside; by hand they wrap any env or vector env whose
info holds `uncertainty`. Both names take a single env or a vector env (a vector env gets
`VectorUncertaintyPenalty` / `VectorHaltOnUncertainty`).

Arithmetic: a vector env's rewards are shaped in their own dtype (numpy or torch); a single env's float
reward in its `reward_dtype` (float32 for the learned envs, else float64), so single and vector envs agree
to the bit. Halting on a vector env follows the env's autoreset mode, as if the env had ended the episode
itself: NEXT_STEP starts the halted env over on the next step (reward 0), SAME_STEP within the halting step
(its last observation and info in `info["final_obs"]` / `info["final_info"]`), and DISABLED refuses to step
it until the caller resets it (`EpisodeOverError`). A learned vector env wrapped directly takes the halting
as a truncation rule of its own step (`add_truncation`), so halted envs start over in one batch with the
env's own finished ones, exactly as if the env had truncated them; around any other vector env the wrapper
starts them over itself with `reset(options={"reset_mask": ...})` (SAME_STEP: with `final_info` as an
array of per-env dicts, as cosmos_sim's vector envs give it).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from cosmos_sim.errors import EpisodeOverError, InputError

FINAL_KEYS = ("final_obs", "final_info", "_final_obs", "_final_info")


def check_penalty(penalty: Any) -> float:
    try:
        ok = not isinstance(penalty, bool) and math.isfinite(float(penalty)) and float(penalty) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"uncertainty_penalty must be a finite number >= 0, got {penalty!r}")
    return float(penalty)


def check_threshold(threshold: Any) -> float:
    try:
        ok = not isinstance(threshold, bool) and float(threshold) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"halt_uncertainty must be > 0 (or None: never halt), got {threshold!r}")
    return float(threshold)


def reward_dtype(env: gym.Env) -> type:
    """The precision a single env's rewards are computed in: its `reward_dtype`, else float64."""
    return getattr(env.unwrapped, "reward_dtype", np.float64)


def env_row(x: Any, i: int) -> Any:
    """Env i's part of a batched observation or info entry (a copy)."""
    if isinstance(x, dict):
        return {k: env_row(v, i) for k, v in x.items()}
    return x[i].clone() if isinstance(x, torch.Tensor) else np.array(x[i], copy=True)


def _mask(x: Any) -> np.ndarray:
    return np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=bool)


def _like(values: np.ndarray, ref: Any) -> Any:
    """Host bools `values` as the array type of `ref` (a tensor on its device, or numpy)."""
    return torch.as_tensor(values, device=ref.device) if isinstance(ref, torch.Tensor) else values.copy()


def step_values(info: dict, key: str, wrapper: str) -> Any:
    """`info[key]` of the step just taken: for envs that started over within it (SAME_STEP), their
    `final_info`'s value."""
    if key not in info:
        raise InputError(f"{wrapper} needs info[{key!r}], which this env does not report (the learned envs do: "
                         "gym.make(id, backend='world_model'))")
    v, done = info[key], info.get("_final_info")
    if done is None or not _mask(done).any():
        return v
    v = v.clone() if isinstance(v, torch.Tensor) else np.array(v, copy=True)
    for i in np.flatnonzero(_mask(done)):
        v[i] = info["final_info"][i][key]
    return v


class _Forwarding:
    """Vector wrappers hand on the attributes of the env they wrap (`envs.model`, `envs.array_type`, ...), as
    the learned vector env itself has them."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)


# --- MOPO ---------------------------------------------------------------------------------------------------
class UncertaintyPenalty(gym.Wrapper):
    """reward - penalty × info["uncertainty"] (MOPO); see the module docstring. On a vector env this is a
    `VectorUncertaintyPenalty`."""

    def __new__(cls, env: Any = None, *args: Any, **kwargs: Any):
        if cls is UncertaintyPenalty and isinstance(env, VectorEnv):
            return VectorUncertaintyPenalty(env, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, env: gym.Env, penalty: float):
        super().__init__(env)
        self.penalty = check_penalty(penalty)
        self.dtype = reward_dtype(env)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        u = step_values(info, "uncertainty", type(self).__name__)
        if not info.get("diverged", False):
            d = self.dtype
            reward = float(d(reward) - d(self.penalty) * d(u))
        return obs, reward, terminated, truncated, info


class VectorUncertaintyPenalty(_Forwarding, VectorWrapper):
    """`UncertaintyPenalty` for a vector env: rewards shaped in their own dtype, numpy or torch."""

    def __init__(self, env: VectorEnv, penalty: float):
        super().__init__(env)
        self.penalty = check_penalty(penalty)

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        u = step_values(info, "uncertainty", type(self).__name__)
        if isinstance(reward, torch.Tensor):
            shaped = reward - self.penalty * u.to(reward.device, reward.dtype)
        else:
            reward = np.asarray(reward)
            shaped = reward - reward.dtype.type(self.penalty) * np.asarray(u, reward.dtype)
        if "diverged" in info:  # a diverged step keeps its reward
            bad = step_values(info, "diverged", type(self).__name__)
            shaped = torch.where(bad.to(reward.device), reward, shaped) if isinstance(reward, torch.Tensor) \
                else np.where(_mask(bad), reward, shaped)
        return obs, shaped, terminated, truncated, info


# --- MOReL --------------------------------------------------------------------------------------------------
class HaltOnUncertainty(gym.Wrapper):
    """Truncate where info["uncertainty"] passes `threshold` (MOReL), `info["halted"]` saying so; see the
    module docstring. On a vector env this is a `VectorHaltOnUncertainty`."""

    def __new__(cls, env: Any = None, *args: Any, **kwargs: Any):
        if cls is HaltOnUncertainty and isinstance(env, VectorEnv):
            return VectorHaltOnUncertainty(env, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, env: gym.Env, threshold: float):
        super().__init__(env)
        self.threshold = check_threshold(threshold)
        self.dtype = reward_dtype(env)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        d = self.dtype
        halted = bool(d(step_values(info, "uncertainty", type(self).__name__)) > d(self.threshold)) and not terminated
        info["halted"] = halted
        return obs, reward, terminated, bool(truncated or halted), info


class VectorHaltOnUncertainty(_Forwarding, VectorWrapper):
    """`HaltOnUncertainty` for a vector env, in its autoreset mode (module docstring). An env that takes
    truncation rules (`add_truncation`: cosmos_sim's learned vector envs, wrapped directly) halts within its
    own step, so halted envs start over together with its own finished ones; around any other env the wrapper
    starts them over itself (`reset(options={"reset_mask": mask})`, which then works as on the env)."""

    def __init__(self, env: VectorEnv, threshold: float):
        super().__init__(env)
        self.threshold = check_threshold(threshold)
        self.joined = callable(getattr(type(env), "add_truncation", None))
        if self.joined:
            env.add_truncation("halted", self.halts)
        self.mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        N = env.num_envs
        self._ended = np.zeros(N, bool)  # halted here, not started over yet: the env does not know they ended
        self._finished = np.zeros(N, bool)  # every env whose episode ended, for DISABLED's error
        self._halted = np.zeros(N, bool)  # info["halted"] as it stands (a reset clears the envs it starts)

    def halts(self, info: dict, terminated: Any) -> Any:
        """Where the step's uncertainty passes the threshold and the episode did not terminate."""
        u = step_values(info, "uncertainty", type(self).__name__)
        return (u > (u.dtype.type(self.threshold) if isinstance(u, np.ndarray) else self.threshold)) & ~terminated

    def reset(self, *, seed: Any = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        if self.joined:
            return obs, info
        mask = (options or {}).get("reset_mask")
        fresh = np.ones(self.num_envs, bool) if mask is None else _mask(mask)
        for flags in (self._ended, self._finished, self._halted):
            flags[fresh] = False
        info["halted"] = _like(self._halted, info.get("uncertainty"))
        return obs, info

    def step(self, actions):
        if self.joined:
            return self.env.step(actions)
        if self.mode == AutoresetMode.DISABLED and self._ended.any():
            done = np.flatnonzero(self._finished | self._ended).tolist()
            raise EpisodeOverError(f"envs {done} have finished their episodes; with autoreset_mode='disabled' reset "
                                   "them (reset(options={'reset_mask': mask})) before stepping them again")
        obs, reward, terminated, truncated, info = self.env.step(actions)
        if self.mode == AutoresetMode.NEXT_STEP and self._ended.any():  # they start over now, reward 0
            ended = self._ended.copy()
            obs, info = self.env.reset(options={"reset_mask": ended})
            e = _like(ended, reward)
            reward = torch.where(e, torch.zeros_like(reward), reward) if isinstance(reward, torch.Tensor) \
                else np.where(e, np.zeros_like(reward), reward)
            terminated, truncated = terminated & ~e, truncated & ~e
        halted = self.halts(info, terminated)
        new = _mask(halted & ~(terminated | truncated)).copy()  # ended by halting alone: the env does not know
        truncated = truncated | halted
        self._finished = _mask(terminated | truncated).copy()
        if self.mode == AutoresetMode.SAME_STEP:
            obs, info = self._start_over(obs, info, halted, new)
            self._halted[:] = False
        else:
            self._ended, self._halted = new, _mask(halted).copy()  # copies: info's arrays are the caller's
            info["halted"] = halted
        return obs, reward, terminated, truncated, info

    def _start_over(self, obs, info: dict, halted: Any, new: np.ndarray):
        """SAME_STEP: the envs halted here start over now; every finished env's final_info says if it halted."""
        N = self.num_envs
        done = _mask(info["_final_obs"]) if "_final_obs" in info else np.zeros(N, bool)
        final_obs = np.array(info["final_obs"] if done.any() else [None] * N, dtype=object)
        final_info = np.array(info["final_info"] if done.any() else [None] * N, dtype=object)
        for i in np.flatnonzero(done):
            final_info[i] = {**final_info[i], "halted": env_row(halted, i)}
        if new.any():
            step_info = {k: v for k, v in info.items() if k not in FINAL_KEYS}
            for i in np.flatnonzero(new):
                final_obs[i] = env_row(obs, i)
                final_info[i] = {**env_row(step_info, i), "halted": env_row(halted, i)}
            obs, info = self.env.reset(options={"reset_mask": new})
        info = {k: v for k, v in info.items() if k not in FINAL_KEYS}
        info["halted"] = _like(np.zeros(N, bool), info["uncertainty"])
        if done.any() or new.any():
            info["final_obs"], info["final_info"] = final_obs, final_info
            info["_final_obs"], info["_final_info"] = done | new, done | new
        return obs, info


def shape(env: Any, penalty: float = 0.0, halt: float | None = None) -> Any:
    """`env` with the halting (if a threshold) and penalty (if not 0) wrappers, halting inside (so that it
    joins a learned vector env's own step)."""
    if halt is not None:
        env = HaltOnUncertainty(env, halt)
    if penalty:
        env = UncertaintyPenalty(env, penalty)
    return env


__all__ = ["UncertaintyPenalty", "HaltOnUncertainty", "VectorUncertaintyPenalty", "VectorHaltOnUncertainty",
           "shape", "env_row"]
