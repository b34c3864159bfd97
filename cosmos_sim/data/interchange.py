"""Dataset interchange: our sharded datasets out to Minari and LeRobot v3.0, and both formats in.

This module dispatches on the format; the formats live in `cosmos_sim.data.minari` (Minari) and
`cosmos_sim.data.lerobot` (LeRobot v3.0, which documents the layout and re-exports `lerobot_export`,
`lerobot_import`, ...). Each format has its own configs (`MinariExportConfig`, `MinariImportConfig`,
`LeRobotExportConfig`, `LeRobotImportConfig`). `ExportConfig` and `ImportConfig` are the flags of
`cosmos-sim data export` / `data import`: every format's options in one config, a subclass of each format's own,
so either format takes it and reads only its own fields (`own_config`). An export option of the other format is
ignored; an import option of the other format given a value is refused (`--image-size` with Minari).

Every output appears whole or not at all (staged beside it, renamed into place), and inputs are verified
first (checksums, schema, counts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cosmos_sim.data.lerobot import LeRobotExportConfig, LeRobotImportConfig, export_lerobot, import_lerobot
from cosmos_sim.data.minari import MinariExportConfig, MinariImportConfig, export_minari, import_minari
from cosmos_sim.errors import UnknownChoiceError

EXPORT_FORMATS = ("minari", "lerobot")
IMPORT_FORMATS = ("minari", "lerobot")
EXPORTERS = {"minari": export_minari, "lerobot": export_lerobot}
IMPORTERS = {"minari": import_minari, "lerobot": import_lerobot}

__all__ = ["EXPORT_FORMATS", "IMPORT_FORMATS", "ExportConfig", "ImportConfig", "export_dataset", "import_dataset",
           "MinariExportConfig", "MinariImportConfig", "export_minari", "import_minari",
           "LeRobotExportConfig", "LeRobotImportConfig", "export_lerobot", "import_lerobot"]


@dataclass(frozen=True)
class ExportConfig(LeRobotExportConfig, MinariExportConfig):
    """The flags of `cosmos-sim data export`: Minari's fields (name, version, verify) and LeRobot's (fps,
    video_quality, data_file_mb, video_file_mb, chunks_size, lossless, verify), each checked as its format does."""

    def __post_init__(self):
        MinariExportConfig.__post_init__(self)
        LeRobotExportConfig.__post_init__(self)


@dataclass(frozen=True)
class ImportConfig(LeRobotImportConfig, MinariImportConfig):
    """The flags of `cosmos-sim data import`: world, default_camera and shard_mb (both formats) and LeRobot's
    image_size, each checked as its format does."""

    def __post_init__(self):
        MinariImportConfig.__post_init__(self)
        LeRobotImportConfig.__post_init__(self)


def export_dataset(directory: str | os.PathLike, out: str | os.PathLike, format: str,
                   config: ExportConfig | MinariExportConfig | LeRobotExportConfig | None = None,
                   progress: bool = True) -> dict:
    """Export the dataset at `directory` as `format` ('minari' or 'lerobot'); returns a summary. `config`: the
    format's own config, or an `ExportConfig` (whose options of the other format are ignored)."""
    if format not in EXPORT_FORMATS:
        raise UnknownChoiceError("export format", format, EXPORT_FORMATS)
    return EXPORTERS[format](directory, out, config, progress=progress)


def import_dataset(source: str, out: str | os.PathLike, format: str = "minari",
                   config: ImportConfig | MinariImportConfig | LeRobotImportConfig | None = None,
                   progress: bool = True) -> dict:
    """Import `source` (a Minari dataset id or path, or a LeRobot v3.0 directory) as a dataset at `out`; returns
    its manifest. `config`: the format's own config, or an `ImportConfig`."""
    if format not in IMPORT_FORMATS:
        raise UnknownChoiceError("import format", format, IMPORT_FORMATS)
    return IMPORTERS[format](source, out, config, progress=progress)


def export_summary(result: dict, out: str | os.PathLike) -> str:
    """What `cosmos-sim data export` prints: where the dataset is and how to load it."""
    r = result
    if r["format"] == "minari":
        return (f"{r['path']}: Minari dataset {r['dataset_id']} ({r['episodes']} episodes, {r['steps']} steps); "
                f"load it with MINARI_DATASETS_PATH={out} and minari.load_dataset({r['dataset_id']!r})")
    return f"{r['path']}: LeRobot v3.0 dataset ({r['episodes']} episodes, {r['frames']} frames at {r['fps']} fps)"


def import_summary(manifest: dict, out: str | os.PathLike) -> list[str]:
    """What `cosmos-sim data import` prints: the episodes, and for our own lossy LeRobot export how many frames
    came back changed."""
    m = manifest
    lines = [f"{out}: {sum(s['episodes'] for s in m['shards'])} episodes of {m['world'].partition('?')[0]} in "
             f"{len(m['shards'])} shards"]
    if "lerobot_import" in m:  # our own lossy export: everything exact but the frames
        r = m["lerobot_import"]
        lines.append(f"frames: {r['pixels']}, {r['frames_differing']} of {r['frames']} differ from those exported "
                     "(export with --lossless for exact frames)")
    return lines
