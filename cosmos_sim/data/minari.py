"""Minari interchange: our sharded datasets out to Minari and Minari datasets in.

Export (`export_minari`, `cosmos-sim data export --format minari DIR ROOT`): written through Minari's own
API (`create_dataset_from_buffers`, Arrow storage, no JPEG: lossless) under the Minari root ROOT, as
`cosmos_sim/<world>/<name>-v<version>`, so `MINARI_DATASETS_PATH=ROOT` + `minari.load_dataset(id)` loads it.
Observations are the env's own `obs_mode="both"` observation, `Dict(pixels=Box(uint8, (H, W, 3)),
state=Box(float32, (S,)))`, one per frame (T+1 per episode); actions, rewards, terminations and
truncations one per step (T). Each frame's camera goes into the episode's infos (`extrinsics` [T+1, 4, 4],
`fovy` [T+1, 1]). The env spec is `cosmos_sim/<World>-v0` with the dataset's backend, image size and
camera mode, so `dataset.recover_environment()` makes the physics env it came from (Gymnasium-env datasets
carry no spec: our actions are rescaled to [-1, 1]). Our manifest (less its shard list) is kept in the
dataset's metadata and each episode's metadata in the episode's, so an import gives the dataset back exactly.

Import (`import_minari`, `data import --format minari NAME_OR_PATH OUT`): datasets exported by us come back
array for array. Others must fit one of our worlds and carry what our episodes hold: a `Dict` observation with
`pixels` (uint8 [H, W, 3]) and `state` (the world's state width), actions of the world's action width, and a
camera pose per frame (infos `extrinsics` and `fovy`; or `default_camera` when the frames were rendered from
the world's default camera). Frames cannot be made up from states in general, so a dataset without pixels is
refused with a typed error naming what is missing, as is one that fits no world.

Every output appears whole or not at all (staged beside it, renamed into place), and inputs are verified
first (checksums, schema, counts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosmos_sim.config import arg
from cosmos_sim.data.interchange_common import open_source, own_config, progress_bar, public_manifest
from cosmos_sim.data.merge import staged_directory
from cosmos_sim.data.schema import EpisodeSpec
from cosmos_sim.data.shards import write_manifest, write_shard
from cosmos_sim.errors import DatasetError, DatasetMismatchError, InputError, MissingPackageError, MissingPathError
from cosmos_sim.worlds import get_world
from cosmos_sim.worlds.base import GYM_ENV, world_kind

MINARI_NAMESPACE = "cosmos_sim"
MINARI_MANIFEST_KEY = "cosmos_sim_manifest"  # dataset metadata: our manifest less its shards (JSON)
MINARI_EPISODE_KEY = "cosmos_sim"  # episode metadata: our episode metadata (JSON)
MINARI_BATCH = 16  # episodes handed to Minari at a time (memory stays bounded)


@dataclass(frozen=True)
class MinariExportConfig:
    name: str | None = arg(None, "Minari dataset name, in its id cosmos_sim/<world>/<NAME>-v<VERSION>; none: the "
                                 "dataset directory's name")
    version: int = arg(0, "Minari dataset version")
    verify: bool = arg(True, "verify the dataset (checksums, schema, counts) before exporting")

    def __post_init__(self):
        if self.version < 0:
            raise InputError(f"a Minari export needs version >= 0, got {self.version}")


@dataclass(frozen=True)
class MinariImportConfig:
    world: str | None = arg(None, "world the data belongs to; none: the one the dataset records")
    default_camera: bool = arg(False, "frames without camera poses were rendered from the world's default camera")
    shard_mb: float = arg(32.0, "target shard size in MB")

    def __post_init__(self):
        if self.shard_mb <= 0:
            raise InputError(f"shard_mb must be > 0, got {self.shard_mb}")


def _require_minari():
    try:
        import minari
        import pyarrow  # noqa: F401  (Minari's Arrow storage)
    except ImportError as e:
        raise MissingPackageError(f"Minari interchange needs minari with its Arrow storage ({e.name} is not "
                                  "installed): pip install 'cosmos_sim[minari]'") from None
    return minari


def _id_part(text: str) -> str:
    """`text` as one part of a Minari dataset id ([-_A-Za-z0-9])."""
    part = re.sub(r"[^-\w]+", "_", text.lower()).strip("_-")
    return re.sub(r"-v(\d+)$", r"_v\1", part) or "dataset"


def minari_dataset_id(world: str, name: str, version: int = 0) -> str:
    """`cosmos_sim/<world>/<name>-v<version>`: the id our Minari exports get."""
    return f"{MINARI_NAMESPACE}/{_id_part(world)}/{_id_part(name)}-v{int(version)}"


@contextlib.contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    """Minari reads its root from MINARI_DATASETS_PATH on every call: point it at `root` for the block."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def _minari_env_spec(world, manifest: dict, image_size: tuple[int, int]):
    """The Gymnasium spec of the env the data came from, or None for a Gymnasium-env world (see the module doc)."""
    import gymnasium as gym

    from cosmos_sim.envs.registration import env_id

    if world_kind(world) == GYM_ENV:
        return None
    base = gym.spec(env_id(world.name))
    collection = manifest.get("collection", {})
    h, w = image_size
    kwargs = {**base.kwargs, "backend": collection.get("backend", "mujoco"), "image_size": h if h == w else [h, w]}
    if collection.get("camera", "fixed") != "fixed":
        kwargs["camera"] = "random"
    return dataclasses.replace(base, kwargs=kwargs)


def _minari_spaces(spec: EpisodeSpec, env_spec=None):
    """The dataset's observation and action spaces: the env's own where there is one (checked against the data)."""
    import gymnasium as gym
    from gymnasium import spaces

    h, w = spec.image_size
    obs = spaces.Dict({"pixels": spaces.Box(0, 255, (h, w, 3), np.uint8),
                       "state": spaces.Box(-np.inf, np.inf, (spec.state_dim,), np.float32)})
    act = spaces.Box(-1.0, 1.0, (spec.action_dim,), np.float32)
    if env_spec is None:
        return obs, act
    env = gym.make(env_spec)
    try:
        env_obs, env_act = env.observation_space, env.action_space
    finally:
        env.close()
    shapes = {k: getattr(env_obs.spaces.get(k), "shape", None) for k in ("pixels", "state")} \
        if isinstance(env_obs, spaces.Dict) else {}
    if shapes != {k: obs[k].shape for k in ("pixels", "state")} or env_act.shape != act.shape:
        raise DatasetMismatchError(f"{env_spec.id} observes {env_obs} and takes {env_act}; the data holds {obs} "
                                   f"and {act}")
    return env_obs, env_act


def _episode_buffer(index: int, ep: dict):
    from minari.data_collector import EpisodeBuffer

    return EpisodeBuffer(id=index, seed=int(ep["metadata"]["seed"]),
                         observations={"pixels": ep["pixels"], "state": ep["states"]}, actions=ep["actions"],
                         rewards=ep["rewards"], terminations=ep["terminated"].astype(bool),
                         truncations=ep["truncated"].astype(bool),
                         infos={"extrinsics": ep["extrinsics"], "fovy": ep["fovy"][:, None]})


def export_minari(directory: str | os.PathLike, out: str | os.PathLike, config: MinariExportConfig | None = None,
                  progress: bool = True) -> dict:
    """Write the dataset at `directory` as a Minari dataset under the Minari root `out` (see the module doc).

    Returns {"format", "dataset_id", "path", "episodes", "steps"}. Never overwrites a Minari dataset."""
    config = own_config(MinariExportConfig, config)
    minari = _require_minari()
    directory, ds = open_source(directory, config.verify)
    world = get_world(ds.world)
    name = config.name or directory.resolve().name
    dataset_id = minari_dataset_id(world.name, name, config.version)
    out = Path(out)
    final = out.joinpath(*dataset_id.split("/"))
    if final.exists():
        raise DatasetError(f"Minari dataset {dataset_id} already exists in {out}; choose another --name or --version")
    out.mkdir(parents=True, exist_ok=True)
    spec = _minari_env_spec(world, ds.manifest, ds.spec.image_size)
    obs_space, act_space = _minari_spaces(ds.spec, spec)
    collection = ds.manifest.get("collection", {})
    description = (f"cosmos_sim {world.name} episodes ({collection.get('backend', '?')} backend, "
                   f"{ds.spec.image_size[0]}x{ds.spec.image_size[1]} frames, policy {collection.get('policy', '?')}) "
                   f"exported from {directory.resolve().name}")
    stage = Path(tempfile.mkdtemp(prefix=".cosmos_sim-export.", dir=out))  # hidden: Minari's listing skips it
    steps, dataset = 0, None
    bar = progress_bar(len(ds), f"export minari {dataset_id}", progress)
    try:
        with _minari_root(stage), warnings.catch_warnings():
            # Minari warns about every optional field left unset (permalink, e-mail, eval env): noise here.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"minari\.")
            for start in range(0, len(ds), MINARI_BATCH):
                eps = [ds[i] for i in range(start, min(start + MINARI_BATCH, len(ds)))]
                buffers = [_episode_buffer(start + k, ep) for k, ep in enumerate(eps)]
                if dataset is None:
                    dataset = minari.create_dataset_from_buffers(
                        dataset_id, buffers, env=spec, observation_space=obs_space, action_space=act_space,
                        algorithm_name=f"cosmos_sim policy {collection.get('policy', 'unknown')}",
                        author="cosmos_sim", description=description, data_format="arrow", jpeg_encoding=False)
                else:
                    dataset.update_dataset_from_buffer(buffers)
                dataset.storage.update_episode_metadata(
                    [{MINARI_EPISODE_KEY: json.dumps(ep["metadata"])} for ep in eps],
                    [start + k for k in range(len(eps))])
                steps += sum(len(ep["actions"]) for ep in eps)
                bar.update(len(eps))
            dataset.storage.update_metadata({MINARI_MANIFEST_KEY: json.dumps(public_manifest(ds.manifest))})
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage.joinpath(*dataset_id.split("/")), final)
        _adopt_namespaces(stage, out)
    finally:
        bar.close()
        ds.close()
        shutil.rmtree(stage, ignore_errors=True)
    return {"format": "minari", "dataset_id": dataset_id, "path": str(final), "episodes": len(ds), "steps": steps}


def _adopt_namespaces(stage: Path, root: Path) -> None:
    """Copy the namespace metadata Minari wrote in `stage` to `root` where `root` has none yet."""
    for meta in stage.rglob("namespace_metadata.json"):
        target = root / meta.relative_to(stage)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(meta, target)


def _open_minari(source: str | os.PathLike):
    """A MinariDataset from a dataset directory (or its data/ folder), else from a local dataset id."""
    minari = _require_minari()
    path = Path(source)
    try:
        if path.exists():
            data = path / "data" if (path / "data" / "metadata.json").is_file() else path
            if not (data / "metadata.json").is_file():
                raise DatasetError(f"{path} is not a Minari dataset (no data/metadata.json)")
            return minari.MinariDataset(data)
        root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        try:
            return minari.load_dataset(str(source), download=False)
        except FileNotFoundError:
            raise MissingPathError(f"no Minari dataset {str(source)!r}: not a path, nor an id in the local Minari "
                                   f"root {root} (MINARI_DATASETS_PATH); nothing is downloaded") from None
    except ValueError as e:  # malformed ids, unsupported Minari versions, unreadable metadata
        raise DatasetError(f"cannot open Minari dataset {str(source)!r}: {e}") from None


def _import_world(dataset, stored: dict | None, config: MinariImportConfig):
    if config.world is not None:
        world = get_world(config.world)
        if stored is not None and stored.get("world") != world.name:
            raise DatasetMismatchError(f"the Minari dataset holds world {stored.get('world')}, not {world.name}")
        return world
    if stored is not None:
        return get_world(stored["world"])
    spec = dataset.env_spec
    match = re.fullmatch(rf"{MINARI_NAMESPACE}/(\w+)-v0", spec.id) if spec is not None else None
    if match is None:
        raise DatasetMismatchError(f"the Minari dataset's env ({spec.id if spec else 'none recorded'}) is not a "
                                   "cosmos_sim world: name the world its data fits with --world")
    return get_world(match.group(1))


def _check_spaces(dataset, world) -> tuple[int, int]:
    """Raise DatasetMismatchError naming what our episodes need and the dataset lacks; return (H, W)."""
    from gymnasium import spaces

    obs, act = dataset.observation_space, dataset.action_space
    if not isinstance(obs, spaces.Dict) or "pixels" not in obs.spaces or "state" not in obs.spaces:
        raise DatasetMismatchError(f"the Minari dataset observes {obs}: importing needs a Dict observation with "
                                   "'pixels' (uint8 [H, W, 3] frames) and 'state'; frames cannot be made from states")
    px, st = obs["pixels"], obs["state"]
    if not isinstance(px, spaces.Box) or px.dtype != np.uint8 or len(px.shape) != 3 or px.shape[2] != 3:
        raise DatasetMismatchError(f"the Minari dataset's pixels are {px}, not uint8 RGB frames [H, W, 3]")
    if not isinstance(st, spaces.Box) or st.shape != (world.state_dim,):
        raise DatasetMismatchError(f"the Minari dataset's state is {st}; world {world.name} has a state of "
                                   f"{world.state_dim} numbers")
    if not isinstance(act, spaces.Box) or act.shape != (world.action_dim,):
        raise DatasetMismatchError(f"the Minari dataset's actions are {act}; world {world.name} takes "
                                   f"{world.action_dim} numbers")
    return int(px.shape[0]), int(px.shape[1])


def _foreign_manifest(dataset, world, image_size: tuple[int, int], seeds: list[int]) -> dict:
    """A manifest for data that was not exported by us: what we know of it, honestly labelled."""
    spec = dataset.env_spec
    kwargs = spec.kwargs if spec is not None and spec.id.startswith(MINARI_NAMESPACE + "/") else {}
    return {
        "format": "cosmos_sim.dataset", "version": 1, "world": world.name, "world_hash": world.definition_hash(),
        "image_size": list(image_size), "action_dim": world.action_dim, "state_dim": world.state_dim,
        "action_names": list(world.action_names), "state_layout": [[n, k] for n, k in world.state_layout.entries],
        "collection": {"world": world.name, "backend": kwargs.get("backend", "minari"),
                       "policy": f"minari:{dataset.id}",
                       "skill": [1.0, 1.0], "base_seed": min(seeds, default=0),
                       "camera": "fixed" if kwargs.get("camera") in (None, "fixed") else "random",
                       "image_size": image_size[0]},
        "source": {"minari": dataset.id}, "shards": [],
    }


def _camera(ep, world, config: MinariImportConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    infos = ep.infos or {}
    if "extrinsics" in infos and "fovy" in infos:
        return (np.asarray(infos["extrinsics"], np.float32).reshape(n, 4, 4),
                np.asarray(infos["fovy"], np.float32).reshape(n))
    if not config.default_camera:
        raise DatasetMismatchError("the Minari dataset has no camera pose per frame (infos 'extrinsics' and 'fovy'); "
                                   "if its frames were rendered from the world's default camera, say so with "
                                   "--default-camera")
    cam = world.default_camera
    return (np.repeat(cam.extrinsics()[None].astype(np.float32), n, 0), np.full(n, cam.fovy, np.float32))


def import_minari(source: str | os.PathLike, out: str | os.PathLike, config: MinariImportConfig | None = None,
                  progress: bool = True) -> dict:
    """Import the Minari dataset `source` (an id in the local Minari root, or a path) into a new dataset at
    `out`; returns its manifest. What is supported, and what is refused, is in the module doc."""
    from cosmos_sim.version import __version__

    if getattr(config, "image_size", None) is not None:  # the flags of `data import` (ImportConfig) hold it
        raise InputError("image_size (--image-size) resizes LeRobot imports; a Minari import keeps its frames as they "
                         "are")
    config = own_config(MinariImportConfig, config)
    dataset = _open_minari(source)
    meta = dataset.storage.metadata
    stored = json.loads(meta[MINARI_MANIFEST_KEY]) if MINARI_MANIFEST_KEY in meta else None
    world = _import_world(dataset, stored, config)
    h, w = _check_spaces(dataset, world)
    spec = EpisodeSpec(image_size=(h, w), action_dim=world.action_dim, state_dim=world.state_dim)
    if stored is not None and tuple(stored.get("image_size", ())) != (h, w):
        raise DatasetMismatchError(f"the Minari dataset's frames are {h}x{w}, its manifest says {stored['image_size']}")
    ids = [int(i) for i in dataset.episode_indices]
    metas = list(dataset.storage.get_episode_metadata(ids))
    recorded = [m.get("seed") for m in metas]
    own_seeds = all(s is not None for s in recorded) and len(set(recorded)) == len(recorded)
    seeds = [int(s) for s in recorded] if own_seeds else ids  # no usable seeds: the episode ids stand in
    manifest = {**stored, "shards": []} if stored is not None else _foreign_manifest(dataset, world, (h, w), seeds)
    limit = config.shard_mb * 2**20
    bar = progress_bar(len(ids), f"import minari {dataset.id}", progress)
    try:
        with staged_directory(out) as tmp:
            buffer: list[dict] = []

            def flush():
                if buffer:
                    name = f"shard-{buffer[0]['metadata']['seed']:09d}-{len(buffer):04d}.safetensors"
                    manifest["shards"].append(write_shard(tmp, name, buffer, spec))
                    buffer.clear()

            for ep, m, seed in zip(dataset.iterate_episodes(ids), metas, seeds, strict=True):
                T = len(ep.rewards)
                pixels = np.asarray(ep.observations["pixels"], np.uint8)
                extrinsics, fovy = _camera(ep, world, config, T + 1)
                if MINARI_EPISODE_KEY in m:
                    metadata = json.loads(m[MINARI_EPISODE_KEY])
                else:
                    metadata = {"world": world.name, "backend": manifest["collection"]["backend"], "seed": seed,
                                "policy": manifest["collection"]["policy"], "image_size": [h, w],
                                "world_hash": world.definition_hash(), "version": __version__,
                                "length": T, "source": {"minari_episode": int(ep.id)}}
                buffer.append({
                    "pixels": pixels, "states": np.asarray(ep.observations["state"], np.float32),
                    "extrinsics": extrinsics, "fovy": fovy, "actions": np.asarray(ep.actions, np.float32),
                    "rewards": np.asarray(ep.rewards, np.float32),
                    "terminated": np.asarray(ep.terminations).astype(np.uint8),
                    "truncated": np.asarray(ep.truncations).astype(np.uint8), "metadata": metadata,
                })
                if sum(a.nbytes for e in buffer for a in e.values() if isinstance(a, np.ndarray)) >= limit:
                    flush()
                bar.update(1)
            flush()
            write_manifest(tmp, manifest)
    finally:
        bar.close()
    return manifest
