"""Closed loop: a policy acts in a backend from fixed seeds; return, success and length per episode.

Every backend runs the same way: one vector env with one env per episode, reset with the episode
seeds, stepped with the policy's batched actions until every env has finished its first episode.
Episode i therefore starts from the same initial state in MuJoCo, PyBullet and the learned world
(the learned world resets through the physics backend it was trained on), and the policy draws
the same random numbers in each.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError, UnknownChoiceError
from cosmos_sim.evaluation.stats import proportion, summary
from cosmos_sim.trust import policy_trust
from cosmos_sim.worlds import get_world

BACKENDS = ("mujoco", "pybullet", "world_model", "env")  # "env": a Gymnasium env's world's own physics


def make_vector_env(world: str, backend: str, num_envs: int, model: Any = None, obs_mode: str = "state",
                    camera: Any = None, device: str | None = None, image_size: int | None = None,
                    ensemble: str | None = None) -> gym.vector.VectorEnv:
    """The vector env closed-loop evaluation uses for a backend (learned: one batch on `device`, stepped with
    `ensemble`: envs/learned_config.py)."""
    from cosmos_sim.envs.registration import make_world_vec_env

    kw: dict = {"obs_mode": obs_mode, "camera": camera}
    if backend == "world_model":
        kw |= {"model": model, "device": device} | ({"ensemble": ensemble} if ensemble else {})
    if image_size is not None:
        kw["image_size"] = image_size
    return make_world_vec_env(get_world(world), num_envs=num_envs, backend=backend, **kw)


def run_policy(env: gym.vector.VectorEnv, policy, seeds: list[int], progress: Callable[[int], None] | None = None,
               trust: bool = False) -> dict[str, np.ndarray]:
    """First episode of each env (env i reset with seeds[i]): per-episode return, success, length (and with
    `trust`, a learned env's count of off-data steps, cosmos_sim.trust)."""
    from cosmos_sim.policies.rollout import run_episodes

    eps = run_episodes(env, policy, seeds, keep_obs=False, progress=progress, keep_info=("off_data",) if trust else ())
    out = {"return": np.array([e.ret for e in eps]), "success": np.array([e.succeeded for e in eps]),
           "length": np.array([e.length for e in eps])}
    if trust:
        out["off_data_steps"] = np.array([int(np.sum(e.infos["off_data"][1:])) for e in eps])
    return out


def summarize_episodes(episodes: dict[str, np.ndarray], seed: int = 0) -> dict:
    return {"success_rate": proportion(episodes["success"]),
            "return": summary(episodes["return"], seed=seed),
            "length": summary(episodes["length"].astype(float), seed=seed),
            "per_episode": {k: np.asarray(v).tolist() for k, v in episodes.items()}} | (
        {"trust": policy_trust(episodes["off_data_steps"], episodes["length"])} if "off_data_steps" in episodes
        else {})


def evaluate_policies(world: str, backend: str, policy_specs: list[str], episodes: int = 50, seed: int = 0,
                      model: Any = None, device: str | None = None, camera: Any = None, policy_seed: int = 0,
                      batch: int = 64, progress: Callable[[int], None] | None = None,
                      planner_model: Any = None, frames: str | None = None) -> dict[str, dict]:
    """Success rate, return and length (mean and 95% bootstrap CI) of each policy in one backend.

    Episodes use seeds seed .. seed + episodes - 1, `batch` envs at a time; the envs are built once
    per batch and shared by the policies. Planners plan in `planner_model` (default: `model`).
    `frames` ("oracle" or "frozen", a physics backend, pixel policies only) swaps the frames the policies see
    (envs/frame_filters.py; "oracle" draws them with `model`'s tokenizer).
    """
    from cosmos_sim.policies.registry import PLANNER, policy_from_spec

    if backend not in BACKENDS:
        raise UnknownChoiceError("backend", backend, BACKENDS)
    if frames is not None:
        from cosmos_sim.envs.frame_filters import FRAME_FILTERS

        if frames not in FRAME_FILTERS:
            raise UnknownChoiceError("frame filter", frames, FRAME_FILTERS)
        if backend == "world_model":
            raise InputError("frames= swaps a physics backend's frames; the learned world draws its own")
        if frames == "oracle" and isinstance(model, (str, os.PathLike)):
            from cosmos_sim.world_model import WorldModel

            model = WorldModel.load(model, device=device or "cpu")
    plan_in = planner_model if planner_model is not None else model
    if plan_in is not None and isinstance(plan_in, (str, os.PathLike)) and any(
            s.startswith("planner") for s in policy_specs):
        from cosmos_sim.world_model import WorldModel

        plan_in = WorldModel.load(plan_in, device=device or "cpu")
    made = {spec: policy_from_spec(spec, world, seed=policy_seed, model=plan_in) for spec in policy_specs}
    # policies that see the same observations share envs: (obs_mode, image size or None for the default)
    # (and, for a policy that takes the camera pose, its view count: its env reports the pose as an observation)
    needs = {spec: (getattr(p, "obs_mode", "state"),
                    getattr(p, "image_size", None) if backend != "world_model" else None,
                    int(p.config.get("views", 1)) if "camera" in getattr(p, "keys", tuple)() else 0)
             for spec, p in made.items()}
    seeds = list(range(seed, seed + episodes))
    parts: dict[str, list] = {spec: [] for spec in policy_specs}
    for start in range(0, episodes, batch):
        chunk = seeds[start:start + batch]
        for mode, size, camera_views in dict.fromkeys(needs.values()):
            env = make_vector_env(world, backend, len(chunk), model=model, obs_mode=mode, camera=camera,
                                  device=device, image_size=size)
            if frames is not None:
                if mode not in ("pixels", "both"):
                    raise InputError(f"frames={frames!r} swaps pixel observations; policies "
                                     f"{[s for s in policy_specs if needs[s][0] == mode]} act on {mode!r}")
                from cosmos_sim.envs.frame_filters import filter_frames

                env = filter_frames(env, frames, model)
            if camera_views:
                from cosmos_sim.envs.camera_obs import CameraObservation

                env = CameraObservation(env, camera_views)
            try:
                for spec in (s for s in policy_specs if needs[s] == (mode, size, camera_views)):
                    # the first chunk's policy is the one built above (a planner loads its model once)
                    policy = made[spec] if start == 0 else policy_from_spec(spec, world, seed=policy_seed + start,
                                                                            model=plan_in)
                    parts[spec].append(run_policy(env, policy, chunk, progress, trust=backend == "world_model"))
            finally:
                env.close()
    out = {}
    for spec, ps in parts.items():
        eps = {k: np.concatenate([p[k] for p in ps]) for k in ps[0]}
        out[spec] = {"world": get_world(world).name, "backend": backend, "policy": spec, "seeds": seeds,
                     "obs_mode": needs[spec][0], **summarize_episodes(eps, seed=seed)}
        # member rollouts for state policies; a planner would plan K times over (it has the model's own figures)
        if backend == "world_model" and needs[spec][0] == "state" and "trust" in out[spec] and \
                not spec.startswith(PLANNER):
            spread = member_spread(world, model, spec, seeds, device, policy_seed)
            if spread is not None:
                out[spec]["trust"] |= spread
    return out


def sees_pixels(result: dict) -> bool:
    """A closed-loop result (`evaluate_policies`' per policy) of a policy that acts on frames."""
    return result.get("obs_mode", "state") != "state"


def member_spread(world: str, model: Any, spec: str, seeds: list[int], device: str | None, policy_seed: int = 0
                  ) -> dict | None:
    """Each state-model member rolls the policy out in a world of its own (`ensemble="member"`) from the same
    seeds: the members' mean returns and success rates and their standard deviations, the return
    disagreement of cosmos_sim.trust. None for a one-member model (or one not loaded: a path)."""
    from cosmos_sim.policies.registry import policy_from_spec

    K = getattr(getattr(model, "state_head", None), "members", 1)
    if K < 2:
        return None
    env = make_vector_env(world, "world_model", len(seeds) * K, model=model, obs_mode="state", device=device,
                          ensemble="member")
    try:  # env j * K + k: seed j, member k
        eps = run_policy(env, policy_from_spec(spec, world, seed=policy_seed, model=model),
                         [s for s in seeds for _ in range(K)])
    finally:
        env.close()
    ret = eps["return"].reshape(len(seeds), K).mean(0)
    succ = 100.0 * eps["success"].reshape(len(seeds), K).mean(0)
    return {"member_returns": ret.tolist(), "member_success": succ.tolist(),
            "member_return_std": float(ret.std(ddof=1)), "member_success_std": float(succ.std(ddof=1))}


def per_policy(results: dict[str, dict]) -> dict[str, dict]:
    """`evaluate_policies`' results as a report keeps them per policy: the summaries, the episodes and the trust."""
    keys = ("obs_mode", "success_rate", "return", "length", "per_episode", "trust")
    return {spec: {k: r[k] for k in keys if k in r} for spec, r in results.items()}


@dataclass(frozen=True)
class EvalConfig:
    """One policy in one backend, as `cosmos-sim evaluate` runs it."""

    world: str = arg("push", "world name")
    backend: str = arg("mujoco", "mujoco, pybullet or world_model, or several (world_model,mujoco): then the "
                                 "exploitation gap, learned success minus physics success, is reported too")
    policy: str = arg("scripted", "scripted[:SKILL], random, explore, planner[:cem|mppi] (plans in --model), or a "
                                  "trained policy RUN (from cosmos-sim train-policy)")
    model: str = arg("pretrained", "world model for --backend world_model and to plan in for --policy planner: a "
                                   "run directory, a .safetensors file or 'pretrained' (the world's shipped model)")
    episodes: int = arg(50, "episodes")
    seed: int = arg(0, "episode i uses seed SEED+i")
    camera: str | None = arg(None, "default or random camera per episode (none: the world's default camera)")
    device: str | None = arg(None, "device of the world model (none: cuda when available)")

    def __post_init__(self):
        from cosmos_sim.policies.registry import check_policy_spec

        object.__setattr__(self, "world", get_world(self.world).name)
        check_policy_spec(self.policy)
        for backend in self.backends:
            if backend not in BACKENDS:
                raise UnknownChoiceError("backend", backend, BACKENDS)
        if self.camera not in (None, "default", "random"):
            raise UnknownChoiceError("camera", self.camera, ["default", "random"])
        if self.episodes < 1:
            raise InputError(f"episodes must be >= 1, got {self.episodes}")


    @property
    def backends(self) -> list[str]:
        return [b.strip() for b in self.backend.split(",") if b.strip()]


def run_evaluation(config: EvalConfig) -> dict:
    """`evaluate` as the config says, the world model loaded (and checked) first.

    One backend: that backend's result. Several: {"world", "policy", "backends": {backend: result}}
    plus "exploitation_gap" when the learned world is among them and physics too.
    """
    from cosmos_sim.evaluation.model import load_checked_model

    c = config
    model = None
    if "world_model" in c.backends or c.policy.startswith("planner"):
        model = load_checked_model(c.model, c.world, c.device)
    results = {b: evaluate(c.world, b, c.policy, episodes=c.episodes, seed=c.seed,
                           model=model if b == "world_model" else None, device=c.device, camera=c.camera,
                           planner_model=model) for b in c.backends}
    if len(results) == 1:
        return next(iter(results.values()))
    out = {"world": c.world, "policy": c.policy, "backends": results}
    if "world_model" in results:
        out["exploitation_gap"] = {b: exploitation_gap(results["world_model"], r, seed=c.seed)
                                   for b, r in results.items() if b != "world_model"}
    return out


def exploitation_gap(learned: dict, physics: dict, seed: int = 0) -> dict:
    """Success in the learned world minus success in physics, in points, episode by episode (the same seeds
    start both from the same state): mean and 95 % bootstrap CI. Positive: the policy does better in the
    model than in physics, i.e. it exploits the model's errors."""
    a, b = (np.asarray(r["per_episode"]["success"], float) for r in (learned, physics))
    if a.shape != b.shape or learned["seeds"] != physics["seeds"]:
        raise InputError("the exploitation gap pairs episodes: both results need the same seeds")
    return {"physics": physics["backend"], **summary(100 * (a - b), seed=seed)}


def evaluate(world: str, backend: str, policy_spec: str, **kwargs) -> dict:
    """`evaluate_policies` for one policy."""
    return evaluate_policies(world, backend, [policy_spec], **kwargs)[policy_spec]


def summary_table(result: dict) -> str:
    """A row per backend: success rate, return and length with their 95% intervals, then the exploitation
    gap when there is one (what `cosmos-sim evaluate` prints)."""
    from cosmos_sim.text import format_table

    def ci(c: dict, scale: float = 1.0, d: int = 1) -> str:
        return f"{c['mean'] * scale:.{d}f} [{c['lo'] * scale:.{d}f}, {c['hi'] * scale:.{d}f}]"

    results = list(result["backends"].values()) if "backends" in result else [result]
    table = format_table(["world", "backend", "policy", "episodes", "success %", "return", "length"],
                         [[r["world"], r["backend"], r["policy"], len(r["seeds"]), ci(r["success_rate"], 100, 0),
                           ci(r["return"]), ci(r["length"])] for r in results])
    gaps = [f"exploitation gap (learned minus {b} success): {ci(g)} points"
            for b, g in result.get("exploitation_gap", {}).items()]
    return "\n".join([table, *gaps])


def run_command(config: EvalConfig, out: str | os.PathLike | None = None) -> list[str]:
    """`cosmos-sim evaluate`: run, print the table, and write the result as JSON to `out` when given."""
    from cosmos_sim.device import resolve_device
    from cosmos_sim.fileio import atomic_write_json

    resolve_device(config.device)  # a bad or missing device is named before any work
    result = run_evaluation(config)
    lines = [summary_table(result)]
    if out is not None:
        atomic_write_json(out, result)
        lines.append(f"wrote {out}")
    return lines
