"""Gym ids `cosmos_sim/<World>-v0`, registered when `cosmos_sim` is imported."""

from __future__ import annotations

import gymnasium as gym

from cosmos_sim.envs.physics_env import PHYSICS_BACKENDS, PhysicsEnv
from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.worlds import WORLDS

BACKENDS = (*PHYSICS_BACKENDS, "world_model")


def env_id(world: str) -> str:
    return f"cosmos_sim/{world}-v0"


def make_env(world: str, backend: str = "mujoco", **kwargs) -> gym.Env:
    """Entry point of every id: picks the backend."""
    if backend in PHYSICS_BACKENDS:
        return PhysicsEnv(world, backend=backend, **kwargs)
    if backend == "world_model":
        from cosmos_sim.envs.world_model_env import WorldModelEnv

        return WorldModelEnv(world, **kwargs)
    raise UnknownChoiceError("backend", backend, BACKENDS)


def make_vec_env(world: str, num_envs: int = 1, backend: str = "mujoco", **kwargs) -> gym.vector.VectorEnv:
    """Vector entry point of every id: one batched WorldModelVectorEnv for the learned backend,
    a SyncVectorEnv of single envs for physics (pass vectorization_mode="async" to gym.make_vec for processes)."""
    if backend == "world_model":
        from cosmos_sim.envs.world_model_env import WorldModelVectorEnv

        return WorldModelVectorEnv(world, num_envs=num_envs, **kwargs)
    if backend not in PHYSICS_BACKENDS:
        raise UnknownChoiceError("backend", backend, BACKENDS)
    if "array_type" in kwargs:
        raise ValueError("array_type applies to backend='world_model' only")
    return gym.vector.SyncVectorEnv([lambda: PhysicsEnv(world, backend=backend, **kwargs) for _ in range(num_envs)])


def register_envs() -> None:
    for name in WORLDS:
        if env_id(name) not in gym.registry:
            gym.register(id=env_id(name), entry_point="cosmos_sim.envs.registration:make_env",
                         vector_entry_point="cosmos_sim.envs.registration:make_vec_env", kwargs={"world": name})
