"""LeRobot v3.0 import, reading: what a dataset holds (`read_info`, `classify`, `read_episodes`, `read_ours`: checked
before anything is decoded or written) and its rows and frames (`DataRows`, `read_numbers`, `Videos`,
`camera_frames`). What is read and what is refused: `cosmos_sim.data.lerobot`."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosmos_sim.data.lerobot_format import (
    DEFAULT_KEYS,
    EXTRA,
    LEROBOT_VERSION,
    NEXT_KEYS,
    NUMERIC,
    OURS,
    camera_keys,
    first_line,
)
from cosmos_sim.errors import CorruptDataError, DatasetError, DatasetMismatchError, MissingPackageError
from cosmos_sim.fileio import read_json_file


# --- what the dataset holds --------------------------------------------------------------------------------------
@dataclass
class Source:
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


def read_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    info = read_json_file(path, f"{root} is not a LeRobot dataset: {path} is missing")
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


def classify(root: Path, info: dict) -> Source:
    """Which features the import uses (and checks), and which it leaves out."""
    path = root / "meta" / "info.json"
    features = info["features"]
    src = Source(root=root, info=info, fps=float(info["fps"]), cameras=[], kinds={}, widths={}, present=set())
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


def read_episodes(pq, src: Source) -> None:
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
            raise CorruptDataError(f"{f}: unreadable parquet ({first_line(e)})") from None
    rows.sort(key=lambda r: r["episode_index"])
    indices = [r["episode_index"] for r in rows]
    if len(set(indices)) != len(indices):
        raise DatasetError(f"{folder}: episode indices repeat")
    if not rows:
        raise DatasetError(f"{folder}: the episode table is empty")
    src.episodes = rows


def read_ours(src: Source) -> None:
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


# --- rows and frames ---------------------------------------------------------------------------------------------
class DataRows:
    """Rows of one episode from its data file (each file read once, as episodes come in order)."""

    def __init__(self, pq, src: Source):
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
            raise CorruptDataError(f"{path}: unreadable parquet ({first_line(e)})") from None
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


def read_numbers(rows, key: str, path: Path, e: int, width: int | None = None) -> np.ndarray:
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


class Videos:
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
            raise DatasetError(f"cannot decode video {path}: {first_line(e)} (ffmpeg {imageio_ffmpeg.get_ffmpeg_exe()}"
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
                                   f"{first_line(ex)}") from None
        return np.stack(out).astype(np.uint8)

    def close(self) -> None:
        for _, reader in self.readers.values():
            with contextlib.suppress(Exception):
                reader.close()
        self.readers.clear()


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
                               f"({first_line(ex)})") from None
    return np.stack(out).astype(np.uint8)


def resize_frames(frames: np.ndarray, size: int | None) -> np.ndarray:
    """Frames [n, H, W, 3] at N x N (area resampling to shrink, bilinear to grow); as they are for None."""
    if size is None or frames.shape[1:3] == (size, size):
        return frames
    from PIL import Image

    shrink = frames.shape[1] >= size and frames.shape[2] >= size
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), method)) for f in frames])


def camera_frames(src: Source, videos: Videos, ep: dict, rows, data_path: Path, key: str) -> np.ndarray:
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
