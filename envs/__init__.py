"""Backends and Gymnasium environments."""

from cosmos_sim.envs.learned_config import LearnedEnvConfig
from cosmos_sim.envs.physics_env import OBS_MODES, PHYSICS_BACKENDS, PhysicsEnv
from cosmos_sim.envs.registration import BACKENDS, env_id, make_env, make_learned, make_vec_env, register_envs
from cosmos_sim.envs.source_env import GymEnvWorld, SourceEnv, env_world  # also lets get_world("env:<id>") resolve

__all__ = ["GymEnvWorld", "SourceEnv", "env_world", "LearnedEnvConfig", "make_learned", "UncertaintyPenalty",
           "HaltOnUncertainty",
           "OBS_MODES", "PHYSICS_BACKENDS", "BACKENDS", "PhysicsEnv", "WorldModelEnv", "WorldModelVectorEnv",
           "env_id", "make_env", "make_vec_env", "register_envs"]


def __getattr__(name: str):  # the learned envs import torch; load them on first use
    if name in ("WorldModelEnv", "WorldModelVectorEnv", "BatchedLearnedCore"):
        from cosmos_sim.envs import world_model_env

        return getattr(world_model_env, name)
    if name in ("UncertaintyPenalty", "HaltOnUncertainty"):
        from cosmos_sim.envs import shaping

        return getattr(shaping, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
