"""Videos and image grids: MP4 writers (imageio + ffmpeg), side-by-side tiles with labels, PNGs.

Every write is atomic: frames go to a temporary file beside the target, which replaces the target
with `os.replace` only once the file is complete. An error mid-write leaves no partial file behind
(and an older file at the same path untouched).

Frames are `(H, W, 3)` uint8 arrays. Worlds render at 64×64 by default, so `upscale` (nearest
neighbour) makes them watchable, and `tile` / `grid` put several views side by side with small text
labels drawn with Pillow's built-in default font (no font files are read from the system).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from cosmos_sim.errors import InputError, MissingPathError
from cosmos_sim.fileio import publish

__all__ = ["VideoWriter", "write_mp4", "read_video", "save_png", "upscale", "label", "tile", "grid",
           "pad_to_even", "hold_last"]

_WHITE = (255, 255, 255)
_LABEL_BG = (24, 24, 24)
_GAP_COLOR = (40, 40, 40)


# --- frames ------------------------------------------------------------------------------------
def as_frame(frame) -> np.ndarray:
    """A frame as a contiguous (H, W, 3) uint8 array; grey (H, W), RGBA and float [0, 1] are converted."""
    a = np.asarray(frame)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"a frame must be an (H, W, 3) image, got shape {a.shape}")
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            if not np.all(np.isfinite(a)):
                raise InputError("a frame contains NaN or inf")
            a = np.rint(a * 255.0)  # float frames are read as [0, 1]
        a = np.clip(a, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def upscale(frame, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor (pixels stay crisp)."""
    factor = int(factor)
    if factor < 1:
        raise InputError(f"upscale factor must be a positive integer, got {factor}")
    a = as_frame(frame)
    if factor == 1:
        return a
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)


_FONTS: dict[int, object] = {}


def _font(size: int):
    from PIL import ImageFont

    if size not in _FONTS:
        try:
            _FONTS[size] = ImageFont.load_default(size=size)  # Pillow's embedded font, scalable
        except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
            _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


def label(frame, text: str, *, font_size: int | None = None, position: str = "top",
          fg=_WHITE, bg=_LABEL_BG) -> np.ndarray:
    """The frame with a strip of text above (position="top") or below ("bottom") it.

    The strip is as wide as the frame; text that does not fit is cut at the right edge.
    """
    from PIL import Image, ImageDraw

    if position not in ("top", "bottom"):
        raise InputError(f"label position must be 'top' or 'bottom', got {position!r}")
    a = as_frame(frame)
    h, w = a.shape[:2]
    size = int(font_size) if font_size else int(np.clip(w // 20, 9, 16))
    font = _font(size)
    strip_h = size + 6
    strip = Image.new("RGB", (w, strip_h), tuple(bg))
    ImageDraw.Draw(strip).text((3, 2), str(text), fill=tuple(fg), font=font)
    s = np.asarray(strip, dtype=np.uint8)
    return np.concatenate([s, a] if position == "top" else [a, s], axis=0)


def _pad_to(a: np.ndarray, h: int, w: int, color) -> np.ndarray:
    if a.shape[0] == h and a.shape[1] == w:
        return a
    out = np.empty((h, w, 3), np.uint8)
    out[:] = np.asarray(color, np.uint8)
    out[: a.shape[0], : a.shape[1]] = a
    return out


def grid(rows: Sequence[Sequence], *, labels: Sequence[Sequence[str | None]] | None = None,
         gap: int = 2, gap_color=_GAP_COLOR, scale: int = 1, font_size: int | None = None) -> np.ndarray:
    """Frames arranged in rows (a list of rows of frames), each optionally labelled above.

    Frames may differ in size: each cell is padded to its column's width and its row's height.
    `scale` upscales every frame (nearest neighbour) before labelling, so labels stay readable.
    """
    if len(rows) == 0 or any(len(r) == 0 for r in rows):
        raise InputError("grid needs at least one frame in every row")
    if labels is not None and (len(labels) != len(rows) or any(len(lr) != len(r) for lr, r in zip(labels, rows,
                                                                                                   strict=True))):
        raise InputError("grid labels must have the same shape as the frames")
    cells = []
    for i, row in enumerate(rows):
        out_row = []
        for j, f in enumerate(row):
            a = upscale(f, scale)
            text = labels[i][j] if labels is not None else None
            if text is not None:
                a = label(a, text, font_size=font_size)
            out_row.append(a)
        cells.append(out_row)
    ncols = max(len(r) for r in cells)
    col_w = [max(r[j].shape[1] for r in cells if j < len(r)) for j in range(ncols)]
    row_h = [max(c.shape[0] for c in r) for r in cells]
    gap = max(0, int(gap))
    H = sum(row_h) + gap * (len(cells) - 1)
    W = sum(col_w) + gap * (ncols - 1)
    out = np.empty((H, W, 3), np.uint8)
    out[:] = np.asarray(gap_color, np.uint8)
    y = 0
    for i, r in enumerate(cells):
        x = 0
        for j in range(ncols):
            if j < len(r):
                out[y:y + row_h[i], x:x + col_w[j]] = _pad_to(r[j], row_h[i], col_w[j], gap_color)
            x += col_w[j] + gap
        y += row_h[i] + gap
    return out


def tile(frames: Sequence, *, labels: Sequence[str | None] | None = None, cols: int | None = None,
         gap: int = 2, gap_color=_GAP_COLOR, scale: int = 1, font_size: int | None = None) -> np.ndarray:
    """Frames side by side (`cols=None`: one row), wrapping into a grid after `cols` frames."""
    frames = list(frames)
    if not frames:
        raise InputError("tile needs at least one frame")
    if labels is not None and len(labels) != len(frames):
        raise InputError(f"tile got {len(frames)} frames but {len(labels)} labels")
    cols = len(frames) if cols is None else int(cols)
    if cols < 1:
        raise InputError(f"tile cols must be >= 1, got {cols}")
    rows = [frames[i:i + cols] for i in range(0, len(frames), cols)]
    lab = None if labels is None else [list(labels[i:i + cols]) for i in range(0, len(frames), cols)]
    return grid(rows, labels=lab, gap=gap, gap_color=gap_color, scale=scale, font_size=font_size)


def pad_to_even(frame, color=(0, 0, 0)) -> np.ndarray:
    """Pad the bottom/right edge by one pixel where needed: H.264 (yuv420p) needs even sizes."""
    a = as_frame(frame)
    h, w = a.shape[:2]
    return _pad_to(a, h + h % 2, w + w % 2, color)


def hold_last(sequences: Sequence[Sequence], length: int | None = None) -> list[list]:
    """Sequences of frames padded to a common length by repeating their last frame."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise InputError("hold_last needs at least one frame in every sequence")
    n = max(len(s) for s in sequences) if length is None else int(length)
    return [list(s)[:n] + [s[-1]] * (n - len(s)) for s in sequences]


# --- atomic files ------------------------------------------------------------------------------
def _temp_path(path: Path) -> Path:
    """A fresh temporary path beside `path`, with the same suffix (ffmpeg picks the format from it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


class VideoWriter:
    """Stream frames into an MP4 (H.264) atomically.

        with VideoWriter("out/push.mp4", fps=10) as w:
            for frame in frames:
                w.append(frame)

    The file appears at `path` when the block exits cleanly; if it raises, nothing is written.
    All frames must share one size; odd sizes are padded by one pixel (H.264 needs even sizes).
    `lossless`: H.264 in RGB at qp 0 (libx264rgb, pixel format gbrp): frames decode exactly as written, in
    bigger files that browsers do not play (`quality` is then unused).
    """

    def __init__(self, path: str | os.PathLike, fps: float = 10.0, quality: float = 8.0, lossless: bool = False):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise InputError(f"video path must end in .mp4, got {str(self.path)!r}")
        if not (fps > 0 and np.isfinite(fps)):
            raise InputError(f"fps must be a positive number, got {fps!r}")
        self.fps = float(fps)
        self.quality = float(quality)
        self.lossless = bool(lossless)
        self.frames_written = 0
        self.frame_shape: tuple[int, int] | None = None
        self._tmp: Path | None = None
        self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def append(self, frame) -> None:
        a = pad_to_even(frame)
        if self._writer is None:
            import imageio.v2 as iio

            self._tmp = _temp_path(self.path)
            self.frame_shape = a.shape[:2]
            codec = ({"codec": "libx264rgb", "pixelformat": "rgb24", "quality": None,
                      "output_params": ["-qp", "0", "-preset", "veryfast"]} if self.lossless else
                     {"codec": "libx264", "pixelformat": "yuv420p", "quality": self.quality})
            try:
                self._writer = iio.get_writer(self._tmp, format="FFMPEG", mode="I", fps=self.fps, macro_block_size=1,
                                              ffmpeg_log_level="error", **codec)
            except Exception:
                _discard(self._tmp)
                self._tmp = None
                raise
        elif a.shape[:2] != self.frame_shape:
            self.abort()
            raise InputError(f"all frames of a video must have one size: first was {self.frame_shape}, "
                             f"got {a.shape[:2]}")
        self._writer.append_data(a)
        self.frames_written += 1

    def close(self) -> Path:
        """Finish the file and move it into place. Raises if no frame was appended."""
        if self._writer is None:
            raise InputError(f"no frames were written to {self.path}")
        try:
            self._writer.close()
        except BaseException:
            self._writer = None
            self.abort()
            raise
        self._writer = None
        publish(self._tmp, self.path)
        self._tmp = None
        return self.path

    def abort(self) -> None:
        """Drop what was written so far; `path` is left as it was."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        if self._tmp is not None:
            _discard(self._tmp)
            self._tmp = None


def write_mp4(path: str | os.PathLike, frames: Iterable, fps: float = 10.0, quality: float = 8.0) -> Path:
    """Write frames to an MP4 atomically; returns the path. `frames` may be any iterable (a generator too)."""
    with VideoWriter(path, fps=fps, quality=quality) as w:
        for f in frames:
            w.append(f)
    return w.path


def read_video(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video as a (T, H, W, 3) uint8 array."""
    import imageio.v2 as iio

    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"no video at {path}")
    with iio.get_reader(path, format="FFMPEG") as r:
        return np.stack([np.asarray(f) for f in r])


def save_png(path: str | os.PathLike, image) -> Path:
    """Write an image as PNG atomically; returns the path."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"image path must end in .png, got {str(path)!r}")
    a = as_frame(image)
    tmp = _temp_path(path)
    try:
        Image.fromarray(a).save(tmp, format="PNG")
        publish(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    return path
