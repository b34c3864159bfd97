"""Checkpoints as safetensors: tensors for weights, EMA, optimizer and RNG state; JSON for configs.

Loading never unpickles. A file that is a pickle or a `torch.save` zip is refused by its magic
bytes before anything parses it; a truncated or malformed file raises `CheckpointError`; a
checkpoint made with another configuration raises `ConfigMismatchError` naming both sides.
"""

from __future__ import annotations

import json
import os
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from cosmos_sim.errors import CheckpointError, ConfigMismatchError
from cosmos_sim.fileio import atomic_write_bytes

FORMAT = "cosmos_sim.checkpoint"
MAX_HEADER = 100 * 2**20


def _check_bytes(path: Path, data: bytes) -> None:
    """Refuse anything that is not a well-formed safetensors header, naming pickles as such.

    The safetensors shape is checked first: its 8-byte header length can start with 0x80, the byte
    a pickle starts with, so the pickle test only names what an invalid file probably is.
    """
    n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else -1
    if 0 <= n <= min(len(data) - 8, MAX_HEADER) and data[8:9] == b"{":
        return
    if data[:2] == b"PK" or (data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        raise CheckpointError(f"{path} is a pickle / torch.save file; cosmos_sim reads safetensors only "
                              "and never unpickles")
    if len(data) < 8:
        raise CheckpointError(f"{path} is too short to be a safetensors checkpoint (truncated?)")
    if n > min(len(data) - 8, MAX_HEADER):
        raise CheckpointError(f"{path}: bad safetensors header (length {n} for a {len(data)}-byte file; truncated?)")
    raise CheckpointError(f"{path}: bad safetensors header (not JSON)")


def _metadata(path: Path, raw: dict) -> dict[str, Any]:
    if raw.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a cosmos_sim checkpoint")
    try:
        return {k: json.loads(v) for k, v in raw.items() if k != "format"}
    except ValueError as e:
        raise CheckpointError(f"{path}: unreadable checkpoint metadata ({e})") from None


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata with JSON fields decoded) from a checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    data = path.read_bytes()
    _check_bytes(path, data)
    try:
        tensors = st_load(data)
        (n,) = struct.unpack("<Q", data[:8])
        raw_meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: corrupt safetensors checkpoint ({e})") from None
    return tensors, _metadata(path, raw_meta)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's metadata alone, from its header (the tensors are not read)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    with path.open("rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        header = f.read(n) if 0 <= n <= min(path.stat().st_size - 8, MAX_HEADER) else b""
    if header[:1] != b"{":
        _check_bytes(path, path.read_bytes())  # names what the file is instead
    try:
        raw_meta = json.loads(header).get("__metadata__") or {}
    except ValueError as e:
        raise CheckpointError(f"{path}: corrupt safetensors header ({e})") from None
    return _metadata(path, raw_meta)


def write_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Atomic write; refuses non-finite floating tensors so a bad state never reaches disk."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"refusing to write a checkpoint: tensor {name!r} holds NaN or inf")
    meta = {"format": FORMAT} | {k: json.dumps(v) for k, v in metadata.items()}
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, st_save(cpu, metadata=meta))


def check_config(kind: str, saved: dict, expected: dict, keys: list[str] | None = None) -> None:
    """Raise ConfigMismatchError listing every differing key, with the checkpoint's and the caller's value."""
    keys = keys if keys is not None else sorted(set(saved) | set(expected))
    diff = [f"{k}: checkpoint has {saved.get(k)!r}, caller has {expected.get(k)!r}"
            for k in keys if saved.get(k) != expected.get(k)]
    if diff:
        raise ConfigMismatchError(f"{kind} checkpoint does not match: " + "; ".join(diff))


# --- optimizer and RNG state as tensors + JSON ---------------------------------------------------
def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim/{pid}/{key}"] = val
            else:
                scalars[f"{pid}/{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, val in tensors.items():
        if name.startswith("optim/"):
            _, pid, key = name.split("/", 2)
            state.setdefault(int(pid), {})[key] = val
    for name, val in meta["scalars"].items():
        pid, key = name.split("/", 1)
        state.setdefault(int(pid), {})[key] = val
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    np_state = np.random.get_state()
    py = random.getstate()
    meta = {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]], "python": [py[0], list(py[1]), py[2]]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng/cuda/"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
    p = meta["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory (its newest checkpoint, or its single .safetensors file)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted((path / "checkpoints").glob("step-*.safetensors")) or sorted(path.glob("*.safetensors"))
        if found:
            return found[-1]
        raise CheckpointError(f"{path} holds no checkpoint (looked for checkpoints/step-*.safetensors)")
    raise CheckpointError(f"checkpoint {path} not found")


def load_weights(path: str | os.PathLike, kind: str, weights: str = "ema") -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, metadata) of a `kind` checkpoint; EMA weights when present and asked for."""
    path = resolve_checkpoint(path)
    tensors, meta = read_checkpoint(path)
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path} is a {meta.get('kind')!r} checkpoint, not a {kind!r} one")
    prefix = "ema/" if weights == "ema" and any(k.startswith("ema/") for k in tensors) else "model/"
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{path} holds no {prefix[:-1]} weights")
    meta["path"] = str(path)
    return state, meta
