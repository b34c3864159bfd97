"""Backends and Gymnasium environments."""

from cosmos_sim.envs.physics_env import OBS_MODES, PHYSICS_BACKENDS, PhysicsEnv
from cosmos_sim.envs.registration import BACKENDS, env_id, make_env, register_envs

__all__ = ["OBS_MODES", "PHYSICS_BACKENDS", "BACKENDS", "PhysicsEnv", "env_id", "make_env", "register_envs"]
