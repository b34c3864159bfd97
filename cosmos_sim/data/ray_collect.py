"""`collect --ray [ADDRESS]`: collection workers as Ray tasks, on this machine or across a cluster.

Each task collects a contiguous range of seeds with the very code of the multiprocessing path
(`collect._worker`: same environments, policies, shard sizes and names) into a scratch directory of
its own machine, and returns the shards' bytes with their manifest entries. The driver writes each
shard atomically into the output directory and the one manifest, as `collect` does. So no shared
filesystem is needed: workers may run anywhere Ray can reach, and only the driver touches the output.
The data equals a `collect` of the same config, whatever the task split or the cluster: episode i
still uses seed `base_seed + i`. Resuming works as for `collect` (finished shards are kept; only
missing seeds are collected again).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cosmos_sim.config import arg
from cosmos_sim.data.collect import CollectConfig, _Collector, _ListQueue, _worker, pending
from cosmos_sim.data.shards import write_manifest
from cosmos_sim.errors import CorruptDataError, DatasetError, InputError, MissingPackageError
from cosmos_sim.fileio import atomic_write_bytes

# Rendering and threading settings a remote worker needs to behave as this process does.
FORWARDED_ENV = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class RayConfig:
    address: str | None = arg(None, "Ray cluster address ('auto', 'host:port', 'ray://...'); none: a local "
                                    "instance (or the one this process already joined)")
    episodes_per_task: int = arg(16, "most episodes per Ray task (smaller: finer progress and resume)")
    num_cpus: float = arg(1.0, "CPUs Ray reserves for each task")

    def __post_init__(self):
        if self.episodes_per_task < 1 or self.num_cpus <= 0:
            raise InputError("episodes_per_task must be >= 1 and num_cpus > 0")


def _require_ray():
    try:
        import ray
    except ImportError:
        raise MissingPackageError("collect --ray runs its workers as Ray tasks, and ray is not installed: "
                                  "pip install 'cosmos_sim[ray]'") from None
    return ray


def collect_seeds(config: CollectConfig, seeds: list[int]) -> list[tuple[dict, bytes]]:
    """One Ray task: collect `seeds` into shards in a scratch directory; return (manifest entry, shard bytes)."""
    shards: list[dict] = []
    errors: list[str] = []

    def on_message(msg) -> None:
        kind, payload = msg
        if kind == "shard":
            shards.append(payload)
        elif kind == "error":
            errors.append(payload)

    with tempfile.TemporaryDirectory(prefix="cosmos_sim-ray-") as scratch:
        _worker(config, scratch, _ListQueue(seeds), _Collector(on_message))
        if errors:
            raise DatasetError(f"collecting seeds {seeds[0]}..{seeds[-1]} failed:\n{errors[0]}")
        return [(entry, (Path(scratch) / entry["file"]).read_bytes()) for entry in shards]


def seed_ranges(todo: list[int], workers: int, episodes_per_task: int) -> list[list[int]]:
    """`todo` in contiguous runs: at least `workers` of them (when there are enough seeds), none longer
    than `episodes_per_task`."""
    if not todo:
        return []
    size = max(1, min(episodes_per_task, math.ceil(len(todo) / max(workers, 1))))
    return [todo[i:i + size] for i in range(0, len(todo), size)]


def collect_ray(config: CollectConfig, out: str | os.PathLike, ray_config: RayConfig = RayConfig(),
                progress: bool = True) -> dict:
    """Collect the missing episodes of `config` into `out` with Ray tasks; returns the final manifest.

    Joins the Ray instance this process already started (`ray.init`), else starts or joins the one at
    `ray_config.address` (none: a new local instance) and shuts it down when done. `config.workers`
    sets the least number of tasks; the cluster's free CPUs set how many run at once.
    """
    from tqdm.auto import tqdm

    ray = _require_ray()
    out = Path(out)
    manifest, todo = pending(out, config)
    if not todo:
        return manifest
    own = not ray.is_initialized()
    if own:
        env_vars = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        kw = {"include_dashboard": False} if ray_config.address in (None, "local") else {}
        ray.init(address=ray_config.address, runtime_env={"env_vars": env_vars} if env_vars else None,
                 logging_level="WARNING", **kw)
    task = ray.remote(num_cpus=ray_config.num_cpus, max_retries=0)(collect_seeds)
    bar = tqdm(total=len(todo), desc=f"collect {config.world}/{config.backend} (ray)", unit="ep",
               disable=not progress)
    t0, frames = time.perf_counter(), 0
    running = [task.remote(config, seeds) for seeds in seed_ranges(todo, config.workers,
                                                                    ray_config.episodes_per_task)]
    try:
        while running:
            ready, running = ray.wait(running, num_returns=1)
            try:
                shards = ray.get(ready[0])
            except ray.exceptions.RayError as e:
                raise DatasetError("collection failed on a Ray worker; re-run the same command to resume:\n"
                                   f"{e}") from None
            for entry, data in shards:
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise CorruptDataError(f"shard {entry['file']} arrived from its Ray worker with other bytes "
                                           "than it was written with")
                atomic_write_bytes(out / entry["file"], data)
                manifest["shards"].append(entry)
                write_manifest(out, manifest)
                frames += entry["frames"]
                bar.update(entry["episodes"])
            dt = max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(ep_s=f"{bar.n / dt:.1f}", frames_s=f"{frames / dt:.0f}")
    except KeyboardInterrupt:
        raise KeyboardInterrupt("collection interrupted; the episodes in finished shards are kept: re-run the "
                                "same command to resume") from None
    finally:
        bar.close()
        for ref in running:  # after an error or Ctrl-C: stop the tasks still running
            ray.cancel(ref, force=True)
        if own:
            ray.shutdown()
    return manifest


def collect_on(config: CollectConfig, out: str | os.PathLike, ray: str | None = None, progress: bool = True) -> dict:
    """`cosmos-sim collect`: in local worker processes (`collect`), or with Ray tasks when `ray` names where
    ('local' for a new local instance, 'auto', 'host:port')."""
    from cosmos_sim.data.collect import collect

    if ray is None:
        return collect(config, out, progress=progress)
    return collect_ray(config, out, RayConfig(address=ray), progress=progress)
