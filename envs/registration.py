"""Gym ids `cosmos_sim/<World>-v0`, registered when `cosmos_sim` is imported."""

from __future__ import annotations

import gymnasium as gym

from cosmos_sim.envs.physics_env import PHYSICS_BACKENDS, PhysicsEnv
from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.worlds import WORLDS

BACKENDS = PHYSICS_BACKENDS


def env_id(world: str) -> str:
    return f"cosmos_sim/{world}-v0"


def make_env(world: str, backend: str = "mujoco", **kwargs) -> gym.Env:
    """Entry point of every id: picks the backend."""
    if backend in PHYSICS_BACKENDS:
        return PhysicsEnv(world, backend=backend, **kwargs)
    raise UnknownChoiceError("backend", backend, BACKENDS)


def register_envs() -> None:
    for name in WORLDS:
        if env_id(name) not in gym.registry:
            gym.register(id=env_id(name), entry_point="cosmos_sim.envs.registration:make_env",
                         kwargs={"world": name})
