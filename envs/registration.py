"""Gym ids `cosmos_sim/<World>-v0` and `cosmos_sim/Learned-v0`, registered when `cosmos_sim` is imported.

The learned backend's keywords are the fields of one `LearnedEnvConfig` (envs/learned_config.py; an unknown
keyword is an `UnknownKeywordError` naming it); `make_learned(config)` makes the env it describes, inside the
uncertainty-shaping wrappers it asks for (envs/shaping.py).

The ids follow the world registry: a world defined after the import (a user's module, a test) gets its id
when its class is defined, and loses it when the world is unregistered.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym

from cosmos_sim.envs.learned_config import LEARNED_ID, LearnedEnvConfig, UnknownKeywordError, parse_autoreset_mode
from cosmos_sim.envs.physics_env import PHYSICS_BACKENDS, PhysicsEnv
from cosmos_sim.errors import ConfigMismatchError, InputError, UnknownChoiceError
from cosmos_sim.worlds import World, watch_worlds
from cosmos_sim.worlds.base import GYM_ENV, world_kind

BACKENDS = (*PHYSICS_BACKENDS, "world_model")


def env_id(world: str) -> str:
    return f"cosmos_sim/{world}-v0"


def make_env(world: str, backend: str = "mujoco", **kwargs) -> gym.Env:
    """Entry point of every id: picks the backend. The env has no time limit of its own (`time_limit=False`):
    gym.make adds the one TimeLimit, from the registered `max_episode_steps` or the caller's."""
    kwargs.setdefault("time_limit", False)  # gym.make wraps it in TimeLimit(max_episode_steps): one limit
    if backend in PHYSICS_BACKENDS:
        return PhysicsEnv(world, backend=backend, **kwargs)
    if backend == "world_model":
        return learned_from_kwargs({"world": world, **kwargs})
    raise UnknownChoiceError("backend", backend, BACKENDS)


def make_vec_env(world: str, num_envs: int = 1, backend: str = "mujoco", max_episode_steps: int | None = None,
                 **kwargs) -> gym.vector.VectorEnv:
    """Vector entry point of every id: one batched WorldModelVectorEnv for the learned backend,
    a SyncVectorEnv of single envs for physics (pass vectorization_mode="async" to gym.make_vec for processes).
    `autoreset_mode="next_step" | "same_step" | "disabled"` in every backend.
    `max_episode_steps` (gym.make_vec passes the registered one, or the caller's) is the one time limit."""
    if backend == "world_model":
        return learned_from_kwargs({"world": world, "max_episode_steps": max_episode_steps, **kwargs}, num_envs)
    if backend not in PHYSICS_BACKENDS:
        raise UnknownChoiceError("backend", backend, BACKENDS)
    if "array_type" in kwargs:
        raise InputError("array_type applies to backend='world_model' only")
    mode = parse_autoreset_mode(kwargs.pop("autoreset_mode", "next_step"))

    def one() -> gym.Env:
        if max_episode_steps is None:
            return PhysicsEnv(world, backend=backend, **kwargs)
        return gym.wrappers.TimeLimit(PhysicsEnv(world, backend=backend, time_limit=False, **kwargs),
                                      max_episode_steps)

    return gym.vector.SyncVectorEnv([one for _ in range(num_envs)], autoreset_mode=mode)


# --- the learned backend: one LearnedEnvConfig, shaping as wrappers ------------------------------------------
def make_learned(config: LearnedEnvConfig, num_envs: int | None = None, render_mode: str | None = None) -> Any:
    """The learned env a `LearnedEnvConfig` describes: a `WorldModelEnv` (`num_envs=None`) or
    `WorldModelVectorEnv`, a Gymnasium env's twin (`LearnedEnv`, `LearnedVectorEnv`) where `config.world` is
    None, inside the shaping wrappers its `uncertainty_penalty` / `halt_uncertainty` ask for (envs/shaping.py)."""
    from cosmos_sim.envs.shaping import shape

    if config.world is None:
        from cosmos_sim.envs import learned_env

        Single, Vector = learned_env.LearnedEnv, learned_env.LearnedVectorEnv
    else:
        from cosmos_sim.envs import world_model_env

        Single, Vector = world_model_env.WorldModelEnv, world_model_env.WorldModelVectorEnv
    unshaped = replace(config, uncertainty_penalty=0.0, halt_uncertainty=None)
    env = (Single(unshaped, render_mode=render_mode) if num_envs is None
           else Vector(unshaped, num_envs=num_envs, render_mode=render_mode))
    # knobs that act through the state ensemble would silently do nothing on a one-member model
    knobs = [k for k in ("uncertainty_penalty", "halt_uncertainty") if getattr(config, k) not in (0.0, None)] + (
        [f"ensemble={config.ensemble!r}"] if config.ensemble != "mean" else [])
    if knobs and env.core.model.state_head.members == 1:
        env.close()
        raise ConfigMismatchError(
            f"{' and '.join(knobs)} need an ensemble state model, and this world model has one member, so "
            "info['uncertainty'] is always 0 and there is no member to draw: train one with `cosmos-sim train "
            "... --state-members 5` (the default for new MLP state models)")
    try:
        halt = halt_threshold(config.halt_uncertainty, env.core.model)
    except ConfigMismatchError:
        env.close()
        raise
    return shape(env, config.uncertainty_penalty, halt)


def halt_threshold(halt: float | str | None, model: Any) -> float | None:
    """`halt_uncertainty` as a number: "data" is the state ensemble's disagreement at the 0.99 quantile of the
    model's held-out episodes (`info["trust"]`, calibrated when the model was trained: cosmos_sim.trust)."""
    if halt != "data":
        return halt
    value = ((getattr(model, "info", None) or {}).get("trust") or {}).get("thresholds", {}).get("state")
    if value is None:
        raise ConfigMismatchError(
            "halt_uncertainty='data' reads the held-out disagreement stored with the model (info['trust'], "
            "written when a model with an ensemble state model is trained), and this model has none: give a "
            "number, or train the model again with `--state-members 5`")
    return float(value)


def learned_from_kwargs(kwargs: dict, num_envs: int | None = None, where: str | None = None) -> Any:
    """`make_learned` of the config that `gym.make`'s keywords spell (`render_mode` aside)."""
    render_mode = kwargs.pop("render_mode", None)
    name = where or (env_id(str(getattr(kwargs.get("world"), "name", kwargs.get("world"))))
                     if kwargs.get("world") is not None else LEARNED_ID)
    return make_learned(LearnedEnvConfig.from_kwargs(kwargs, where=name), num_envs, render_mode)


def make_twin_env(**kwargs) -> gym.Env:
    """Entry point of `cosmos_sim/Learned-v0` (a Gymnasium env's twin: its world is the model's)."""
    _no_world(kwargs)
    return learned_from_kwargs(kwargs)


def make_twin_vec_env(num_envs: int = 1, **kwargs) -> gym.vector.VectorEnv:
    """Vector entry point of `cosmos_sim/Learned-v0`."""
    _no_world(kwargs)
    return learned_from_kwargs(kwargs, num_envs)


def _no_world(kwargs: dict) -> None:
    if "world" in kwargs:
        raise UnknownKeywordError(f"{LEARNED_ID} takes no world=: it reads its env from the model (env= checks it)")


def make_world_vec_env(world: str | World, num_envs: int = 1, backend: str = "mujoco", **kwargs
                       ) -> gym.vector.VectorEnv:
    """The vector env of any world in cosmos_sim's own interface (Dict observations, actions in [-1, 1]): what
    evaluation and training use inside. A Gymnasium env's world ("env:<id>") has no gym id of its own: its
    physics is the source env (`SourceEnv`, whatever physics `backend` says) and its learned backend the
    internal `WorldModelVectorEnv` (users get the source env's spaces from `cosmos_sim/Learned-v0`)."""
    from cosmos_sim.envs.source_env import SourceEnv
    from cosmos_sim.worlds.dataset import require_simulator

    require_simulator(world, f"a {backend} vector env")  # a recorded dataset's world has no gym id, no physics
    if world_kind(world) != GYM_ENV:
        name = world.name if isinstance(world, World) else world
        from cosmos_sim.worlds import get_world

        return gym.make_vec(env_id(get_world(name).name), num_envs=num_envs, backend=backend, **kwargs)
    if backend == "world_model":
        return learned_from_kwargs({"world": world, **kwargs}, num_envs, where="a learned vector env")
    kwargs = {k: v for k, v in kwargs.items() if k not in ("camera",) or v is not None}
    return gym.vector.SyncVectorEnv([lambda: SourceEnv(world, **kwargs) for _ in range(num_envs)])


def _register_id(world: type[World]) -> None:
    if env_id(world.name) not in gym.registry:
        gym.register(id=env_id(world.name), entry_point="cosmos_sim.envs.registration:make_env",
                     vector_entry_point="cosmos_sim.envs.registration:make_vec_env", kwargs={"world": world.name},
                     max_episode_steps=world.max_episode_steps)


def _unregister_id(world: type[World]) -> None:
    gym.registry.pop(env_id(world.name), None)


_watching = False


def register_envs() -> None:
    """Register the id of every world, now and as worlds register later, and `cosmos_sim/Learned-v0` (idempotent)."""
    global _watching
    if LEARNED_ID not in gym.registry:
        gym.register(id=LEARNED_ID, entry_point="cosmos_sim.envs.registration:make_twin_env",
                     vector_entry_point="cosmos_sim.envs.registration:make_twin_vec_env")
    if not _watching:
        _watching = True
        watch_worlds(_register_id, _unregister_id)


def world_info(world: World) -> dict:
    """What `cosmos-sim worlds` shows for one world (also its --json record)."""
    d = world.describe()
    return {
        "name": world.name.lower(),
        "gym_id": env_id(world.name),
        "description": d["description"],
        "action": d["action"],
        "action_dim": world.action_dim,
        "state": [{"name": n, "size": k} for n, k in d["state"]],
        "state_dim": world.state_dim,
        "control_hz": d["control_hz"],
        "max_episode_steps": d["max_episode_steps"],
        "episode_seconds": round(d["max_episode_steps"] / d["control_hz"], 3),
        "backends": list(BACKENDS),
    }


def world_lines(d: dict) -> list[str]:
    """`cosmos-sim worlds` text for one `world_info` record."""
    layout = "  ".join(f"{e['name']}[{e['size']}]" for e in d["state"])
    return [f"{d['name']}  ({d['gym_id']})",
            *([f"  {d['description']}"] if d["description"] else []),
            f"  action    [{d['action_dim']}] {', '.join(d['action'])}  (each in [-1, 1])",
            f"  state     [{d['state_dim']}] {layout}",
            f"  control   {d['control_hz']:g} Hz, max {d['max_episode_steps']} steps ({d['episode_seconds']:g} s)",
            f"  backends  {', '.join(d['backends'])}"]
