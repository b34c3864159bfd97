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

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from cosmos_sim.envs.registration import LEARNED_ID
from cosmos_sim.envs.source_env import EnvWorld, SourceEnvError, check_source_action, env_world
from cosmos_sim.envs.world_model_env import (
    LearnedWorlds,
    WorldModelEnv,
    WorldModelVectorEnv,
    resolve_device,
    to_numpy,
)
from cosmos_sim.errors import ActionError, ConfigMismatchError, InputError, MissingPathError, UnknownChoiceError
from cosmos_sim.worlds.base import GYM_ENV, world_kind

TWIN_OBS_MODES = ("state", "pixels", "both")


def load_twin_model(model: Any, device: torch.device, env: str | None = None):
    """The WorldModel of a Gymnasium env's twin, and its EnvWorld. `env` (an id) given => checked."""
    from cosmos_sim.world_model import WorldModel

    if model is None:
        raise InputError(f"{LEARNED_ID} needs model=RUN: a world model trained on a Gymnasium env's data "
                         "(`cosmos-sim collect --env ID` then `cosmos-sim train`)")
    if isinstance(model, (str, os.PathLike)):
        if not os.path.exists(model):
            raise MissingPathError(f"world model {str(model)!r} does not exist")
        model = WorldModel.load(model, device=device)
    elif not isinstance(model, WorldModel):
        raise TypeError(f"model must be a path or a WorldModel, got {type(model).__name__}")
    if world_kind(model.world) != GYM_ENV:
        raise ConfigMismatchError(f"this world model was trained on the cosmos_sim world {model.world!r}, not on a "
                                  f"Gymnasium env: use gym.make('cosmos_sim/{model.world}-v0', "
                                  "backend='world_model', model=...)")
    world = env_world(model.world)
    if env is not None:
        asked = env if world_kind(env) == GYM_ENV else None
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


def _twin_core(model: Any, num_envs: int, obs_mode: str, render_mode: str | None, device, reset_source: Any,
               sampling: Mapping[str, Any] | None, env: str | None, ensemble: str) -> tuple[EnvWorld, LearnedWorlds]:
    """The EnvWorld read from the model and the batched core both twin envs run on."""
    if render_mode not in (None, "rgb_array"):
        raise UnknownChoiceError("render_mode", render_mode, ["rgb_array"])
    dev = resolve_device(device)
    model, world = load_twin_model(model, dev, env)
    core_mode, source = _core_kwargs(obs_mode, reset_source)
    return world, LearnedWorlds(world, model, num_envs, obs_mode=core_mode, device=dev, reset_source=source,
                                sampling=sampling, render=render_mode is not None, ensemble=ensemble)


class LearnedEnv(WorldModelEnv):
    """One learned twin of a Gymnasium env (see the module docstring): `WorldModelEnv` with the source env's
    spaces at its edges."""

    def __init__(self, model: Any = None, obs_mode: str = "state", render_mode: str | None = None,
                 device: str | torch.device | None = None, reset_source: str | os.PathLike = "env",
                 sampling: Mapping[str, Any] | None = None, env: str | None = None, ensemble: str = "mean"):
        self.world, self.core = _twin_core(model, 1, obs_mode, render_mode, device, reset_source, sampling, env,
                                           ensemble)
        self.obs_mode, self.render_mode, self.backend = obs_mode, render_mode, "world_model"
        self.image_size = self.core.image_size
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt)}
        self.observation_space = twin_observation_space(self.world, obs_mode, self.core.image_size)
        self.action_space = self.world.action_source

    def _normalized_action(self, action) -> np.ndarray:
        return check_source_action(self.world, action)

    def render(self):
        if self.core.started and not self.core.decode:
            raise RuntimeError("render() needs render_mode='rgb_array' (or obs_mode 'pixels' or 'both')")
        return super().render()

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


class LearnedVectorEnv(WorldModelVectorEnv):
    """N learned twins stepped in one forward pass (NEXT_STEP, SAME_STEP or DISABLED autoreset, `reset_mask` resets), in
    the source env's spaces: `WorldModelVectorEnv` with conversions at its edges."""

    def __init__(self, num_envs: int = 1, model: Any = None, obs_mode: str = "state", render_mode: str | None = None,
                 device: str | torch.device | None = None, reset_source: str | os.PathLike = "env",
                 sampling: Mapping[str, Any] | None = None, env: str | None = None, ensemble: str = "mean",
                 autoreset_mode: str = "next_step"):
        self._set_autoreset_mode(autoreset_mode)
        self.world, self.core = _twin_core(model, num_envs, obs_mode, render_mode, device, reset_source, sampling,
                                           env, ensemble)
        self.num_envs, self.obs_mode, self.render_mode = num_envs, obs_mode, render_mode
        self.array_type, self.backend = "numpy", "world_model"
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt),
                         "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = twin_observation_space(self.world, obs_mode, self.core.image_size)
        self.single_action_space = self.world.action_source
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._done = torch.zeros(num_envs, dtype=torch.bool, device=self.core.device)

    def step(self, actions):
        obs, reward, terminated, truncated, info = super().step(actions)
        return obs, reward.astype(np.float64), terminated, truncated, info

    def _normalized_actions(self, actions) -> np.ndarray:
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ActionError(f"actions must have shape {self.action_space.shape}, got {a.shape}")
        return np.stack([check_source_action(self.world, row) for row in a])

    def _observe(self):
        obs = self.world.state_to_obs(to_numpy(self.core.states.double()))
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
