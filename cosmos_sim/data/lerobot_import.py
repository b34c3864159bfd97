"""LeRobot v3.0 import: any v3.0 dataset in (`import_lerobot`): our own export back array for array, any other
mapped onto one of our worlds or onto a world described from its features. How rows, frames and worlds map, and
what is refused: `cosmos_sim.data.lerobot`."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from cosmos_sim.data.interchange_common import own_config, progress_bar
from cosmos_sim.data.lerobot_format import (
    EXTRA,
    IMPORT_BACKEND,
    LeRobotImportConfig,
    camera_keys,
    first_line,
    frame_crc,
    require_pyarrow,
)
from cosmos_sim.data.lerobot_read import (
    DataRows,
    Source,
    Videos,
    camera_frames,
    classify,
    read_episodes,
    read_info,
    read_numbers,
    read_ours,
    resize_frames,
)
from cosmos_sim.data.merge import staged_directory
from cosmos_sim.data.schema import EpisodeSpec
from cosmos_sim.data.shards import write_manifest, write_shard
from cosmos_sim.errors import CorruptDataError, DatasetError, DatasetMismatchError, InputError, MissingPathError
from cosmos_sim.worlds import get_world


# --- the world ---------------------------------------------------------------------------------------------------
def _names(ft: dict, n: int) -> list[str] | None:
    """A feature's n entry names (a list, or a dict holding one list), distinct; None where it gives none."""
    names = ft.get("names")
    if isinstance(names, dict):
        lists = [v for v in names.values() if isinstance(v, list)]
        names = lists[0] if len(lists) == 1 else None
    if isinstance(names, list) and len(names) == n and all(isinstance(x, str) and x for x in names) and \
            len(set(names)) == n:
        return [str(x) for x in names]
    return None


def _action_bounds(pq, src: Source) -> tuple[np.ndarray, np.ndarray]:
    """Per action dimension, the least and greatest value in the data (every row of every data file)."""
    lo = hi = None
    for path in sorted({src.data_file(ep) for ep in src.episodes}):
        if not path.is_file():
            raise DatasetError(f"{path} (a data file of the episode table) is missing")
        try:
            table = pq.read_table(path, columns=["action"])
        except (OSError, ValueError, KeyError) as e:
            raise CorruptDataError(f"{path}: cannot read column 'action' ({first_line(e)})") from None
        a = read_numbers(table, "action", path, -1, src.widths["action"])
        if not len(a):
            continue
        lo = a.min(0) if lo is None else np.minimum(lo, a.min(0))
        hi = a.max(0) if hi is None else np.maximum(hi, a.max(0))
    if lo is None:
        raise DatasetError(f"{src.root}: the data files hold no rows")
    return lo, hi


def dataset_world_for(pq, src: Source, label: str):
    """The DatasetWorld of a dataset that is no world of ours (see worlds/dataset.py)."""
    from cosmos_sim.worlds.dataset import dataset_world

    feats = src.info["features"]
    S, A = src.widths["observation.state"], src.widths["action"]
    state_names = _names(feats["observation.state"], S)
    action_names = _names(feats["action"], A) or [f"a{i}" for i in range(A)]
    lo, hi = _action_bounds(pq, src)
    flat = hi - lo < 1e-6  # a constant dimension: centred in a range of 2
    lo, hi = np.where(flat, lo - 1.0, lo), np.where(flat, hi + 1.0, hi)
    steps = max(int(ep["dataset_to_index"]) - int(ep["dataset_from_index"]) - 1 for ep in src.episodes)
    spec = {"state": [[n, 1] for n in state_names] if state_names else [["state", S]], "actions": action_names,
            "low": [float(x) for x in lo], "high": [float(x) for x in hi], "fps": src.fps, "cameras": src.cameras,
            "max_steps": max(1, steps)}
    return dataset_world(label, spec)


def _world(pq, src: Source, config: LeRobotImportConfig):
    """The world the data belongs to: --world, the one our export recorded, or one described from the features."""
    stored = (src.ours or {}).get("manifest", {}).get("world")
    if config.world is not None:
        world = get_world(config.world)
        if stored is not None and stored != world.name:
            raise DatasetMismatchError(f"{src.root} holds world {stored}, not {world.name}")
    elif stored is not None:
        return get_world(stored)
    else:
        return dataset_world_for(pq, src, src.root.resolve().name)
    S, A = src.widths["observation.state"], src.widths["action"]
    if (world.state_dim, world.action_dim) != (S, A):
        raise DatasetMismatchError(f"{src.info_path}: observation.state has {S} numbers and action {A}; world "
                                   f"{world.name} has a state of {world.state_dim} and actions of {world.action_dim}")
    if len(src.cameras) != 1 and src.ours is None:
        raise DatasetMismatchError(f"{src.info_path}: {len(src.cameras)} cameras; data mapped onto world {world.name} "
                                   "needs one (import it without --world: a world described from its features)")
    lo, hi = _action_bounds(pq, src)
    if np.any(lo < -1 - 1e-6) or np.any(hi > 1 + 1e-6):
        raise DatasetMismatchError(f"{src.root}: actions span [{lo.min():.3g}, {hi.max():.3g}]; world {world.name} "
                                   "takes actions in [-1, 1] (import it without --world to have them mapped)")
    return world


# --- import ------------------------------------------------------------------------------------------------------
def import_lerobot(source: str | os.PathLike, out: str | os.PathLike, config: LeRobotImportConfig | None = None,
                   progress: bool = True) -> dict:
    """Import the LeRobot v3.0 dataset in the directory `source` as a new dataset at `out`; returns its manifest.
    How rows, frames and worlds map, and what is refused, is in `cosmos_sim.data.lerobot`."""
    config = own_config(LeRobotImportConfig, config)
    if config.default_camera and config.world is None:
        raise InputError("--default-camera says the frames came from a world's default camera: name the world with "
                         "--world (a LeRobot dataset's own world has no default camera of ours)")
    _, pq = require_pyarrow()
    root = Path(source)
    if not root.is_dir():
        raise MissingPathError(f"no LeRobot dataset directory at {root}")
    src = classify(root, read_info(root))
    read_episodes(pq, src)
    read_ours(src)
    if src.ours is not None and not src.ours.get("partial"):
        return _import_ours(pq, src, out, config, progress)
    world = _world(pq, src, config)
    return _import_foreign(pq, src, world, out, config, progress)


def _writer(tmp: Path, manifest: dict, spec: EpisodeSpec, limit: float):
    buffer: list[dict] = []

    def add(ep: dict | None) -> None:
        if ep is not None:
            buffer.append(ep)
        full = sum(a.nbytes for x in buffer for a in x.values() if isinstance(a, np.ndarray)) >= limit
        if buffer and (ep is None or full):
            name = f"shard-{buffer[0]['metadata']['seed']:09d}-{len(buffer):04d}.safetensors"
            manifest["shards"].append(write_shard(tmp, name, buffer, spec))
            buffer.clear()

    return add


def _import_ours(pq, src: Source, out, config: LeRobotImportConfig, progress: bool) -> dict:
    """Our own export back, array for array (pixels exactly when it was lossless)."""
    stored = src.ours["manifest"]
    if config.world is not None and get_world(config.world).name != stored["world"]:
        raise DatasetMismatchError(f"{src.root} holds world {stored['world']}, not {get_world(config.world).name}")
    spec = EpisodeSpec.from_dict(stored)
    if config.image_size is not None and (config.image_size,) * 2 != tuple(spec.image_size):
        raise InputError(f"{src.root} was exported by cosmos_sim at {spec.image_size[0]}x{spec.image_size[1]}: import "
                         "it as it is (--image-size is for other datasets)")
    views, (h, w) = spec.views, spec.image_size
    keys = [key for key, _, _ in camera_keys(views)]
    if src.cameras != keys:
        raise DatasetMismatchError(f"{src.info_path}: cameras {src.cameras}; the export of {views} view(s) has {keys}")
    lossless = bool(src.ours.get("lossless"))
    manifest = {**stored, "shards": []}
    rows_of, videos = DataRows(pq, src), Videos()
    frames_total = differing = 0
    bar = progress_bar(len(src.episodes), f"import lerobot {src.root.name}", progress)
    try:
        with staged_directory(out) as tmp:
            add = _writer(tmp, manifest, spec, config.shard_mb * 2**20)
            for ep in src.episodes:
                e = int(ep["episode_index"])
                rows, path = rows_of.episode(ep)
                T = rows.num_rows
                px = np.stack([camera_frames(src, videos, ep, rows, path, key)[:, :h, :w] for key in keys], 1)
                if len(ep[EXTRA + "pixels_crc"]) != T * views or len(ep[EXTRA + "final_frame"]) != views or \
                        len(ep[EXTRA + "terminated"]) != T or len(ep[EXTRA + "truncated"]) != T:
                    raise CorruptDataError(f"{src.root}: episode {e}'s cosmos_sim columns do not fit its {T} rows and "
                                           f"{views} view(s)")
                final = np.stack([_decode_png(b, src.root, e) for b in ep[EXTRA + "final_frame"]])
                if final.shape[1:] != (h, w, 3):
                    raise CorruptDataError(f"{src.root}: episode {e}'s final frame is {final.shape[1:]}, not {h}x{w}")
                crc = np.asarray(ep[EXTRA + "pixels_crc"], np.int64).reshape(T, views)
                bad = np.array([[frame_crc(px[t, v]) != crc[t, v] for v in range(views)] for t in range(T)])
                if lossless and bad.any():
                    t, v = np.argwhere(bad)[0]
                    raise CorruptDataError(f"{src.video_file(ep, keys[v])}: frame {t} of episode {e} differs from the "
                                           "frame exported (CRC32), though the export was lossless")
                frames_total, differing = frames_total + bad.size, differing + int(bad.sum())
                pixels = np.concatenate([px, final[None]], 0)
                cams = camera_keys(views)
                ext = np.stack([read_numbers(rows, x, path, e).reshape(T, 4, 4) for _, x, _ in cams], 1)
                fov = np.stack([read_numbers(rows, f, path, e).reshape(T) for _, _, f in cams], 1)
                last = np.asarray(ep[EXTRA + "final_extrinsics"], np.float64).reshape(1, views, 4, 4)
                ext = np.concatenate([ext, last])
                fov = np.concatenate([fov, np.asarray(ep[EXTRA + "final_fovy"], np.float64).reshape(1, views)])
                states = np.concatenate([read_numbers(rows, "observation.state", path, e, spec.state_dim),
                                         np.asarray(ep[EXTRA + "final_state"], np.float64)[None]])
                one = (lambda a: a[:, 0]) if views == 1 else (lambda a: a)
                episode = {
                    "pixels": one(pixels).astype(np.uint8), "states": states.astype(np.float32),
                    "extrinsics": one(ext).astype(np.float32), "fovy": one(fov).astype(np.float32),
                    "actions": read_numbers(rows, "action", path, e, spec.action_dim).astype(np.float32),
                    "rewards": read_numbers(rows, "next.reward", path, e).reshape(T).astype(np.float32)
                    if "next.reward" in src.present else np.zeros(T, np.float32),
                    "terminated": np.asarray(ep[EXTRA + "terminated"], np.uint8),
                    "truncated": np.asarray(ep[EXTRA + "truncated"], np.uint8),
                    "metadata": json.loads(ep[EXTRA + "metadata"]),
                }
                if int(episode["metadata"]["seed"]) != int(ep[EXTRA + "seed"]):
                    raise CorruptDataError(f"{src.root}: episode {e}'s seed differs between its columns and metadata")
                add(episode)
                bar.update(1)
            add(None)
            if differing:
                manifest["lerobot_import"] = {"source": str(src.root.resolve()), "pixels": "lossy (H.264)",
                                              "frames": frames_total, "frames_differing": differing}
            write_manifest(tmp, manifest)
    finally:
        bar.close()
        videos.close()
    return manifest


def _decode_png(data: bytes, root: Path, e: int) -> np.ndarray:
    from PIL import Image

    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except (OSError, ValueError) as ex:
        raise CorruptDataError(f"{root}: episode {e}'s final frame is no readable PNG ({first_line(ex)})") from None


def _manifest(src: Source, world, spec: EpisodeSpec, seeds: list[int], skipped: list[int], policy: str) -> dict:
    stored = (src.ours or {}).get("manifest") or {}
    return {
        "format": "cosmos_sim.dataset", "version": 1, "world": world.name, "world_hash": world.definition_hash(),
        "image_size": list(spec.image_size), "action_dim": world.action_dim, "state_dim": world.state_dim,
        "action_names": list(world.action_names), "state_layout": [[n, k] for n, k in world.state_layout.entries],
        "collection": {"world": world.name, "backend": stored.get("collection", {}).get("backend", IMPORT_BACKEND),
                       "policy": policy, "skill": [1.0, 1.0], "base_seed": min(seeds, default=0), "camera": "fixed",
                       "image_size": spec.image_size[0]},
        "source": {"lerobot": str(src.root.resolve()), "codebase_version": src.info.get("codebase_version"),
                   "robot_type": src.info.get("robot_type"), "fps": src.fps, "cameras": list(src.cameras),
                   "has_reward": "next.reward" in src.present, "has_success": "next.success" in src.present,
                   "ignored_features": dict(src.ignored), "skipped_episodes": skipped},
        "shards": [],
    } | ({"views": spec.views} if spec.views > 1 else {})


def _foreign_camera(src: Source, world, rows, path: Path, e: int, n: int, config: LeRobotImportConfig
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Camera poses [n, V, 4, 4] and fovy [n, V]: nominal per view (a dataset's world), our camera columns, or
    the world's default camera (--default-camera)."""
    poses = getattr(world, "cameras", None) if not world.simulator else None
    if poses is None:
        cams = camera_keys(len(src.cameras))
        if all(x in rows.column_names and f in rows.column_names for _, x, f in cams):
            ext = np.stack([read_numbers(rows, x, path, e).reshape(n, 4, 4) for _, x, _ in cams], 1)
            fov = np.stack([read_numbers(rows, f, path, e).reshape(n) for _, _, f in cams], 1)
            return ext.astype(np.float32), fov.astype(np.float32)
        if not config.default_camera:
            raise DatasetMismatchError(f"{src.info_path}: no camera pose per frame; if the frames were rendered from "
                                       f"world {world.name}'s default camera, say so with --default-camera")
        poses = (world.default_camera,) * len(src.cameras)
    ext = np.stack([p.extrinsics() for p in poses]).astype(np.float32)
    fov = np.array([p.fovy for p in poses], np.float32)
    return np.repeat(ext[None], n, 0), np.repeat(fov[None], n, 0)


def _import_foreign(pq, src: Source, world, out, config: LeRobotImportConfig, progress: bool) -> dict:
    """Any other v3.0 dataset: N rows -> N frames and the first N-1 actions (see `cosmos_sim.data.lerobot`)."""
    from cosmos_sim.version import __version__

    V = len(src.cameras)
    label = src.root.resolve().name
    policy = f"lerobot:{label}"
    rows_of, videos = DataRows(pq, src), Videos()
    seeds = [int(ep["episode_index"]) for ep in src.episodes]
    skipped: list[int] = []
    manifest: dict | None = None
    spec: EpisodeSpec | None = None
    bar = progress_bar(len(src.episodes), f"import lerobot {src.root.name}", progress)
    try:
        with staged_directory(out) as tmp:
            add = None
            for ep in src.episodes:
                e = int(ep["episode_index"])
                rows, path = rows_of.episode(ep)
                N = rows.num_rows
                if N < 2:  # one frame: no step
                    skipped.append(e)
                    bar.update(1)
                    continue
                T = N - 1
                views = [resize_frames(camera_frames(src, videos, ep, rows, path, key), config.image_size)
                         for key in src.cameras]
                sizes = {v.shape[1:3] for v in views}
                if len(sizes) > 1:
                    raise DatasetMismatchError(f"{src.root}: cameras {src.cameras} have frames of sizes "
                                               f"{sorted(sizes)}; pass --image-size N to resize them all to N x N")
                h, w = views[0].shape[1:3]
                if spec is None:
                    spec = EpisodeSpec(image_size=(h, w), action_dim=world.action_dim, state_dim=world.state_dim,
                                       views=V)
                    manifest = _manifest(src, world, spec, [s for s in seeds if s not in skipped], [], policy)
                    add = _writer(tmp, manifest, spec, config.shard_mb * 2**20)
                elif (h, w) != spec.image_size:
                    raise DatasetMismatchError(f"{src.root}: episode {e}'s frames are {h}x{w}, earlier episodes' "
                                               f"{spec.image_size[0]}x{spec.image_size[1]}; pass --image-size N")
                pixels = np.stack(views, 1)
                raw = read_numbers(rows, "action", path, e, world.action_dim)[:T]
                actions = world.from_source_action(raw) if not world.simulator else np.clip(raw, -1, 1)
                done = (read_numbers(rows, "next.done", path, e).reshape(N)[:T] > 0) if "next.done" in src.present \
                    else np.zeros(T, bool)
                terminated, truncated = done.astype(np.uint8), np.zeros(T, np.uint8)
                if not terminated[-1]:
                    truncated[-1] = 1  # the recording stopped here
                states = read_numbers(rows, "observation.state", path, e, world.state_dim).astype(np.float32)
                has_success = "next.success" in src.present
                if has_success:
                    step_success = (read_numbers(rows, "next.success", path, e).reshape(N)[:T] > 0).astype(int).tolist()
                elif not world.learned_task:
                    step_success = np.asarray(world.success(states[1:].astype(np.float64)), bool).astype(int).tolist()
                else:
                    step_success = [0] * T
                ext, fov = _foreign_camera(src, world, rows, path, e, N, config)
                one = (lambda a: a[:, 0]) if V == 1 else (lambda a: a)
                task = ep.get("tasks")  # the episode table's task strings: a label
                metadata = {"world": world.name, "backend": manifest["collection"]["backend"], "seed": e,
                            "policy": policy, "image_size": [h, w], "world_hash": world.definition_hash(),
                            "version": __version__, "length": T, "diverged": False,
                            "success": bool(step_success[-1]), "has_success": has_success,
                            "step_success": step_success, "has_reward": "next.reward" in src.present,
                            "task": task[0] if isinstance(task, list) and task else task,
                            "source": {"lerobot_episode": e}}
                add({
                    "pixels": one(pixels), "states": states, "extrinsics": one(ext), "fovy": one(fov),
                    "actions": actions.astype(np.float32),
                    "rewards": read_numbers(rows, "next.reward", path, e).reshape(N)[:T].astype(np.float32)
                    if "next.reward" in src.present else np.zeros(T, np.float32),
                    "terminated": terminated, "truncated": truncated, "metadata": metadata,
                })
                bar.update(1)
            if manifest is None:
                raise DatasetError(f"{src.root}: no episode has two frames or more (nothing to make a step of)")
            add(None)
            manifest["source"]["skipped_episodes"] = skipped
            manifest["collection"]["base_seed"] = min(s for s in seeds if s not in skipped)
            write_manifest(tmp, manifest)
    finally:
        bar.close()
        videos.close()
    return manifest
