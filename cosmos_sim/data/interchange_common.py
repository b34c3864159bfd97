"""What every interchange format shares: its config taken from a command's flags, the verified source dataset,
progress bars, the manifest as it travels. The formats: `cosmos_sim.data.minari`, `cosmos_sim.data.lerobot_*`;
the dispatch: `cosmos_sim.data.interchange`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TypeVar

from cosmos_sim.data.dataset import EpisodeDataset
from cosmos_sim.data.merge import dataset_directory, require_intact
from cosmos_sim.errors import DatasetError, InputError

C = TypeVar("C")


def own_config(cls: type[C], config: object | None) -> C:
    """`config` as exactly a `cls`: `cls()` for None, `config` itself when it is one; a subclass of `cls` (the
    flags of `cosmos-sim data export|import`, which hold every format's options) gives its fields that `cls` has.
    Anything else is refused."""
    if config is None:
        return cls()
    if type(config) is cls:
        return config
    if isinstance(config, cls):
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})
    raise InputError(f"expected a {cls.__name__}, got a {type(config).__name__}")


def open_source(directory: str | os.PathLike, verify: bool, views: bool = False) -> tuple[Path, EpisodeDataset]:
    """The dataset to export, verified first when `verify`; `views`: the format takes several camera views per
    frame."""
    directory = dataset_directory(directory)
    if verify:
        require_intact(directory)
    ds = EpisodeDataset(directory)
    if not len(ds):
        raise DatasetError(f"{directory} holds no episodes to export")
    if ds.spec.views > 1 and not views:
        raise DatasetError(f"{directory} records {ds.spec.views} camera views per frame; this format takes one "
                           "camera per frame (export it to LeRobot, which keeps every view)")
    return directory, ds


def progress_bar(n: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=n, desc=desc, unit="ep", disable=not progress)


def public_manifest(manifest: dict) -> dict:
    """The manifest less what only makes sense beside its shard files."""
    return {k: v for k, v in manifest.items() if k not in ("shards", "selection")}
