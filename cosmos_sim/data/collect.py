"""Parallel episode collection into shards, resumable after a kill.

Episode i uses seed `base_seed + i`; its policy, skill and camera motion derive from that seed
too, so a dataset is reproducible whatever the worker count. Workers write whole shards
atomically; only the parent writes the manifest. On restart, shards that reached the disk but
not the manifest are checked and adopted, temp files are removed, and only missing seeds are
collected: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from cosmos_sim.config import arg
from cosmos_sim.data.schema import EpisodeSpec
from cosmos_sim.data.shards import MANIFEST, ShardReader, read_manifest, shard_entry, write_manifest, write_shard
from cosmos_sim.errors import CorruptDataError, DatasetError, DatasetMismatchError, InputError, UnknownChoiceError
from cosmos_sim.worlds import get_world
from cosmos_sim.worlds.base import GYM_ENV, world_kind

CAMERA_MODES = ("fixed", "random", "moving")
ENV_POLICY = "random,explore"  # the default policy for a Gymnasium env, which has no scripted expert


@dataclass(frozen=True)
class CollectConfig:
    world: str = arg("Push", "world name, e.g. push")
    backend: str = arg("mujoco", "physics backend: mujoco or pybullet")
    policy: str | None = arg(None, "scripted, explore, random or mix (one of them drawn per episode); none: mix, or "
                                   "random,explore for a Gymnasium env (it has no scripted expert)")
    skill: tuple[float, float] = arg((1.0, 1.0), "expert skill, or a range LO:HI drawn per episode")
    episodes: int = arg(100, "episodes wanted in the dataset")
    base_seed: int = arg(0, "episode i uses seed SEED + i")
    camera: str = arg("fixed", "fixed, random (a pose per episode) or moving (random start, moves every step)")
    image_size: int = arg(64, "frame size in pixels")
    workers: int = arg(1, "worker processes")
    shard_mb: float = arg(32.0, "target shard size in MB")
    views: int = arg(1, "camera views of each frame (1-8): each its own pose under --camera random or moving (a rig)")

    # Fields that define what the data is; a resume must agree on them.
    IDENTITY = ("world", "backend", "policy", "skill", "base_seed", "camera", "image_size", "views")

    def __post_init__(self):
        from cosmos_sim.envs.physics_env import PHYSICS_BACKENDS
        from cosmos_sim.envs.source_env import SOURCE_BACKEND, SourceEnvError
        from cosmos_sim.policies.registry import collection_specs
        from cosmos_sim.worlds.dataset import require_simulator

        world = get_world(self.world)
        require_simulator(world, "collection")  # a recorded dataset's world
        object.__setattr__(self, "world", world.name)
        object.__setattr__(self, "skill", tuple(float(s) for s in self.skill))
        if self.camera not in CAMERA_MODES:
            raise UnknownChoiceError("camera mode", self.camera, CAMERA_MODES)
        if world_kind(world) == GYM_ENV:  # a Gymnasium env: its own physics, its own camera
            object.__setattr__(self, "backend", SOURCE_BACKEND)
            if self.policy is None:  # no scripted expert: the default mixes exploration and noise
                object.__setattr__(self, "policy", ENV_POLICY)
            if self.camera != "fixed":
                raise SourceEnvError(f"{world.name} renders from its own camera: collect it with camera 'fixed'")
            from cosmos_sim.envs.source_env import check_render

            check_render(world, self.image_size)
        elif self.backend not in PHYSICS_BACKENDS:
            raise UnknownChoiceError("backend", self.backend, PHYSICS_BACKENDS)
        if self.policy is None:
            object.__setattr__(self, "policy", "mix")
        collection_specs(self.policy, world)
        lo, hi = self.skill
        if not (0.0 <= lo <= hi <= 1.0):
            raise InputError(f"skill range must satisfy 0 <= lo <= hi <= 1, got {self.skill}")
        if self.episodes < 1 or self.workers < 1 or self.shard_mb <= 0:
            raise InputError("episodes and workers must be >= 1 and shard_mb > 0")
        from cosmos_sim.envs.physics_env import MAX_VIEWS

        if not isinstance(self.views, int) or not 1 <= self.views <= MAX_VIEWS:
            raise InputError(f"views must be an int from 1 to {MAX_VIEWS}, got {self.views!r}")
        if self.views > 1 and (self.camera == "fixed" or world_kind(world) == GYM_ENV):
            raise InputError("several views need poses of their own: collect them with --camera random or moving")

    def identity(self) -> dict:
        d = asdict(self)
        out = {k: (list(d[k]) if isinstance(d[k], tuple) else d[k]) for k in self.IDENTITY}
        if out["views"] == 1:  # single-view datasets keep the identity they had before views existed
            del out["views"]
        return out

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def episode_skill(config: CollectConfig, seed: int) -> float:
    lo, hi = config.skill
    return lo if lo == hi else float(np.random.default_rng([seed, 3]).uniform(lo, hi))


class _WithCameraWalk:
    """A policy's actions followed by smooth random camera deltas (`camera="moving"` collection)."""

    def __init__(self, policy, walk):
        self.policy, self.walk, self.name = policy, walk, policy.name

    def reset(self, mask=None) -> None:
        self.policy.reset(mask)

    def act(self, obs) -> np.ndarray:
        a = self.policy.act(obs)
        return np.concatenate([a, self.walk()[None]], -1)


def make_collection_env(config: CollectConfig):
    from cosmos_sim.envs.physics import make_physics_env

    camera = None if config.camera == "fixed" else "random"
    views = {"cameras": [camera] * config.views} if config.views > 1 else {"camera": camera}
    return make_physics_env(config.world, backend=config.backend, obs_mode="both", image_size=config.image_size,
                            camera_control=config.camera == "moving", **views)


def rollout_episode(config: CollectConfig, seed: int, env=None) -> dict:
    """One episode as the schema's dict of arrays. Shared by collection and tests."""
    from cosmos_sim.envs.source_env import SOURCE_BACKEND
    from cosmos_sim.policies.explore import CameraWalk
    from cosmos_sim.policies.registry import collection_policy
    from cosmos_sim.policies.rollout import run_episode
    from cosmos_sim.version import __version__

    own_env = env is None
    env = make_collection_env(config) if own_env else env
    try:
        world = env.world
        skill = episode_skill(config, seed)
        policy = collection_policy(config.policy, world, seed=seed, skill=skill)
        actor = _WithCameraWalk(policy, CameraWalk(seed=seed)) if config.camera == "moving" else policy
        source = config.backend == SOURCE_BACKEND
        ep = run_episode(env, actor, seed, keep_info=("state", "camera", "diverged") + (("has_success",) * source))
        T, cams = ep.length, ep.infos["camera"]
        terminated, truncated = np.zeros(T, np.uint8), np.zeros(T, np.uint8)
        terminated[-1], truncated[-1] = ep.terminated, ep.truncated
        extra = {}
        if source:  # what a World computes by code is data here: success after each step, when the env tells
            extra = {"has_success": bool(any(ep.infos["has_success"])),
                     "step_success": [int(x) for x in ep.success[1:]]}
        return {
            "pixels": ep.observations["pixels"].astype(np.uint8),
            "states": np.stack(ep.infos["state"]).astype(np.float32),
            "extrinsics": np.array([[v.extrinsics() for v in c] if config.views > 1 else c.extrinsics()
                                    for c in cams], dtype=np.float32),
            "fovy": np.array([[v.fovy for v in c] if config.views > 1 else c.fovy for c in cams], dtype=np.float32),
            "actions": np.clip(ep.actions[:, :world.action_dim], -1, 1).astype(np.float32),
            "rewards": ep.rewards.astype(np.float32),
            "terminated": terminated,
            "truncated": truncated,
            "metadata": {
                "world": world.name, "backend": config.backend, "seed": int(seed),
                "policy": policy.name, "policy_params": {"kind": config.policy, "skill": skill},
                "camera_mode": config.camera, "image_size": list(env.image_size),
                "world_hash": world.definition_hash(), "version": __version__,
                "simulator": simulator_versions(config.backend),
                "diverged": bool(ep.infos["diverged"][-1]), "success": bool(ep.success[-1]), "length": T, **extra,
            },
        }
    finally:
        if own_env:
            env.close()


def collect_states(config: CollectConfig, progress: bool = False, task: dict | None = None
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Episodes of states and actions alone, nothing rendered: cheap extra data for a state model.

    Episode i uses seed `base_seed + i` and the policy `rollout_episode` would draw for it (the camera
    plays no part). Returns per-episode float32 states [T+1, S] and actions [T, A]. `task` (a dict) is
    filled with per-episode `rewards` [T], `terminated` [T] and `success` [T] (after each step), for a
    learned reward/termination head.
    """
    from tqdm.auto import tqdm

    from cosmos_sim.envs.physics import make_physics_env
    from cosmos_sim.policies.registry import collection_policy
    from cosmos_sim.policies.rollout import run_episode

    env = make_physics_env(config.world, backend=config.backend, obs_mode="state")
    states, actions = [], []
    try:
        for i in tqdm(range(config.episodes), desc=f"states {config.world}", disable=not progress, unit="ep"):
            seed = config.base_seed + i
            policy = collection_policy(config.policy, env.world, seed=seed, skill=episode_skill(config, seed))
            ep = run_episode(env, policy, seed)
            states.append(ep.observations["state"].astype(np.float32))
            actions.append(np.clip(ep.actions, -1, 1).astype(np.float32))
            if task is not None:
                term = np.zeros(ep.length, bool)
                term[-1] = ep.terminated
                for key, value in (("rewards", ep.rewards.astype(np.float32)), ("terminated", term),
                                   ("success", ep.success[1:].astype(bool))):
                    task.setdefault(key, []).append(value)
    finally:
        env.close()
    return states, actions


def dataset_spec(config: CollectConfig) -> EpisodeSpec:
    world = get_world(config.world)
    return EpisodeSpec(image_size=(config.image_size, config.image_size), action_dim=world.action_dim,
                       state_dim=world.state_dim, views=config.views)


def new_manifest(config: CollectConfig) -> dict:
    world = get_world(config.world)
    return {
        "format": "cosmos_sim.dataset", "version": 1, "world": world.name,
        "world_hash": world.definition_hash(), "image_size": [config.image_size, config.image_size],
        "action_dim": world.action_dim, "state_dim": world.state_dim,
        "action_names": list(world.action_names), "state_layout": [[n, k] for n, k in world.state_layout.entries],
        "collection": config.identity(), "shards": [],
    } | ({"source": source_description(world)} if world.kind == GYM_ENV else {}) | (
        {"views": config.views} if config.views > 1 else {})


def simulator_versions(backend: str) -> dict[str, str]:
    """The physics package versions an episode came from: MuJoCo 3.x and 4.x differ in contacts (docs/benchmarks.md)."""
    from importlib.metadata import PackageNotFoundError, version

    names = {"mujoco": ("mujoco",), "pybullet": ("pybullet",), "env": ("mujoco",)}.get(backend, ())
    out = {}
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def source_description(world) -> dict:
    """What a dataset of a Gymnasium env records about it: id, kwargs, spaces and Gymnasium's version."""
    import gymnasium

    return {"env_id": world.env_id, "env_kwargs": world.env_kwargs, "observation_space": str(world.observation_source),
            "action_space": str(world.action_source), "gymnasium": gymnasium.__version__}


def prepare_directory(out: Path, config: CollectConfig) -> dict:
    """Load or create the manifest, refuse foreign data, clean temp files and adopt orphan shards."""
    out.mkdir(parents=True, exist_ok=True)
    fresh = new_manifest(config)
    if (out / MANIFEST).exists():
        manifest = read_manifest(out)
        if manifest.get("selection") is not None:
            raise DatasetError(f"{out} is a curated view; collect into the source dataset or a new directory")
        for key in ("world", "image_size"):
            if manifest.get(key) != fresh[key]:
                raise DatasetMismatchError(f"{out} holds a dataset with {key}={manifest.get(key)}, "
                                           f"not {key}={fresh[key]}; collect into another directory")
        if not get_world(config.world).accepts_hash(manifest.get("world_hash")):
            raise DatasetMismatchError(f"{out} was collected from another version of world {fresh['world']} "
                                       f"(definition hash {manifest.get('world_hash')} != {fresh['world_hash']})")
        if manifest.get("collection") != fresh["collection"]:
            diff = {k: (manifest.get("collection", {}).get(k), v) for k, v in fresh["collection"].items()
                    if manifest.get("collection", {}).get(k) != v}
            raise DatasetMismatchError(f"{out} was collected with other settings {diff} (theirs, yours); "
                                       "collect into another directory")
    else:
        if any(out.glob("*.safetensors")):
            raise DatasetError(f"{out} holds shards but no {MANIFEST}; refusing to mix datasets")
        manifest = fresh
    for tmp in out.glob(".*.tmp"):
        tmp.unlink()
    listed = {s["file"] for s in manifest["shards"]}
    seen = {seed for s in manifest["shards"] for seed in s["seeds"]}
    spec = dataset_spec(config)
    for path in sorted(out.glob("shard-*.safetensors")):
        if path.name in listed:
            continue
        try:  # a shard renamed into place just before a kill: keep it if it is whole and new
            reader = ShardReader(path)
            seeds = [int(m["seed"]) for m in reader.metadata]
            ok = reader.spec == spec and not seen.intersection(seeds) and len(set(seeds)) == len(seeds)
            entry = None
            if ok:
                entry = {"file": path.name, **shard_entry(path.read_bytes(), reader.metadata,
                                                          int(reader.frame_offsets[-1]), int(reader.step_offsets[-1]))}
            reader.close()
        except (CorruptDataError, DatasetError):
            entry = None
        if entry is None:
            path.unlink()
        else:
            manifest["shards"].append(entry)
            seen.update(entry["seeds"])
    write_manifest(out, manifest)
    return manifest


def _episode_bytes(ep: dict) -> int:
    return sum(v.nbytes for k, v in ep.items() if isinstance(v, np.ndarray))


def _worker(config: CollectConfig, out: str, tasks, results) -> None:
    """Collect seeds from `tasks` into shards of about `shard_mb`; report through `results`."""
    try:
        spec = dataset_spec(config)
        env = make_collection_env(config)
        buffer: list[dict] = []
        limit = config.shard_mb * 2**20

        def flush():
            if buffer:
                name = f"shard-{buffer[0]['metadata']['seed']:09d}-{len(buffer):04d}.safetensors"
                results.put(("shard", write_shard(out, name, buffer, spec)))
                buffer.clear()

        while True:
            seed = tasks.get()  # None: no work left
            if seed is None:
                break
            ep = rollout_episode(config, seed, env)
            buffer.append(ep)
            results.put(("episode", len(ep["pixels"])))
            if sum(_episode_bytes(e) for e in buffer) >= limit:
                flush()
        flush()
        env.close()
        results.put(("done", None))
    except KeyboardInterrupt:  # Ctrl-C: finished shards are on disk and the parent stops the collection
        if isinstance(results, _Collector):
            raise
        results.put(("interrupted", None))
    except BaseException:
        results.put(("error", traceback.format_exc()))


class _ListQueue:
    """The in-process stand-in for a task queue (one worker, no subprocess)."""

    def __init__(self, items):
        self.items = list(items)

    def get(self):
        return self.items.pop(0) if self.items else None


class _Collector:
    """In-process results sink for the one-worker path."""

    def __init__(self, on_message):
        self.on_message = on_message

    def put(self, msg):
        self.on_message(msg)


def pending(out: Path, config: CollectConfig) -> tuple[dict, list[int]]:
    """The directory's manifest (prepared for a resume) and the seeds still to collect; with none left the
    manifest is written as final."""
    manifest = prepare_directory(out, config)
    done = {seed for s in manifest["shards"] for seed in s["seeds"]}
    todo = [config.base_seed + i for i in range(config.episodes) if config.base_seed + i not in done]
    manifest["collection_config"] = config.to_dict()
    if not todo:
        write_manifest(out, manifest)
    return manifest, todo


def collect(config: CollectConfig, out: str | os.PathLike, progress: bool = True) -> dict:
    """Collect the missing episodes of `config` into `out` with `config.workers` worker processes; returns the
    final manifest. (`ray_collect.collect_on` picks these processes or Ray tasks.)"""
    from tqdm.auto import tqdm

    out = Path(out)
    manifest, todo = pending(out, config)
    if not todo:
        return manifest
    bar = tqdm(total=len(todo), desc=f"collect {config.world}/{config.backend}", unit="ep", disable=not progress)
    t0, frames = time.perf_counter(), 0
    errors: list[str] = []

    def on_message(msg):
        nonlocal frames
        kind, payload = msg
        if kind == "episode":
            frames += payload
            bar.update(1)
            dt = max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(ep_s=f"{bar.n / dt:.1f}", frames_s=f"{frames / dt:.0f}")
        elif kind == "shard":
            manifest["shards"].append(payload)
            write_manifest(out, manifest)
        elif kind == "error":
            errors.append(payload)

    workers = min(config.workers, len(todo))
    procs: list = []
    try:
        if workers == 1:
            _worker(config, str(out), _ListQueue(todo), _Collector(on_message))
        else:
            ctx = mp.get_context("spawn")
            tasks, results = ctx.Queue(), ctx.Queue()
            for seed in todo:
                tasks.put(seed)
            for _ in range(workers):
                tasks.put(None)
            procs = [ctx.Process(target=_worker, args=(config, str(out), tasks, results), daemon=True)
                     for _ in range(workers)]
            for p in procs:
                p.start()
            finished = 0
            while finished < workers:
                try:
                    msg = results.get(timeout=1.0)
                except queue.Empty:
                    if any(p.exitcode not in (None, 0) for p in procs):
                        errors.append("a collection worker died (exit codes "
                                      f"{[p.exitcode for p in procs]})")
                        break
                    continue
                if msg[0] == "interrupted":
                    raise KeyboardInterrupt
                on_message(msg)
                finished += msg[0] in ("done", "error")
            for p in procs:
                p.join(timeout=10)
                if p.is_alive():
                    p.terminate()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise KeyboardInterrupt("collection interrupted; the episodes in finished shards are kept: re-run the "
                                "same command to resume") from None
    finally:
        bar.close()
    if errors:
        raise DatasetError("collection failed; re-run the same command to resume:\n" + errors[0])
    return manifest


def summary_line(manifest: dict, out: str | os.PathLike) -> str:
    """What `cosmos-sim collect` prints when it is done."""
    shards = manifest["shards"]
    return (f"{out}: {sum(s['episodes'] for s in shards)} episodes, {sum(s['frames'] for s in shards)} frames in "
            f"{len(shards)} shards")
