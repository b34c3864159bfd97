"""LeRobot v3.0 interchange: our datasets out (`export_lerobot`) and any v3.0 dataset in (`import_lerobot`).

Both sides use LeRobot's `CODEBASE_VERSION "v3.0"` layout, written and read with pyarrow and imageio's ffmpeg
(the lerobot package is needed for neither):

    meta/info.json                      codebase_version, fps, features (dtype, shape, names), path templates
    meta/stats.json, meta/tasks.parquet statistics per feature; task strings
    meta/episodes/chunk-C/file-F.parquet  per episode: length, tasks, dataset_from_index/to_index (its rows),
                                        data/chunk_index + file_index, and per video key chunk/file index and
                                        from/to timestamp of its frames in that video file
    data/chunk-C/file-F.parquet         one row per frame (many episodes per file)
    videos/<video key>/chunk-C/file-F.mp4  the frames, many episodes per file

Export (`cosmos-sim data export --format lerobot DIR OUT`). A row is a LeRobot frame: the observation at step t
(the frame in the video, `observation.state`, the camera: `observation.camera.extrinsics` [16] and
`observation.camera.fovy`), the `action` taken there and what followed it (`next.reward`, `next.done`,
`next.success`). So an episode of T steps gives T rows (as LeRobot's recorder writes them: the frame after the
last action has no action). One view is the video key `observation.image`; V views (`collect --views V`) are
`observation.images.view0..V-1`, with `observation.camera.view<v>.extrinsics` / `.fovy`. Frames go through
lossy H.264 (yuv420p) by default; `--lossless` writes H.264 in RGB at qp 0 (libx264rgb, gbrp), which decodes
to the very frames written. What LeRobot has no place for is kept in the episodes table, so an import gives the
dataset back: `cosmos_sim/seed`, `cosmos_sim/metadata` (our episode metadata, JSON), the frame after the last
action (`cosmos_sim/final_frame`: a PNG per view; `cosmos_sim/final_state`, `cosmos_sim/final_extrinsics`,
`cosmos_sim/final_fovy`), `cosmos_sim/terminated` and `cosmos_sim/truncated` apart (`next.done` is their or),
and the CRC32 of every frame that went into a video (`cosmos_sim/pixels_crc`); the manifest is in
`meta/cosmos_sim.json`.

Import (`cosmos-sim data import --format lerobot DIR OUT`). Our own export (`meta/cosmos_sim.json` and the
episode columns above) comes back array for array, metadata and manifest too: its T rows are the T steps and
the stored final frame, state and camera make frame T+1. Pixels are exact when the export was lossless (a
frame whose CRC then differs is corruption and refused); after a lossy export they come back within H.264's
error, and the manifest says so (`lerobot_import`: how many frames differ).

Any other v3.0 dataset maps as follows. A LeRobot episode of N rows holds N frames and N actions; ours hold
T+1 frames and T actions. We keep the N frames and drop the last row's action (with its `next.*`): T = N - 1,
step t goes from frame t to t+1 with row t's action, `next.reward` and `next.done`/`next.success` (an episode of
one row has no step and is skipped). The last step is `terminated` where its row says done and `truncated`
otherwise (the recording stopped there). Without `next.reward` rewards are 0 (metadata `has_reward: false`);
`next.success` becomes the metadata's `step_success`. One camera per video key (or `image` feature), in the
order of `features`: several become a multi-view dataset (pixels [T+1, V, H, W, 3]); all must share one size
(or pass `--image-size N`: every frame resized to N x N). The world: `--world NAME` maps the data onto one of
ours (its state and action widths, actions already in [-1, 1], one camera: poses from our camera columns or the
world's default camera with `--default-camera`); otherwise the one our export recorded; otherwise a
`DatasetWorld` described from the features (worlds/dataset.py): state width from `observation.state`'s shape
(entries from its `names`), actions from `action` mapped linearly from the range the data spans onto [-1, 1],
the control rate from `fps`, a nominal camera pose per view. It has no simulator: train a world model on it and
compare that open loop against the data (`cosmos-sim compare --model RUN --data DIR`); reward, termination and
success heads are learned from the data. Seeds are the episode indices.

Features we do not need (strings, audio, depth maps, other observations) are ignored and listed in the
manifest's `source.ignored_features`; a needed one that is missing or unusable (`action` and
`observation.state`: numbers; `next.*`: a number or flag per row; cameras: decodable video or images) is a
typed error naming the file and the feature. So is a missing `meta/info.json`, another `codebase_version`, a
video with fewer decodable frames than its rows, or a video ffmpeg cannot read. The output appears whole or
not at all (staged beside it, renamed into place).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosmos_sim.data.dataset import EpisodeDataset
from cosmos_sim.data.interchange import (
    ExportConfig,
    ImportConfig,
    _bar,
    _open_source,
    _public_manifest,
    _require_pyarrow,
)
from cosmos_sim.data.merge import staged_directory
from cosmos_sim.data.schema import EpisodeSpec
from cosmos_sim.data.shards import write_manifest, write_shard
from cosmos_sim.errors import (
    CorruptDataError,
    DatasetError,
    DatasetMismatchError,
    InputError,
    MissingPackageError,
    MissingPathError,
)
from cosmos_sim.worlds import get_world

LEROBOT_VERSION = "v3.0"
LEROBOT_CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
LEROBOT_DATA_PATH = "data/" + LEROBOT_CHUNK_FILE + ".parquet"
LEROBOT_VIDEO_PATH = "videos/{video_key}/" + LEROBOT_CHUNK_FILE + ".mp4"
LEROBOT_EPISODES_PATH = "meta/episodes/" + LEROBOT_CHUNK_FILE + ".parquet"
LEROBOT_VIDEO_KEY = "observation.image"
LEROBOT_VIEW_KEY = "observation.images.view{v}"  # V > 1 views
LEROBOT_QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
LEROBOT_STAT_FRAMES = 100  # frames per episode that image statistics look at (evenly spaced)
OURS = "meta/cosmos_sim.json"
EXTRA = "cosmos_sim/"  # our episode-table columns
DEFAULT_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
NUMERIC = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
           "uint64", "bool")
NEXT_KEYS = ("next.reward", "next.done", "next.success")
IMPORT_BACKEND = "lerobot"  # the backend our manifests name for imported data


# --- export -------------------------------------------------------------------------------------------------
def _lerobot_fps(world, config: ExportConfig) -> int:
    return int(config.fps or max(1, round(1.0 / float(getattr(world, "control_dt", 0.1) or 0.1))))


def _success_source(world, ds: EpisodeDataset):
    """How to tell success after each step: the world's rule, the recorded flags, or not at all."""
    if not world.learned_task:
        return lambda ep: np.asarray(world.success(ep["states"][1:].astype(np.float64)), bool).reshape(-1)
    if all("step_success" in ds.metadata(i) for i in range(len(ds))):
        return lambda ep: np.asarray(ep["metadata"]["step_success"], bool)
    return None


def camera_keys(views: int) -> list[tuple[str, str, str]]:
    """(video key, extrinsics feature, fovy feature) of each of `views` camera views."""
    if views == 1:
        return [(LEROBOT_VIDEO_KEY, "observation.camera.extrinsics", "observation.camera.fovy")]
    return [(LEROBOT_VIEW_KEY.format(v=v), f"observation.camera.view{v}.extrinsics", f"observation.camera.view{v}.fovy")
            for v in range(views)]


def lerobot_features(world, spec: EpisodeSpec, fps: int, success: bool = True, lossless: bool = False) -> dict:
    """LeRobot's `features` for a dataset of `world`: dtype, shape and names of every column and video."""
    h, w = spec.image_size
    vh, vw = h + h % 2, w + w % 2  # H.264 needs even sizes: odd frames are padded by one pixel
    labels = world.state_layout.labels()
    scalar = {"shape": [1], "names": None}
    cams = camera_keys(spec.views)
    features: dict = {}
    for video, _, _ in cams:
        features[video] = {
            "dtype": "video", "shape": [vh, vw, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": vh, "video.width": vw, "video.codec": "h264",
                     "video.pix_fmt": "gbrp" if lossless else "yuv420p", "video.is_depth_map": False,
                     "video.fps": fps, "video.channels": 3, "has_audio": False, "is_depth_map": False}}
    features["observation.state"] = {"dtype": "float32", "shape": [spec.state_dim],
                                     "names": labels if len(labels) == spec.state_dim else None}
    for _, ext, fov in cams:
        features[ext] = {"dtype": "float32", "shape": [16], "names": [f"r{i}c{j}" for i in range(4) for j in range(4)]}
        features[fov] = {"dtype": "float32", **scalar}
    features["action"] = {"dtype": "float32", "shape": [spec.action_dim], "names": list(world.action_names)}
    features["next.reward"] = {"dtype": "float32", **scalar}
    features["next.done"] = {"dtype": "bool", **scalar}
    if success:
        features["next.success"] = {"dtype": "bool", **scalar}
    for key in DEFAULT_KEYS:
        features[key] = {"dtype": "float32" if key == "timestamp" else "int64", **scalar}
    return features


def _view(a: np.ndarray, views: int, v: int) -> np.ndarray:
    """View v of per-frame arrays [N, ...] ([N, V, ...] when V > 1)."""
    return a if views == 1 else a[:, v]


def _columns(ep: dict, e: int, first_index: int, fps: int, success, views: int) -> dict[str, np.ndarray]:
    """An episode's T LeRobot rows, column by column (the videos aside)."""
    T = len(ep["actions"])
    cols = {"observation.state": ep["states"][:T]}
    for v, (_, ext, fov) in enumerate(camera_keys(views)):
        cols[ext] = _view(ep["extrinsics"][:T], views, v).reshape(T, 16)
        cols[fov] = _view(ep["fovy"][:T], views, v)
    cols |= {"action": ep["actions"], "next.reward": ep["rewards"],
             "next.done": (ep["terminated"] | ep["truncated"]).astype(bool)}
    if success is not None:
        cols["next.success"] = success(ep)[:T]
    cols["timestamp"] = (np.arange(T) / fps).astype(np.float32)
    cols["frame_index"] = np.arange(T, dtype=np.int64)
    cols["episode_index"] = np.full(T, e, np.int64)
    cols["index"] = np.arange(first_index, first_index + T, dtype=np.int64)
    cols["task_index"] = np.zeros(T, np.int64)
    return cols


def _arrow_table(pa, cols: dict[str, np.ndarray]):
    arrays = {}
    for key, a in cols.items():
        a = np.ascontiguousarray(a)
        arrays[key] = (pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1]) if a.ndim == 2
                       else pa.array(a))
    return pa.table(arrays)


def _stats(x: np.ndarray, image: bool = False) -> dict[str, np.ndarray]:
    """LeRobot's per-feature statistics: min, max, mean, std, count and quantiles q01..q99 (images: per
    channel in [0, 1], shaped [3, 1, 1])."""
    n = len(x)
    if image:
        idx = np.unique(np.linspace(0, n - 1, min(n, LEROBOT_STAT_FRAMES)).astype(int))
        v = x[idx].reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
    else:
        v = x.reshape(n, -1).astype(np.float64)
    s = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0)}
    s |= {f"q{round(q * 100):02d}": np.quantile(v, q, axis=0) for q in LEROBOT_QUANTILES}
    if image:
        s = {k: a.reshape(-1, 1, 1) for k, a in s.items()}
    s["count"] = np.array([n], np.int64)
    return s


def _aggregate(stats: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Episode statistics into dataset statistics, as LeRobot aggregates them (quantiles as an envelope)."""
    counts = np.array([s["count"][0] for s in stats], np.float64)
    means = np.stack([s["mean"] for s in stats])
    w = counts.reshape(-1, *([1] * (means.ndim - 1)))
    mean = (means * w).sum(0) / counts.sum()
    var = ((np.stack([s["std"] for s in stats]) ** 2 + (means - mean) ** 2) * w).sum(0) / counts.sum()
    out = {"min": np.min([s["min"] for s in stats], 0), "max": np.max([s["max"] for s in stats], 0),
           "mean": mean, "std": np.sqrt(var), "count": np.array([int(counts.sum())], np.int64)}
    for q in LEROBOT_QUANTILES:
        key = f"q{round(q * 100):02d}"
        out[key] = (np.min if q <= 0.5 else np.max)([s[key] for s in stats], 0)
    return out


class _Files:
    """One kind of LeRobot file (data or video) that rolls over to the next chunk/file index past a size."""

    def __init__(self, limit_mb: float, chunks_size: int):
        self.limit, self.chunks_size = limit_mb * 2**20, chunks_size
        self.chunk = self.file = 0
        self.bytes = 0.0
        self.writer = None  # data: a ParquetWriter; videos: one VideoWriter per view

    def next_episode(self, nbytes: int, close) -> None:
        if self.writer is not None and self.bytes + nbytes > self.limit:
            close(self.writer)
            self.writer = None
            self.bytes = 0.0
            self.file += 1
            if self.file == self.chunks_size:
                self.chunk, self.file = self.chunk + 1, 0
        self.bytes += nbytes

    def path(self, template: str, **kw) -> str:
        return template.format(chunk_index=self.chunk, file_index=self.file, **kw)


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _write_parquet(pq, table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def _tasks_table(pa, task: str):
    """meta/tasks.parquet as pandas would write LeRobot's tasks frame: task (the index) -> task_index."""
    pandas_meta = {
        "index_columns": ["task"], "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
             "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                     "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0",
    }
    table = pa.table({"task_index": pa.array([0], pa.int64()), "task": pa.array([task], pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _crc(frame: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(frame).reshape(-1))


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="PNG")
    return buf.getvalue()


def _extras(ep: dict, views: int) -> dict:
    """What LeRobot has no place for, as episode-table columns (see the module doc)."""
    T = len(ep["actions"])
    px = ep["pixels"] if views > 1 else ep["pixels"][:, None]
    return {
        EXTRA + "seed": int(ep["metadata"]["seed"]), EXTRA + "metadata": json.dumps(ep["metadata"]),
        EXTRA + "final_frame": [_png(px[T, v]) for v in range(views)],
        EXTRA + "final_state": ep["states"][T].tolist(),
        EXTRA + "final_extrinsics": ep["extrinsics"][T].reshape(-1).tolist(),
        EXTRA + "final_fovy": np.atleast_1d(ep["fovy"][T]).tolist(),
        EXTRA + "terminated": ep["terminated"].astype(int).tolist(),
        EXTRA + "truncated": ep["truncated"].astype(int).tolist(),
        EXTRA + "pixels_crc": [_crc(px[t, v]) for t in range(T) for v in range(views)],
    }


def export_lerobot(directory: str | os.PathLike, out: str | os.PathLike, config: ExportConfig | None = None,
                   progress: bool = True) -> dict:
    """Write the dataset at `directory` as a LeRobot v3.0 dataset in the new directory `out` (see the module
    doc). Returns {"format", "path", "episodes", "frames", "fps"}."""
    from cosmos_sim.video import VideoWriter

    config = config or ExportConfig()

    pa, pq = _require_pyarrow()
    directory, ds = _open_source(directory, config, views=True)
    world = get_world(ds.world)
    views = ds.spec.views
    cams = camera_keys(views)
    fps = _lerobot_fps(world, config)
    success = _success_source(world, ds)
    features = lerobot_features(world, ds.spec, fps, success=success is not None, lossless=config.lossless)
    task = world.description or world.name
    data_files, video_files = _Files(config.data_file_mb, config.chunks_size), _Files(config.video_file_mb,
                                                                                      config.chunks_size)
    episodes: dict[str, list] = {}
    all_stats: dict[str, list] = {}
    total = 0
    video_frames = 0  # frames already in the current video files
    bar = _bar(len(ds), f"export lerobot {Path(out).name}", progress)
    try:
        with staged_directory(out) as root:
            def close_data(writer):
                writer.close()

            def close_videos(writers):
                nonlocal video_frames
                for w in writers:
                    w.close()
                video_frames = 0

            for e in range(len(ds)):
                ep = ds[e]
                T = len(ep["actions"])
                cols = _columns(ep, e, total, fps, success, views)
                table = _arrow_table(pa, cols)
                data_files.next_episode(table.nbytes, close_data)
                if data_files.writer is None:
                    path = root / data_files.path(LEROBOT_DATA_PATH)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    data_files.writer = pq.ParquetWriter(path, table.schema, compression="snappy")
                data_files.writer.write_table(table)  # one row group per episode, as LeRobot writes them
                frames = [_view(ep["pixels"][:T], views, v) for v in range(views)]
                video_files.next_episode(sum(f.nbytes for f in frames), close_videos)
                if video_files.writer is None:
                    video_files.writer = [VideoWriter(root / video_files.path(LEROBOT_VIDEO_PATH, video_key=key),
                                                      fps=fps, quality=config.video_quality, lossless=config.lossless)
                                          for key, _, _ in cams]
                start = video_frames
                for writer, view_frames in zip(video_files.writer, frames, strict=True):
                    for frame in view_frames:
                        writer.append(frame)
                video_frames += T
                stats = {key: _stats(a) for key, a in cols.items()}
                row = {"episode_index": e, "tasks": [task], "length": T,
                       "data/chunk_index": data_files.chunk, "data/file_index": data_files.file,
                       "dataset_from_index": total, "dataset_to_index": total + T}
                for (key, _, _), view_frames in zip(cams, frames, strict=True):
                    stats[key] = _stats(view_frames, image=True)
                    row |= {f"videos/{key}/chunk_index": video_files.chunk,
                            f"videos/{key}/file_index": video_files.file,
                            f"videos/{key}/from_timestamp": start / fps,
                            f"videos/{key}/to_timestamp": (start + T) / fps}
                row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0, **_extras(ep, views)}
                for key, s in stats.items():
                    all_stats.setdefault(key, []).append(s)
                    for stat, value in s.items():
                        row[f"stats/{key}/{stat}"] = value.tolist()
                for key, value in row.items():
                    episodes.setdefault(key, []).append(value)
                total += T
                bar.update(1)
            data_files.writer.close()
            close_videos(video_files.writer)
            video_files.writer = None
            _write_parquet(pq, pa.table(episodes), root / LEROBOT_EPISODES_PATH.format(chunk_index=0, file_index=0))
            _write_parquet(pq, _tasks_table(pa, task), root / "meta" / "tasks.parquet")
            stats = {key: {k: v.tolist() for k, v in _aggregate(s).items()} for key, s in all_stats.items()}
            info = {
                "codebase_version": LEROBOT_VERSION,
                "robot_type": f"cosmos_sim.{getattr(world, 'short_name', world.name)}",
                "total_episodes": len(ds), "total_frames": total, "total_tasks": 1,
                "chunks_size": config.chunks_size, "data_files_size_in_mb": _number(config.data_file_mb),
                "video_files_size_in_mb": _number(config.video_file_mb), "fps": fps,
                "splits": {"train": f"0:{len(ds)}"},
                "data_path": LEROBOT_DATA_PATH, "video_path": LEROBOT_VIDEO_PATH, "features": features,
            }
            (root / "meta" / "info.json").write_text(json.dumps(info, indent=4) + "\n")
            (root / "meta" / "stats.json").write_text(json.dumps(stats, indent=4) + "\n")
            (root / OURS).write_text(json.dumps(
                {"source": str(directory.resolve()), "manifest": _public_manifest(ds.manifest),
                 "lossless": bool(config.lossless), "views": views}, indent=1) + "\n")
    except BaseException:
        if data_files.writer is not None:
            with contextlib.suppress(Exception):
                data_files.writer.close()
        for w in video_files.writer or []:
            with contextlib.suppress(Exception):
                w.abort()  # drops its temp file
        raise
    finally:
        bar.close()
        ds.close()
    return {"format": "lerobot", "path": str(out), "episodes": len(ds), "frames": total, "fps": fps}


# --- import: what the dataset holds ---------------------------------------------------------------------------
@dataclass
class _Source:
    """A LeRobot v3.0 dataset's layout, checked before anything is decoded or written."""

    root: Path
    info: dict
    fps: float
    cameras: list[str]  # video or image keys, in the order of `features`: the views
    kinds: dict[str, str]  # camera key -> "video" | "image"
    widths: dict[str, int]  # action, observation.state
    present: set[str]  # the next.* features the dataset has
    ignored: dict[str, str] = field(default_factory=dict)  # feature -> why it is left out
    episodes: list[dict] = field(default_factory=list)  # episode-table rows, by episode_index
    ours: dict | None = None  # meta/cosmos_sim.json of our own export

    @property
    def info_path(self) -> Path:
        return self.root / "meta" / "info.json"

    def data_file(self, ep: dict) -> Path:
        return self.root / self.info["data_path"].format(chunk_index=int(ep["data/chunk_index"]),
                                                         file_index=int(ep["data/file_index"]))

    def video_file(self, ep: dict, key: str) -> Path:
        return self.root / self.info["video_path"].format(video_key=key,
                                                          chunk_index=int(ep[f"videos/{key}/chunk_index"]),
                                                          file_index=int(ep[f"videos/{key}/file_index"]))

    def video_fps(self, key: str) -> float:
        return float((self.info["features"][key].get("info") or {}).get("video.fps") or self.fps)


def _read_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise DatasetError(f"{root} is not a LeRobot dataset: {path} is missing")
    try:
        info = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptDataError(f"{path}: unreadable JSON ({e})") from None
    if not isinstance(info, dict):
        raise CorruptDataError(f"{path}: not a JSON object")
    version = info.get("codebase_version")
    if version != LEROBOT_VERSION:
        raise DatasetError(f"{path}: codebase_version {version!r}; only LeRobot {LEROBOT_VERSION} datasets are read "
                           "(convert older ones with lerobot's lerobot/datasets/v30/convert_dataset_v21_to_v30.py)")
    for key in ("fps", "features", "data_path"):
        if key not in info:
            raise DatasetError(f"{path}: no {key!r}, which every LeRobot v3.0 dataset has")
    if not isinstance(info["fps"], (int, float)) or not info["fps"] > 0:
        raise DatasetError(f"{path}: fps {info['fps']!r} is not a positive number")
    if not isinstance(info["features"], dict):
        raise DatasetError(f"{path}: features must be an object of name -> {{dtype, shape, names}}")
    return info


def _width(path: Path, key: str, ft: dict) -> int:
    """The number of values per row of a numeric feature (shape [n], or [] / [1] for a scalar)."""
    shape = ft.get("shape")
    if not isinstance(shape, (list, tuple)) or not all(isinstance(s, int) and s >= 1 for s in shape) or len(shape) > 1:
        raise DatasetMismatchError(f"{path}: feature {key!r} has shape {shape!r}; an import needs a vector [n] (or a "
                                   "scalar [1]) per row")
    return int(shape[0]) if shape else 1


def _classify(root: Path, info: dict) -> _Source:
    """Which features the import uses (and checks), and which it leaves out."""
    path = root / "meta" / "info.json"
    features = info["features"]
    src = _Source(root=root, info=info, fps=float(info["fps"]), cameras=[], kinds={}, widths={}, present=set())
    for key, ft in features.items():
        dtype = ft.get("dtype") if isinstance(ft, dict) else None
        if key in DEFAULT_KEYS or key.startswith("observation.camera."):  # our camera poses: read where used
            continue
        if key in ("action", "observation.state"):
            if dtype not in NUMERIC:
                raise DatasetMismatchError(f"{path}: feature {key!r} has dtype {dtype!r}; an import needs numbers "
                                           f"({', '.join(NUMERIC)})")
            src.widths[key] = _width(path, key, ft)
        elif key in NEXT_KEYS:
            if dtype not in NUMERIC or _width(path, key, ft) != 1:
                raise DatasetMismatchError(f"{path}: feature {key!r} has dtype {dtype!r}, shape {ft.get('shape')!r}; "
                                           "an import needs one number or flag per row")
            src.present.add(key)
        elif dtype in ("video", "image"):
            extra = ft.get("info") or {}
            if extra.get("video.is_depth_map") or extra.get("is_depth_map"):
                src.ignored[key] = "a depth map"
                continue
            src.cameras.append(key)
            src.kinds[key] = dtype
        else:
            src.ignored[key] = f"dtype {dtype!r}: not used" if dtype in (*NUMERIC, "string", "audio") else \
                f"dtype {dtype!r}: unknown, not used"
    for key in ("action", "observation.state"):
        if key not in src.widths:
            raise DatasetMismatchError(f"{path}: no feature {key!r}; an import needs the actions and the robot's state "
                                       "(observation.state) of every frame")
    if not src.cameras:
        raise DatasetMismatchError(f"{path}: no camera (no video or image feature); a world model learns from frames")
    if any(src.kinds[k] == "video" for k in src.cameras) and not info.get("video_path"):
        raise DatasetError(f"{path}: video features but no video_path template")
    return src


def _read_episodes(pq, src: _Source) -> None:
    """The episode table (meta/episodes/chunk-*/file-*.parquet), only the columns the import reads."""
    folder = src.root / "meta" / "episodes"
    files = sorted(folder.glob("chunk-*/file-*.parquet"))
    if not files:
        raise DatasetError(f"{folder} holds no episode table (chunk-*/file-*.parquet)")
    needed = ["episode_index", "dataset_from_index", "dataset_to_index", "data/chunk_index", "data/file_index"]
    for key in src.cameras:
        if src.kinds[key] == "video":
            needed += [f"videos/{key}/chunk_index", f"videos/{key}/file_index", f"videos/{key}/from_timestamp"]
    rows: list[dict] = []
    for f in files:
        try:
            names = pq.read_schema(f).names
            missing = [c for c in needed if c not in names]
            if missing:
                raise DatasetError(f"{f}: no column {missing[0]!r} in the episode table")
            cols = needed + [c for c in names if (c in ("length", "tasks") or c.startswith(EXTRA)) and c not in needed]
            rows += pq.read_table(f, columns=cols).to_pylist()
        except (OSError, ValueError) as e:  # pyarrow's ArrowIOError / ArrowInvalid: unreadable parquet
            raise CorruptDataError(f"{f}: unreadable parquet ({_first_line(e)})") from None
    rows.sort(key=lambda r: r["episode_index"])
    indices = [r["episode_index"] for r in rows]
    if len(set(indices)) != len(indices):
        raise DatasetError(f"{folder}: episode indices repeat")
    if not rows:
        raise DatasetError(f"{folder}: the episode table is empty")
    src.episodes = rows


def _read_ours(src: _Source) -> None:
    """Our own export: meta/cosmos_sim.json and every episode's extra columns (else None: read as foreign)."""
    path = src.root / OURS
    if not path.is_file():
        return
    try:
        ours = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptDataError(f"{path}: unreadable JSON ({e})") from None
    needed = ("seed", "metadata", "final_frame", "final_state", "final_extrinsics", "final_fovy", "terminated",
              "truncated", "pixels_crc")
    if all(EXTRA + k in ep for ep in src.episodes for k in needed) and isinstance(ours.get("manifest"), dict):
        src.ours = ours
    elif isinstance(ours.get("manifest"), dict):  # an export from before the final frame was kept: the world is known
        src.ours = {"manifest": ours["manifest"], "partial": True}


# --- import: reading rows and frames --------------------------------------------------------------------------
class _DataRows:
    """Rows of one episode from its data file (each file read once, as episodes come in order)."""

    def __init__(self, pq, src: _Source):
        self.pq, self.src = pq, src
        self.path: Path | None = None
        self.table = None
        self.episode_col: np.ndarray | None = None

    def columns(self) -> list[str]:
        cols = ["episode_index", "frame_index", "action", "observation.state", *sorted(self.src.present)]
        cols += [k for k in self.src.cameras if self.src.kinds[k] == "image"]
        return cols

    def _load(self, path: Path, e: int) -> None:
        if not path.is_file():
            raise DatasetError(f"{path} (the data of episode {e}) is missing")
        try:
            names = self.pq.read_schema(path).names
            wanted = self.columns()
            missing = [c for c in wanted if c not in names]
            if missing:
                raise DatasetError(f"{path}: no column {missing[0]!r} (a feature of meta/info.json)")
            extra = [c for c in ("timestamp", *self._camera_columns()) if c in names]
            self.table = self.pq.read_table(path, columns=wanted + extra)
        except (OSError, ValueError) as e:  # pyarrow's ArrowIOError / ArrowInvalid
            raise CorruptDataError(f"{path}: unreadable parquet ({_first_line(e)})") from None
        self.episode_col = self.table.column("episode_index").to_numpy()
        self.path = path

    def _camera_columns(self) -> list[str]:
        views = len(self.src.cameras)
        return [c for _, ext, fov in camera_keys(views) for c in (ext, fov)]

    def episode(self, ep: dict):
        e = int(ep["episode_index"])
        path = self.src.data_file(ep)
        if path != self.path:
            self._load(path, e)
        idx = np.flatnonzero(self.episode_col == e)
        n = int(ep["dataset_to_index"]) - int(ep["dataset_from_index"])
        if len(idx) != n:
            raise DatasetError(f"{path}: {len(idx)} rows of episode {e}; the episode table says {n} "
                               f"(dataset_from_index {ep['dataset_from_index']} to {ep['dataset_to_index']})")
        rows = self.table.take(idx)
        order = np.argsort(rows.column("frame_index").to_numpy(), kind="stable")
        return rows.take(order), path


def _numbers(rows, key: str, path: Path, e: int, width: int | None = None) -> np.ndarray:
    """A numeric column of an episode's rows as float64 [n, width] (lists and scalars alike); `width`: what
    meta/info.json says each row holds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = rows.column(key).combine_chunks()
    n = len(col)
    where = f"{path}: episode {e}" if e >= 0 else str(path)
    if col.null_count:
        raise DatasetError(f"{where}: {key!r} has missing values")
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type):
        values = col.flatten()
        lengths = np.unique(pc.list_value_length(col).to_numpy(zero_copy_only=False)) if n else np.array([0])
        if values.null_count or len(lengths) != 1:
            raise DatasetError(f"{where}: the rows of {key!r} have missing values or differ in length")
        a = np.asarray(values.to_numpy(zero_copy_only=False), np.float64).reshape(n, int(lengths[0]))
    else:
        a = np.asarray(col.to_numpy(zero_copy_only=False), np.float64).reshape(n, 1)
    if width is not None and n and a.shape[1] != width:
        raise DatasetMismatchError(f"{where}: {key!r} holds {a.shape[1]} numbers per row; meta/info.json says {width}")
    if not np.all(np.isfinite(a)):
        raise DatasetError(f"{where}: {key!r} holds NaN or inf")
    return a


class _Videos:
    """Decodes episodes' frames from their video files, one open reader per camera (episodes in order read on)."""

    def __init__(self):
        self.readers: dict[str, tuple[Path, object]] = {}

    @staticmethod
    def _open(path: Path):
        try:
            import imageio.v2 as iio
            import imageio_ffmpeg
        except ImportError as e:
            raise MissingPackageError(f"decoding LeRobot videos needs imageio with imageio-ffmpeg ({e.name} is not "
                                      "installed): pip install imageio imageio-ffmpeg") from None
        if not path.is_file():
            raise DatasetError(f"{path} is missing")
        try:
            return iio.get_reader(path, format="FFMPEG")
        except Exception as e:  # ffmpeg's errors come as OSError, RuntimeError, ...: all mean "cannot read it"
            raise DatasetError(f"cannot decode video {path}: {_first_line(e)} (ffmpeg {imageio_ffmpeg.get_ffmpeg_exe()}"
                               ": a codec it lacks, or a damaged file)") from None

    def frames(self, key: str, path: Path, indices: np.ndarray, e: int, data_path: Path) -> np.ndarray:
        """Frames at `indices` (increasing) of the video file `path`: uint8 [n, H, W, 3]."""
        have = self.readers.get(key)
        if have is None or have[0] != path:
            if have is not None:
                have[1].close()
            self.readers[key] = (path, self._open(path))
        reader = self.readers[key][1]
        out = []
        for i in indices.tolist():
            try:
                out.append(np.asarray(reader.get_data(int(i)))[..., :3])
            except IndexError:
                raise DatasetError(f"{path} holds fewer decodable frames than the rows of episode {e} in {data_path}: "
                                   f"frame {i} is missing (the episode needs frames {indices[0]} to {indices[-1]}, "
                                   f"{len(indices)} rows)") from None
            except Exception as ex:
                raise DatasetError(f"cannot decode video {path} at frame {i} (episode {e}): "
                                   f"{_first_line(ex)}") from None
        return np.stack(out).astype(np.uint8)

    def close(self) -> None:
        for _, reader in self.readers.values():
            with contextlib.suppress(Exception):
                reader.close()
        self.readers.clear()


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def _image_frames(rows, key: str, root: Path, path: Path, e: int) -> np.ndarray:
    """An `image` feature's frames (PNG or JPEG bytes in the parquet, or files beside it)."""
    from PIL import Image

    out = []
    for i, cell in enumerate(rows.column(key).to_pylist()):
        try:
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            if data is None and isinstance(cell, dict) and cell.get("path"):
                data = (root / cell["path"]).read_bytes()
            if data is None:
                raise ValueError("no bytes and no path")
            out.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        except (OSError, ValueError, TypeError) as ex:
            raise DatasetError(f"{path}: episode {e}, row {i}: image {key!r} cannot be read "
                               f"({_first_line(ex)})") from None
    return np.stack(out).astype(np.uint8)


def _resize(frames: np.ndarray, size: int | None) -> np.ndarray:
    """Frames [n, H, W, 3] at N x N (area resampling to shrink, bilinear to grow); as they are for None."""
    if size is None or frames.shape[1:3] == (size, size):
        return frames
    from PIL import Image

    shrink = frames.shape[1] >= size and frames.shape[2] >= size
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), method)) for f in frames])


def _camera_frames(src: _Source, videos: _Videos, ep: dict, rows, data_path: Path, key: str) -> np.ndarray:
    """The frame of every row of an episode from camera `key`: uint8 [n, H, W, 3]."""
    e = int(ep["episode_index"])
    if src.kinds[key] == "image":
        return _image_frames(rows, key, src.root, data_path, e)
    fps = src.video_fps(key)
    n = rows.num_rows
    ts = (rows.column("timestamp").to_numpy().astype(np.float64) if "timestamp" in rows.column_names
          else rows.column("frame_index").to_numpy() / src.fps)
    indices = np.rint((float(ep[f"videos/{key}/from_timestamp"]) + ts) * fps).astype(np.int64)
    if n and (indices[0] < 0 or np.any(np.diff(indices) <= 0)):
        raise DatasetError(f"{data_path}: episode {e}: timestamps do not increase frame by frame in {key!r}")
    return videos.frames(key, src.video_file(ep, key), indices, e, data_path)


# --- import: the world -----------------------------------------------------------------------------------------
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


def _action_bounds(pq, src: _Source) -> tuple[np.ndarray, np.ndarray]:
    """Per action dimension, the least and greatest value in the data (every row of every data file)."""
    lo = hi = None
    for path in sorted({src.data_file(ep) for ep in src.episodes}):
        if not path.is_file():
            raise DatasetError(f"{path} (a data file of the episode table) is missing")
        try:
            table = pq.read_table(path, columns=["action"])
        except (OSError, ValueError, KeyError) as e:
            raise CorruptDataError(f"{path}: cannot read column 'action' ({_first_line(e)})") from None
        a = _numbers(table, "action", path, -1, src.widths["action"])
        if not len(a):
            continue
        lo = a.min(0) if lo is None else np.minimum(lo, a.min(0))
        hi = a.max(0) if hi is None else np.maximum(hi, a.max(0))
    if lo is None:
        raise DatasetError(f"{src.root}: the data files hold no rows")
    return lo, hi


def dataset_world_for(pq, src: _Source, label: str):
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


def _world(pq, src: _Source, config: ImportConfig):
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


# --- import ---------------------------------------------------------------------------------------------------
def import_lerobot(source: str | os.PathLike, out: str | os.PathLike, config: ImportConfig | None = None,
                   progress: bool = True) -> dict:
    """Import the LeRobot v3.0 dataset in the directory `source` as a new dataset at `out`; returns its manifest.
    How rows, frames and worlds map, and what is refused, is in the module doc."""
    config = config or ImportConfig()
    if config.default_camera and config.world is None:
        raise InputError("--default-camera says the frames came from a world's default camera: name the world with "
                         "--world (a LeRobot dataset's own world has no default camera of ours)")
    _, pq = _require_pyarrow()
    root = Path(source)
    if not root.is_dir():
        raise MissingPathError(f"no LeRobot dataset directory at {root}")
    src = _classify(root, _read_info(root))
    _read_episodes(pq, src)
    _read_ours(src)
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


def _import_ours(pq, src: _Source, out, config: ImportConfig, progress: bool) -> dict:
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
    rows_of, videos = _DataRows(pq, src), _Videos()
    frames_total = differing = 0
    bar = _bar(len(src.episodes), f"import lerobot {src.root.name}", progress)
    try:
        with staged_directory(out) as tmp:
            add = _writer(tmp, manifest, spec, config.shard_mb * 2**20)
            for ep in src.episodes:
                e = int(ep["episode_index"])
                rows, path = rows_of.episode(ep)
                T = rows.num_rows
                px = np.stack([_camera_frames(src, videos, ep, rows, path, key)[:, :h, :w] for key in keys], 1)
                if len(ep[EXTRA + "pixels_crc"]) != T * views or len(ep[EXTRA + "final_frame"]) != views or \
                        len(ep[EXTRA + "terminated"]) != T or len(ep[EXTRA + "truncated"]) != T:
                    raise CorruptDataError(f"{src.root}: episode {e}'s cosmos_sim columns do not fit its {T} rows and "
                                           f"{views} view(s)")
                final = np.stack([_decode_png(b, src.root, e) for b in ep[EXTRA + "final_frame"]])
                if final.shape[1:] != (h, w, 3):
                    raise CorruptDataError(f"{src.root}: episode {e}'s final frame is {final.shape[1:]}, not {h}x{w}")
                crc = np.asarray(ep[EXTRA + "pixels_crc"], np.int64).reshape(T, views)
                bad = np.array([[_crc(px[t, v]) != crc[t, v] for v in range(views)] for t in range(T)])
                if lossless and bad.any():
                    t, v = np.argwhere(bad)[0]
                    raise CorruptDataError(f"{src.video_file(ep, keys[v])}: frame {t} of episode {e} differs from the "
                                           "frame exported (CRC32), though the export was lossless")
                frames_total, differing = frames_total + bad.size, differing + int(bad.sum())
                pixels = np.concatenate([px, final[None]], 0)
                cams = camera_keys(views)
                ext = np.stack([_numbers(rows, x, path, e).reshape(T, 4, 4) for _, x, _ in cams], 1)
                fov = np.stack([_numbers(rows, f, path, e).reshape(T) for _, _, f in cams], 1)
                last = np.asarray(ep[EXTRA + "final_extrinsics"], np.float64).reshape(1, views, 4, 4)
                ext = np.concatenate([ext, last])
                fov = np.concatenate([fov, np.asarray(ep[EXTRA + "final_fovy"], np.float64).reshape(1, views)])
                states = np.concatenate([_numbers(rows, "observation.state", path, e, spec.state_dim),
                                         np.asarray(ep[EXTRA + "final_state"], np.float64)[None]])
                one = (lambda a: a[:, 0]) if views == 1 else (lambda a: a)
                episode = {
                    "pixels": one(pixels).astype(np.uint8), "states": states.astype(np.float32),
                    "extrinsics": one(ext).astype(np.float32), "fovy": one(fov).astype(np.float32),
                    "actions": _numbers(rows, "action", path, e, spec.action_dim).astype(np.float32),
                    "rewards": _numbers(rows, "next.reward", path, e).reshape(T).astype(np.float32)
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
        raise CorruptDataError(f"{root}: episode {e}'s final frame is no readable PNG ({_first_line(ex)})") from None


def _manifest(src: _Source, world, spec: EpisodeSpec, seeds: list[int], skipped: list[int], policy: str) -> dict:
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


def _foreign_camera(src: _Source, world, rows, path: Path, e: int, n: int, config: ImportConfig
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Camera poses [n, V, 4, 4] and fovy [n, V]: nominal per view (a dataset's world), our camera columns, or
    the world's default camera (--default-camera)."""
    poses = getattr(world, "cameras", None) if not world.simulator else None
    if poses is None:
        cams = camera_keys(len(src.cameras))
        if all(x in rows.column_names and f in rows.column_names for _, x, f in cams):
            ext = np.stack([_numbers(rows, x, path, e).reshape(n, 4, 4) for _, x, _ in cams], 1)
            fov = np.stack([_numbers(rows, f, path, e).reshape(n) for _, _, f in cams], 1)
            return ext.astype(np.float32), fov.astype(np.float32)
        if not config.default_camera:
            raise DatasetMismatchError(f"{src.info_path}: no camera pose per frame; if the frames were rendered from "
                                       f"world {world.name}'s default camera, say so with --default-camera")
        poses = (world.default_camera,) * len(src.cameras)
    ext = np.stack([p.extrinsics() for p in poses]).astype(np.float32)
    fov = np.array([p.fovy for p in poses], np.float32)
    return np.repeat(ext[None], n, 0), np.repeat(fov[None], n, 0)


def _import_foreign(pq, src: _Source, world, out, config: ImportConfig, progress: bool) -> dict:
    """Any other v3.0 dataset: N rows -> N frames and the first N-1 actions (see the module doc)."""
    import cosmos_sim

    V = len(src.cameras)
    label = src.root.resolve().name
    policy = f"lerobot:{label}"
    rows_of, videos = _DataRows(pq, src), _Videos()
    seeds = [int(ep["episode_index"]) for ep in src.episodes]
    skipped: list[int] = []
    manifest: dict | None = None
    spec: EpisodeSpec | None = None
    bar = _bar(len(src.episodes), f"import lerobot {src.root.name}", progress)
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
                views = [_resize(_camera_frames(src, videos, ep, rows, path, key), config.image_size)
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
                raw = _numbers(rows, "action", path, e, world.action_dim)[:T]
                actions = world.from_source_action(raw) if not world.simulator else np.clip(raw, -1, 1)
                done = (_numbers(rows, "next.done", path, e).reshape(N)[:T] > 0) if "next.done" in src.present \
                    else np.zeros(T, bool)
                terminated, truncated = done.astype(np.uint8), np.zeros(T, np.uint8)
                if not terminated[-1]:
                    truncated[-1] = 1  # the recording stopped here
                states = _numbers(rows, "observation.state", path, e, world.state_dim).astype(np.float32)
                has_success = "next.success" in src.present
                if has_success:
                    step_success = (_numbers(rows, "next.success", path, e).reshape(N)[:T] > 0).astype(int).tolist()
                elif not world.learned_task:
                    step_success = np.asarray(world.success(states[1:].astype(np.float64)), bool).astype(int).tolist()
                else:
                    step_success = [0] * T
                ext, fov = _foreign_camera(src, world, rows, path, e, N, config)
                one = (lambda a: a[:, 0]) if V == 1 else (lambda a: a)
                task = ep.get("tasks")  # the episode table's task strings: a label
                metadata = {"world": world.name, "backend": manifest["collection"]["backend"], "seed": e,
                            "policy": policy, "image_size": [h, w], "world_hash": world.definition_hash(),
                            "version": cosmos_sim.__version__, "length": T, "diverged": False,
                            "success": bool(step_success[-1]), "has_success": has_success,
                            "step_success": step_success, "has_reward": "next.reward" in src.present,
                            "task": task[0] if isinstance(task, list) and task else task,
                            "source": {"lerobot_episode": e}}
                add({
                    "pixels": one(pixels), "states": states, "extrinsics": one(ext), "fovy": one(fov),
                    "actions": actions.astype(np.float32),
                    "rewards": _numbers(rows, "next.reward", path, e).reshape(N)[:T].astype(np.float32)
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
