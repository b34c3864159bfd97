"""Shards (safetensors files of many episodes) and the manifest that lists them.

Integrity without reading everything: the manifest keeps each shard's sha256 (for `verify`), its
size and the sha256 of its header (checked on every open). The header holds CRC32s of every frame
of pixels and of each episode's small arrays, checked whenever they are read. So one flipped byte
anywhere in a shard raises `CorruptDataError` before wrong data is returned.

Reads use `os.pread` on byte ranges, not a memory map, so a reader's RSS stays bounded by what
it holds rather than by how much of the dataset it has touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from safetensors.numpy import save as st_save

from cosmos_sim.data.schema import FRAME_KEYS, SCHEMA_VERSION, STEP_KEYS, EpisodeSpec
from cosmos_sim.errors import CorruptDataError, DatasetError
from cosmos_sim.fileio import atomic_write_bytes, read_json_file

MANIFEST = "manifest.json"
SMALL_KEYS = ("states", "extrinsics", "fovy", "actions", "rewards", "terminated", "truncated")
_DTYPES = {"U8": np.uint8, "U32": np.uint32, "I64": np.int64, "F32": np.float32}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8).reshape(-1))


def encode_shard(episodes: list[dict], spec: EpisodeSpec) -> tuple[bytes, dict]:
    """Episodes -> (safetensors bytes, manifest entry without the file name)."""
    if not episodes:
        raise DatasetError("a shard needs at least one episode")
    for ep in episodes:
        spec.validate(ep)
    tensors = {k: np.concatenate([ep[k] for ep in episodes]) for k in (*FRAME_KEYS, *STEP_KEYS)}
    steps = np.array([len(ep["actions"]) for ep in episodes], dtype=np.int64)
    tensors["step_offsets"] = np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)
    tensors["frame_offsets"] = np.concatenate([[0], np.cumsum(steps + 1)]).astype(np.int64)
    tensors["pixels_crc"] = np.array([_crc(f) for f in tensors["pixels"]], dtype=np.uint32)
    tensors["episode_crc"] = np.array([[_crc(ep[k]) for k in SMALL_KEYS] for ep in episodes], dtype=np.uint32)
    meta = {"schema_version": str(SCHEMA_VERSION), "spec": json.dumps(spec.to_dict()),
            "episodes": json.dumps([ep["metadata"] for ep in episodes])}
    data = st_save(tensors, metadata=meta)
    entry = shard_entry(data, [ep["metadata"] for ep in episodes], int(tensors["frame_offsets"][-1]),
                        int(tensors["step_offsets"][-1]))
    return data, entry


def shard_entry(data: bytes, metadata: list[dict], frames: int, steps: int) -> dict:
    """A shard's manifest entry (without its file name) from its bytes and contents."""
    (n,) = struct.unpack("<Q", data[:8])
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "header_sha256": hashlib.sha256(data[: 8 + n]).hexdigest(),
        "bytes": len(data),
        "episodes": len(metadata),
        "frames": frames,
        "steps": steps,
        "seeds": [int(m["seed"]) for m in metadata],
    }


def write_shard(directory: str | os.PathLike, name: str, episodes: list[dict], spec: EpisodeSpec) -> dict:
    """Write one shard atomically; returns its manifest entry."""
    data, entry = encode_shard(episodes, spec)
    atomic_write_bytes(Path(directory) / name, data)
    return {"file": name, **entry}


class ShardReader:
    """Random access into one shard with checksum checks; opened lazily, cheap to keep around."""

    def __init__(self, path: str | os.PathLike, entry: dict | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"shard {self.path} listed in the manifest is missing")
        size = self.path.stat().st_size
        if entry is not None and "bytes" in entry and size != entry["bytes"]:
            raise CorruptDataError(f"shard {self.path.name}: {size} bytes on disk, manifest says {entry['bytes']} "
                                   "(truncated or overwritten)")
        self._fd = os.open(self.path, os.O_RDONLY)
        try:
            self._parse_header(size, entry)
            self._load_small()
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    def _parse_header(self, size: int, entry: dict | None) -> None:
        head = os.pread(self._fd, 8, 0)
        if len(head) < 8:
            raise CorruptDataError(f"shard {self.path.name}: file too short to be safetensors")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8 or n > 1 << 30:
            raise CorruptDataError(f"shard {self.path.name}: bad safetensors header length {n}")
        raw = os.pread(self._fd, n, 8)
        if entry is not None and "header_sha256" in entry and \
                hashlib.sha256(head + raw).hexdigest() != entry["header_sha256"]:
            raise CorruptDataError(f"shard {self.path.name}: header checksum mismatch")
        try:
            header = json.loads(raw)
            meta = header.pop("__metadata__")
            self.spec = EpisodeSpec.from_dict(json.loads(meta["spec"]))
            self.metadata: list[dict] = json.loads(meta["episodes"])
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptDataError(f"shard {self.path.name}: unreadable header ({e})") from None
        self._data_start = 8 + n
        self._tensors = {}
        for key, info in header.items():
            try:
                dtype = np.dtype(_DTYPES[info["dtype"]])
                shape = tuple(int(s) for s in info["shape"])
                begin, end = (int(v) for v in info["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise CorruptDataError(f"shard {self.path.name}: bad entry for tensor {key!r}") from None
            if end - begin != int(np.prod(shape)) * dtype.itemsize or end + self._data_start > size or begin < 0:
                raise CorruptDataError(f"shard {self.path.name}: tensor {key!r} lies outside the file (truncated?)")
            self._tensors[key] = (dtype, shape, begin)
        needed = (*FRAME_KEYS, *STEP_KEYS, "step_offsets", "frame_offsets", "pixels_crc", "episode_crc")
        missing = [k for k in needed if k not in self._tensors]
        if missing:
            raise CorruptDataError(f"shard {self.path.name}: missing tensors {missing}")

    def _rows(self, key: str, start: int, stop: int) -> np.ndarray:
        dtype, shape, begin = self._tensors[key]
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        nbytes = (stop - start) * row
        buf = os.pread(self._fd, nbytes, self._data_start + begin + start * row)
        if len(buf) != nbytes:
            raise CorruptDataError(f"shard {self.path.name}: short read of {key!r} (truncated?)")
        return np.frombuffer(buf, dtype=dtype).reshape((stop - start, *shape[1:]))

    def _all(self, key: str) -> np.ndarray:
        return self._rows(key, 0, self._tensors[key][1][0])

    def _load_small(self) -> None:
        self.frame_offsets = self._all("frame_offsets")
        self.step_offsets = self._all("step_offsets")
        self.pixels_crc = self._all("pixels_crc")
        self.episode_crc = self._all("episode_crc")
        self.small = {k: self._all(k) for k in SMALL_KEYS}
        E = len(self.metadata)
        if self.frame_offsets.shape != (E + 1,) or self.step_offsets.shape != (E + 1,) or \
                self.episode_crc.shape != (E, len(SMALL_KEYS)):
            raise CorruptDataError(f"shard {self.path.name}: episode index disagrees with its metadata")
        for e in range(E):
            for j, key in enumerate(SMALL_KEYS):
                if _crc(self._small_slice(key, e)) != self.episode_crc[e, j]:
                    raise CorruptDataError(f"shard {self.path.name}: checksum mismatch in {key!r} of episode {e}")

    def _small_slice(self, key: str, e: int) -> np.ndarray:
        off = self.frame_offsets if key in FRAME_KEYS else self.step_offsets
        return self.small[key][off[e]:off[e + 1]]

    def __len__(self) -> int:
        return len(self.metadata)

    def num_steps(self, e: int) -> int:
        return int(self.step_offsets[e + 1] - self.step_offsets[e])

    def pixels(self, e: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames [start, stop) of episode e, each checked against its CRC."""
        f0 = int(self.frame_offsets[e])
        n = int(self.frame_offsets[e + 1]) - f0
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise IndexError(f"frames [{start}, {stop}) out of range for an episode of {n} frames")
        px = self._rows("pixels", f0 + start, f0 + stop)
        for i in range(stop - start):
            if _crc(px[i]) != self.pixels_crc[f0 + start + i]:
                raise CorruptDataError(f"shard {self.path.name}: checksum mismatch in pixels of episode {e}, "
                                       f"frame {start + i}")
        return px

    def small_arrays(self, e: int) -> dict[str, np.ndarray]:
        return {k: self._small_slice(k, e) for k in SMALL_KEYS}

    def episode(self, e: int) -> dict:
        out = {k: v.copy() for k, v in self.small_arrays(e).items()}
        out["pixels"] = self.pixels(e).copy()
        out["metadata"] = dict(self.metadata[e])
        return out

    def close(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()

    def __getstate__(self):  # DataLoader workers reopen their own file descriptors
        raise TypeError("ShardReader holds a file descriptor; reopen it in each process")


# --- manifest --------------------------------------------------------------------------------
def read_manifest(directory: str | os.PathLike) -> dict:
    path = Path(directory) / MANIFEST
    manifest = read_json_file(path, f"{directory} holds no dataset ({MANIFEST} not found)", "manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != "cosmos_sim.dataset" or \
            not isinstance(manifest.get("shards"), list):
        raise CorruptDataError(f"{path}: not a cosmos_sim dataset manifest")
    return manifest


def write_manifest(directory: str | os.PathLike, manifest: dict) -> None:
    atomic_write_bytes(Path(directory) / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
