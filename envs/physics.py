"""The physics env of any world, whichever kind it is: above both `PhysicsEnv` (our MJCF scenes in MuJoCo or
PyBullet) and `SourceEnv` (a Gymnasium env run as it is), which share the observation helpers of physics_env."""

from __future__ import annotations

import gymnasium as gym

from cosmos_sim.envs.physics_env import PhysicsEnv
from cosmos_sim.envs.source_env import SourceEnv
from cosmos_sim.worlds.base import GYM_ENV, World, world_kind


def make_physics_env(world: str | World, backend: str = "mujoco", **kwargs) -> gym.Env:
    """The physics env of any world: `PhysicsEnv` for cosmos_sim worlds, `SourceEnv` for a Gymnasium env's
    world ("env:<id>"), whose one physics backend is the env itself (`backend` is then ignored)."""
    if world_kind(world) == GYM_ENV:
        return SourceEnv(world, **kwargs)
    return PhysicsEnv(world, backend=backend, **kwargs)
