"""`cosmos_sim/Learned-v0`: the learned twin of a Gymnasium env, with exactly the source env's spaces.

`gym.make("cosmos_sim/Learned-v0", model=RUN)` reads the env id and kwargs from the model, so a policy
written for `gym.make("Reacher-v5")` runs on the twin unchanged: observations in the env's own space
(Box or Dict, its dtype), actions in its own Box. Rewards, termination and success come from the
model's learned task head. `obs_mode="both"` gives `Dict(pixels, state)` (the state in the env's
space), `"pixels"` the predicted frame alone; `render_mode="rgb_array"` renders the predicted frame and
puts it in `info["pixels"]` too. Resets come from the source env itself (`reset_source="env"`: its reset
with the episode's seed gives the first state and frame) or from a dataset's recorded episodes.

Inside, `LearnedWorlds` does the work in the normalized action space every cosmos_sim model uses; only
the edges convert (`EnvWorld.from_source_action`, `EnvWorld.state_to_obs`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from cosmos_sim.envs.registration import LEARNED_ID
from cosmos_sim.envs.source_env import EnvWorld, SourceEnvError, check_source_action, env_world, is_env_world
from cosmos_sim.envs.world_model_env import LearnedWorlds, resolve_device, to_numpy
from cosmos_sim.errors import ActionError, ConfigMismatchError, UnknownChoiceError

TWIN_OBS_MODES = ("state", "pixels", "both")


def load_twin_model(model: Any, device: torch.device, env: str | None = None):
    """The WorldModel of a Gymnasium env's twin, and its EnvWorld. `env` (an id) given => checked."""
    from cosmos_sim.world_model import WorldModel

    if model is None:
        raise ValueError(f"{LEARNED_ID} needs model=RUN: a world model trained on a Gymnasium env's data "
                         "(`cosmos-sim collect --env ID` then `cosmos-sim train`)")
    if isinstance(model, (str, os.PathLike)):
        if not os.path.exists(model):
            raise FileNotFoundError(f"world model {str(model)!r} does not exist")
        model = WorldModel.load(model, device=device)
    elif not isinstance(model, WorldModel):
        raise TypeError(f"model must be a path or a WorldModel, got {type(model).__name__}")
    if not is_env_world(model.world):
        raise ConfigMismatchError(f"this world model was trained on the cosmos_sim world {model.world!r}, not on a "
                                  f"Gymnasium env: use gym.make('cosmos_sim/{model.world}-v0', "
                                  "backend='world_model', model=...)")
    world = env_world(model.world)
    if env is not None:
        asked = env if is_env_world(env) else None
        if asked is None and env != world.env_id:
            raise ConfigMismatchError(f"world model is for {world.name!r}, caller has env {env!r}")
        if asked is not None and asked != world.name:
            raise ConfigMismatchError(f"world model is for {world.name!r}, caller has {asked!r}")
    return model.to(device), world


def _core_kwargs(obs_mode: str, reset_source: Any) -> tuple[str, Any]:
    if obs_mode not in TWIN_OBS_MODES:
        raise UnknownChoiceError("obs_mode", obs_mode, TWIN_OBS_MODES)
    source = "physics" if isinstance(reset_source, str) and reset_source == "env" else reset_source
    return ("state" if obs_mode == "state" else "both"), source


def twin_observation_space(world: EnvWorld, obs_mode: str, image_size: tuple[int, int]) -> spaces.Space:
    pixels = spaces.Box(0, 255, (*image_size, 3), np.uint8)
    if obs_mode == "state":
        return world.observation_source
    if obs_mode == "pixels":
        return pixels
    return spaces.Dict({"pixels": pixels, "state": world.observation_source})


class LearnedEnv(gym.Env):
    """One learned twin of a Gymnasium env (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, model: Any = None, obs_mode: str = "state", render_mode: str | None = None,
                 device: str | torch.device | None = None, reset_source: str | os.PathLike = "env",
                 sampling: Mapping[str, Any] | None = None, env: str | None = None, ensemble: str = "mean"):
        if render_mode not in (None, "rgb_array"):
            raise UnknownChoiceError("render_mode", render_mode, ["rgb_array"])
        dev = resolve_device(device)
        model, self.world = load_twin_model(model, dev, env)
        core_mode, source = _core_kwargs(obs_mode, reset_source)
        self.core = LearnedWorlds(self.world, model, 1, obs_mode=core_mode, device=dev, reset_source=source,
                                  sampling=sampling, render=render_mode is not None, ensemble=ensemble)
        self.obs_mode, self.render_mode, self.backend = obs_mode, render_mode, "world_model"
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt)}
        self.observation_space = twin_observation_space(self.world, obs_mode, self.core.image_size)
        self.action_space = self.world.action_source

    @property
    def model(self):
        return self.core.model

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.core.rngs[0] = self.np_random
        self.core.reset([0], options, seeds=[seed])  # the source env reset with `seed`: the same first state
        self.core.seed([None], int(self.np_random.integers(2**62)))
        return self._observe(), self._info()

    def step(self, action):
        if not self.core.started:
            raise RuntimeError("call reset() before step()")
        if isinstance(action, torch.Tensor):
            action = action.detach().cpu().numpy()
        a = self.core.check_actions(check_source_action(self.world, action)[None])
        reward, terminated, truncated = self.core.step(a)
        return self._observe(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._info()

    def render(self):
        if not self.core.started:
            raise RuntimeError("call reset() before render()")
        if not self.core.decode:
            raise RuntimeError("render() needs render_mode='rgb_array' (or obs_mode 'pixels' or 'both')")
        return to_numpy(self.core.frames[0])

    def close(self):
        if getattr(self, "core", None) is not None:
            self.core.close()

    def _observe(self):
        state = self.world.state_to_obs(to_numpy(self.core.states[0].double()))
        if self.obs_mode == "state":
            return state
        pixels = to_numpy(self.core.frames[0])
        return pixels if self.obs_mode == "pixels" else {"pixels": pixels, "state": state}

    def _info(self) -> dict:
        info = {"success": bool(self.core.success()[0]), "uncertainty": float(self.core.uncertainty[0]),
                "halted": bool(self.core.halted[0]), "diverged": bool(self.core.diverged[0])}
        if self.core.decode:
            info["pixels"] = to_numpy(self.core.frames[0])
        return info


class LearnedVectorEnv(gym.vector.VectorEnv):
    """N learned twins stepped in one forward pass (NEXT_STEP autoreset), in the source env's spaces."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, model: Any = None, obs_mode: str = "state", render_mode: str | None = None,
                 device: str | torch.device | None = None, reset_source: str | os.PathLike = "env",
                 sampling: Mapping[str, Any] | None = None, env: str | None = None, ensemble: str = "mean"):
        if render_mode not in (None, "rgb_array"):
            raise UnknownChoiceError("render_mode", render_mode, ["rgb_array"])
        dev = resolve_device(device)
        model, self.world = load_twin_model(model, dev, env)
        core_mode, source = _core_kwargs(obs_mode, reset_source)
        self.core = LearnedWorlds(self.world, model, num_envs, obs_mode=core_mode, device=dev, reset_source=source,
                                  sampling=sampling, render=render_mode is not None, ensemble=ensemble)
        self.num_envs, self.obs_mode, self.render_mode = num_envs, obs_mode, render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt)}
        self.single_observation_space = twin_observation_space(self.world, obs_mode, self.core.image_size)
        self.single_action_space = self.world.action_source
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._done = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        N = self.num_envs
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None] * N if seed is None else [int(seed) + i for i in range(N)]
        else:
            seeds = list(seed)
        if len(seeds) != N:
            raise ValueError(f"reset(seed=list) needs {N} seeds, got {len(seeds)}")
        self.core.seed(seeds, seeds[0])
        self.core.reset(list(range(N)), options, seeds=seeds)
        self._done[:] = False
        return self._observe(), self._info()

    def step(self, actions):
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ActionError(f"actions must have shape {self.action_space.shape}, got {a.shape}")
        a = self.core.check_actions(np.stack([check_source_action(self.world, row) for row in a]))
        reward, terminated, truncated = (to_numpy(x) for x in self.core.step(a))
        if self._done.any():  # NEXT_STEP autoreset
            self.core.reset(np.flatnonzero(self._done).tolist())
            reward = np.where(self._done, 0.0, reward)
            terminated, truncated = terminated & ~self._done, truncated & ~self._done
        self._done = terminated | truncated
        return self._observe(), reward.astype(np.float64), terminated, truncated, self._info()

    def render(self):
        if self.render_mode is None:
            raise RuntimeError("render() needs render_mode='rgb_array'")
        return tuple(to_numpy(self.core.frames))

    def close_extras(self, **kwargs):
        self.core.close()

    def _observe(self):
        states = to_numpy(self.core.states.double())
        space = self.world.observation_source
        if isinstance(space, spaces.Dict):
            obs = {k: states[:, self.world.state_layout.slice(k)].astype(s.dtype).reshape(self.num_envs, *s.shape)
                   for k, s in space.spaces.items()}
        else:
            obs = states.astype(space.dtype).reshape(self.num_envs, *space.shape)
        if self.obs_mode == "state":
            return obs
        pixels = to_numpy(self.core.frames)
        return pixels if self.obs_mode == "pixels" else {"pixels": pixels, "state": obs}

    def _info(self) -> dict:
        return {"success": to_numpy(self.core.success()), "uncertainty": to_numpy(self.core.uncertainty),
                "halted": to_numpy(self.core.halted), "diverged": to_numpy(self.core.diverged)}


def make_learned_env(**kwargs) -> LearnedEnv:
    return LearnedEnv(**kwargs)


def make_learned_vec_env(num_envs: int = 1, **kwargs) -> LearnedVectorEnv:
    return LearnedVectorEnv(num_envs=num_envs, **kwargs)


__all__ = ["LEARNED_ID", "LearnedEnv", "LearnedVectorEnv", "SourceEnvError"]
