"""Curation: drop static, diverged and duplicate episodes into a view (a manifest, no copies)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cosmos_sim.config import arg
from cosmos_sim.data.dataset import EpisodeDataset
from cosmos_sim.data.shards import write_manifest
from cosmos_sim.errors import DatasetError
from cosmos_sim.fileio import atomic_write_bytes


@dataclass(frozen=True)
class CurateConfig:
    # A robot that never moves, objects that never stir: an episode with almost no changing pixels.
    min_motion: float = arg(0.002, "share of pixels that ever change below which an episode is static")
    motion_levels: int = arg(8, "grey levels a pixel must change by to count as changing")
    drop_diverged: bool = arg(True, "drop episodes whose simulation diverged")
    drop_duplicates: bool = arg(True, "drop episodes with the same start and actions as an earlier one")


def pixel_motion(pixels: np.ndarray, levels: int = 8) -> float:
    """Share of pixels that change by more than `levels` between some pair of consecutive frames."""
    if len(pixels) < 2:
        return 0.0
    changed = (np.abs(np.diff(pixels.astype(np.int16), axis=0)) > levels).any(axis=(0, 3))
    return float(changed.mean())


def curate(directory: str | os.PathLike, out: str | os.PathLike, config: CurateConfig = CurateConfig()) -> dict:
    """Write `out/manifest.json` selecting the kept episodes and `out/curation.json` saying why."""
    directory, out = Path(directory).resolve(), Path(out).resolve()
    if out == directory:
        raise DatasetError("write the curated view to another directory than the source")
    ds = EpisodeDataset(directory)
    src = ds.manifest
    keep: dict[str, list[int]] = {}
    dropped: dict[str, list[int]] = {"static": [], "diverged": [], "duplicate": []}
    seen: dict[str, int] = {}
    for i in range(len(ds)):
        r, e = ds.locate(i)
        meta = r.metadata[e]
        small = r.small_arrays(e)
        seed = int(meta["seed"])
        if config.drop_diverged and meta.get("diverged"):
            dropped["diverged"].append(seed)
            continue
        if pixel_motion(r.pixels(e), config.motion_levels) < config.min_motion:
            dropped["static"].append(seed)
            continue
        key = hashlib.sha256(small["states"][0].tobytes() + small["actions"].tobytes()).hexdigest()
        if config.drop_duplicates and key in seen:
            dropped["duplicate"].append(seed)
            continue
        seen[key] = seed
        s = int(ds._index[i][0])
        keep.setdefault(src["shards"][s]["file"], []).append(e)
    ds.close()
    out.mkdir(parents=True, exist_ok=True)
    view = dict(src)
    view["shards"] = [{**s, "file": os.path.relpath(directory / s["file"], out)} for s in src["shards"]]
    view["selection"] = {os.path.relpath(directory / f, out): sorted(v) for f, v in keep.items()}
    kept = sum(len(v) for v in keep.values())
    summary = {"source": str(directory), "config": asdict(config), "episodes_in": len(ds), "kept": kept,
               "dropped": {k: len(v) for k, v in dropped.items()}, "dropped_seeds": dropped}
    view["curation"] = {k: summary[k] for k in ("source", "config", "episodes_in", "kept", "dropped")}
    write_manifest(out, view)
    atomic_write_bytes(out / "curation.json", (json.dumps(summary, indent=1) + "\n").encode())
    return summary


def summary_line(summary: dict, out: str | os.PathLike) -> str:
    """What `cosmos-sim data curate` prints."""
    dropped = ", ".join(f"{v} {k}" for k, v in summary["dropped"].items())
    return (f"{out}: kept {summary['kept']} of {summary['episodes_in']} episodes; dropped {dropped} "
            f"(see {Path(out) / 'curation.json'})")
