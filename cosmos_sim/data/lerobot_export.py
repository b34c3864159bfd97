"""LeRobot v3.0 export: our dataset as LeRobot's files (`export_lerobot`; the layout and how our episodes map onto it:
`cosmos_sim.data.lerobot`)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np

from cosmos_sim.data.dataset import EpisodeDataset
from cosmos_sim.data.interchange_common import open_source, own_config, progress_bar, public_manifest
from cosmos_sim.data.lerobot_format import (
    EXTRA,
    LEROBOT_DATA_PATH,
    LEROBOT_EPISODES_PATH,
    LEROBOT_QUANTILES,
    LEROBOT_STAT_FRAMES,
    LEROBOT_VERSION,
    LEROBOT_VIDEO_PATH,
    OURS,
    LeRobotExportConfig,
    camera_keys,
    frame_crc,
    lerobot_features,
    require_pyarrow,
)
from cosmos_sim.data.merge import staged_directory
from cosmos_sim.worlds import get_world


def _lerobot_fps(world, config: LeRobotExportConfig) -> int:
    return int(config.fps or max(1, round(1.0 / float(getattr(world, "control_dt", 0.1) or 0.1))))


def _success_source(world, ds: EpisodeDataset):
    """How to tell success after each step: the world's rule, the recorded flags, or not at all."""
    if not world.learned_task:
        return lambda ep: np.asarray(world.success(ep["states"][1:].astype(np.float64)), bool).reshape(-1)
    if all("step_success" in ds.metadata(i) for i in range(len(ds))):
        return lambda ep: np.asarray(ep["metadata"]["step_success"], bool)
    return None


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


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="PNG")
    return buf.getvalue()


def _extras(ep: dict, views: int) -> dict:
    """What LeRobot has no place for, as episode-table columns (see `cosmos_sim.data.lerobot`)."""
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
        EXTRA + "pixels_crc": [frame_crc(px[t, v]) for t in range(T) for v in range(views)],
    }


def export_lerobot(directory: str | os.PathLike, out: str | os.PathLike, config: LeRobotExportConfig | None = None,
                   progress: bool = True) -> dict:
    """Write the dataset at `directory` as a LeRobot v3.0 dataset in the new directory `out` (see
    `cosmos_sim.data.lerobot`). Returns {"format", "path", "episodes", "frames", "fps"}."""
    from cosmos_sim.video import VideoWriter

    config = own_config(LeRobotExportConfig, config)

    pa, pq = require_pyarrow()
    directory, ds = open_source(directory, config.verify, views=True)
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
    bar = progress_bar(len(ds), f"export lerobot {Path(out).name}", progress)
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
                {"source": str(directory.resolve()), "manifest": public_manifest(ds.manifest),
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
