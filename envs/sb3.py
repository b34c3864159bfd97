"""Stable-Baselines3 on a batched vector env: `SB3VecEnv(envs)` is an SB3 `VecEnv` over one Gymnasium
`VectorEnv`, so SB3 steps a `WorldModelVectorEnv` (or a Gymnasium twin's `LearnedVectorEnv`) with one batched
forward pass instead of N single envs.

SB3 expects same-step autoreset: an env that finishes is reset within the same `step`, its returned
observation is the new episode's first, and the last one goes to `infos[i]["terminal_observation"]`
(with `"TimeLimit.truncated"` when the episode was cut by time). Gymnasium vector envs reset on the next
step (NEXT_STEP), so the adapter resets the finished envs at once through `reset(options={"reset_mask": ...})`,
which Gymnasium's vector envs and ours support.

Needs the optional `stable-baselines3` package (`pip install stable-baselines3`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from cosmos_sim.envs.world_model_env import env_row
from cosmos_sim.errors import InputError

try:
    from stable_baselines3.common.vec_env import VecEnv
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("cosmos_sim.envs.sb3 needs stable-baselines3: pip install stable-baselines3") from e


class SB3VecEnv(VecEnv):
    """An SB3 VecEnv over one Gymnasium VectorEnv (numpy outputs; see the module docstring)."""

    def __init__(self, envs: gym.vector.VectorEnv):
        if getattr(envs, "array_type", "numpy") != "numpy":
            raise InputError("SB3 works on numpy arrays: make the vector env with array_type='numpy'")
        self.envs = envs
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None
        self._obs: Any = None

    def reset(self):
        seed, self._seed = self._seed, None
        obs, info = self.envs.reset(seed=seed)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._obs = obs
        return obs

    def seed(self, seed: int | None = None):
        self._seed = seed  # used by the next reset(), as SB3's own VecEnvs do
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        obs, rew, term, trunc, info = self.envs.step(self._actions)
        term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
        done = term | trunc
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        for key in ("success", "uncertainty", "diverged"):
            if key in info:
                for i in range(self.num_envs):
                    infos[i][key] = np.asarray(info[key])[i].item()
        if done.any():  # same-step autoreset: the finished envs start over now
            idx = np.flatnonzero(done)
            for i in idx:
                infos[i]["terminal_observation"] = env_row(obs, int(i))
                infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
            fresh, _ = self.envs.reset(options={"reset_mask": done})
            if isinstance(obs, dict):
                obs = {k: np.where(done.reshape(-1, *[1] * (np.ndim(v) - 1)), fresh[k], v) for k, v in obs.items()}
            else:
                obs = np.where(done.reshape(-1, *[1] * (np.ndim(obs) - 1)), fresh, obs)
        self._obs = obs
        return obs, np.asarray(rew, np.float32), done, infos

    def close(self) -> None:
        self.envs.close()

    # SB3's per-env attribute access: one batched env holds them all
    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self.envs, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.envs, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        out = getattr(self.envs, method_name)(*method_args, **method_kwargs)
        return [out for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self):
        return list(self.envs.render())
