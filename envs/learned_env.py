"""`cosmos_sim/Learned-v0`: the learned twin of a Gymnasium env, with exactly the source env's spaces.

`gym.make("cosmos_sim/Learned-v0", model=RUN)` reads the env id and kwargs from the model, so a policy
written for `gym.make("Reacher-v5")` runs on the twin unchanged: observations in the env's own space
(Box or Dict, its dtype), actions in its own Box. Rewards, termination and success come from the
model's learned task head. `obs_mode="both"` gives `Dict(pixels, state)` (the state in the env's
space), `"pixels"` the predicted frame alone; `render_mode="rgb_array"` renders the predicted frame and
puts it in `info["pixels"]` too. Resets come from the source env itself (`reset_source="env"`: its reset
with the episode's seed gives the first state and frame) or from a dataset's recorded episodes.

`LearnedEnv(config)` and `LearnedVectorEnv(config, num_envs)` are `WorldModelEnv` and `WorldModelVectorEnv`
made from a `LearnedEnvConfig` whose `world` is None (`env=` checks the model's env): the batched core does
the work in the normalized action space every cosmos_sim model uses; only the edges convert
(`GymEnvWorld.from_source_action`, `GymEnvWorld.state_to_obs`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from cosmos_sim.device import resolve_device
from cosmos_sim.envs.learned_config import LEARNED_ID, LearnedEnvConfig
from cosmos_sim.envs.learned_core import BatchedLearnedCore
from cosmos_sim.envs.source_env import GymEnvWorld, SourceEnvError, check_source_action, env_world
from cosmos_sim.envs.world_model_env import WorldModelEnv, WorldModelVectorEnv, to_numpy
from cosmos_sim.errors import ActionError, ConfigMismatchError, InputError, MissingPathError
from cosmos_sim.worlds.base import GYM_ENV, world_kind


def load_twin_model(model: Any, device: torch.device, env: str | None = None):
    """The WorldModel of a Gymnasium env's twin, and its GymEnvWorld. `env` (an id) given => checked."""
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


def twin_observation_space(world: GymEnvWorld, obs_mode: str, image_size: tuple[int, int]) -> spaces.Space:
    pixels = spaces.Box(0, 255, (*image_size, 3), np.uint8)
    if obs_mode == "state":
        return world.observation_source
    if obs_mode == "pixels":
        return pixels
    return spaces.Dict({"pixels": pixels, "state": world.observation_source})


def twin_core(config: LearnedEnvConfig, num_envs: int, render: bool) -> BatchedLearnedCore:
    """The batched core of a twin: the model and GymEnvWorld read (and checked) from `config.model`, frames
    decoded for "pixels" and "both", resets from the source env ("env", also "physics") or a dataset."""
    config.check_twin()
    device = resolve_device(config.device)
    model, world = load_twin_model(config.model, device, config.env)
    source = "physics" if config.reset_source == "env" else config.reset_source
    core = replace(config, world=world, env=None, model=model, device=str(device), reset_source=source,
                   obs_mode="state" if (config.obs_mode or "state") == "state" else "both")
    return BatchedLearnedCore(core, num_envs, render=render)


class LearnedEnv(WorldModelEnv):
    """One learned twin of a Gymnasium env (see the module docstring): `WorldModelEnv` with the source env's
    spaces at its edges. `LearnedEnv(LearnedEnvConfig(model=RUN))`."""

    default_obs_mode = "state"

    def _make_core(self, config: LearnedEnvConfig, num_envs: int) -> BatchedLearnedCore:
        return twin_core(config, num_envs, render=self.render_mode is not None)

    def _spaces(self) -> tuple[spaces.Space, spaces.Space]:
        return twin_observation_space(self.world, self.obs_mode, self.core.image_size), self.world.action_source

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
                "halted": False, "diverged": bool(self.core.diverged[0]),
                "trust_score": float(self.core.trust_score[0]), "off_data": bool(self.core.trust_score[0] > 1)}
        if self.core.decode:
            info["pixels"] = to_numpy(self.core.frames[0])
        return info


class LearnedVectorEnv(WorldModelVectorEnv):
    """N learned twins stepped in one forward pass (NEXT_STEP, SAME_STEP or DISABLED autoreset, `reset_mask` resets), in
    the source env's spaces: `WorldModelVectorEnv` with conversions at its edges."""

    default_obs_mode = "state"
    _make_core = LearnedEnv._make_core
    _spaces = LearnedEnv._spaces

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
        flags = self._flag_info()
        return {"success": to_numpy(self.core.success()), "uncertainty": to_numpy(self.core.uncertainty),
                "halted": flags.pop("halted"), "diverged": to_numpy(self.core.diverged),
                "trust_score": to_numpy(self.core.trust_score), "off_data": to_numpy(self.core.trust_score > 1)} | flags


__all__ = ["LEARNED_ID", "LearnedEnv", "LearnedVectorEnv", "SourceEnvError", "twin_core", "load_twin_model"]
