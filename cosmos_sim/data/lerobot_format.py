"""LeRobot v3.0 layout, shared by the export (`lerobot_export`) and the import (`lerobot_read`, `lerobot_import`):
path templates, feature keys, our extra columns, the configs, the `features` of an export. What the layout holds
and how our episodes map onto it: `cosmos_sim.data.lerobot`."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from cosmos_sim.config import arg
from cosmos_sim.data.schema import EpisodeSpec
from cosmos_sim.errors import InputError, MissingPackageError

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


@dataclass(frozen=True)
class LeRobotExportConfig:
    fps: int | None = arg(None, "LeRobot frames per second; none: the world's control rate")
    video_quality: float = arg(8.0, "LeRobot H.264 quality, 0 (smallest) to 10 (best)")
    data_file_mb: float = arg(100.0, "LeRobot: start a new data file after about this many MB of raw rows")
    video_file_mb: float = arg(200.0, "LeRobot: start a new video file after about this many MB of raw frames")
    chunks_size: int = arg(1000, "LeRobot: files per chunk directory")
    lossless: bool = arg(False, "LeRobot: lossless H.264 (RGB, qp 0), so frames import back exactly; bigger files "
                                "that browsers do not play")
    verify: bool = arg(True, "verify the dataset (checksums, schema, counts) before exporting")

    def __post_init__(self):
        if (self.fps is not None and self.fps < 1) or self.chunks_size < 1 or self.data_file_mb <= 0 or \
                self.video_file_mb <= 0 or not 0 <= self.video_quality <= 10:
            raise InputError("a LeRobot export needs fps >= 1, chunks_size >= 1, positive file sizes and "
                             "video_quality in [0, 10]")


@dataclass(frozen=True)
class LeRobotImportConfig:
    world: str | None = arg(None, "world the data belongs to; none: the one the dataset records (LeRobot data of no "
                                  "world of ours: a world described from its features)")
    default_camera: bool = arg(False, "frames without camera poses were rendered from the world's default camera")
    shard_mb: float = arg(32.0, "target shard size in MB")
    image_size: int | None = arg(None, "LeRobot: resize every frame to N x N (a world model's tokenizer takes square "
                                       "frames); none: as stored")

    def __post_init__(self):
        if self.shard_mb <= 0:
            raise InputError(f"shard_mb must be > 0, got {self.shard_mb}")
        if self.image_size is not None and not 8 <= int(self.image_size) <= 1024:
            raise InputError(f"image_size must be from 8 to 1024 pixels, got {self.image_size}")


def require_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingPackageError("LeRobot interchange reads and writes parquet with pyarrow, which is not installed: "
                                  "pip install 'cosmos_sim[lerobot]'") from None
    return pyarrow, pyarrow.parquet


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


def frame_crc(frame: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(frame).reshape(-1))


def first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
