"""`data merge`: datasets of one collection, gathered apart (other machines, other seed ranges), as one.

The inputs must agree on what the data is -- world and its definition hash, image size, vector widths and
layouts, and every collection setting but the seed range -- and hold disjoint seeds. Each input is verified
first (checksums, schema, counts), so a merged dataset never inherits a bad byte. Shards are hard-linked into
the output where it shares a filesystem with an input (no copy, no extra space: shards are written once,
atomically, and never changed in place, so two manifests can share one), and copied otherwise. The output
appears whole or not at all: it is built in a staging directory beside it and renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cosmos_sim.config import arg
from cosmos_sim.data.shards import MANIFEST, read_manifest, write_manifest
from cosmos_sim.errors import CorruptDataError, DatasetError, DatasetMismatchError, InputError, MissingPathError
from cosmos_sim.fileio import publish

# Manifest fields that say what the data is; inputs of one merge must agree on all of them.
IDENTITY = ("world", "world_hash", "image_size", "action_dim", "state_dim", "action_names", "state_layout", "source")
# Collection settings that may differ between the parts of one collection (the seed range).
SEED_RANGE = ("base_seed", "episodes")


class SeedOverlapError(DatasetError):
    """Two datasets to merge hold episodes of the same seed: merged, one seed would mean two episodes."""


@dataclass(frozen=True)
class MergeConfig:
    link: bool = arg(True, "hard-link shards into the output where it shares a filesystem with the inputs "
                           "(--no-link: always copy)")
    verify: bool = arg(True, "verify every input (checksums, schema, counts) before merging")


def dataset_directory(directory: str | os.PathLike) -> Path:
    """`directory` as a Path; a typed error when it does not exist (rather than 'holds no dataset')."""
    path = Path(directory)
    if not path.is_dir():
        raise MissingPathError(f"no dataset directory at {path}")
    return path


def require_intact(directory: str | os.PathLike) -> None:
    """Raise CorruptDataError naming the first problem `cosmos-sim data verify` finds in `directory`."""
    from cosmos_sim.data.inspect import verify

    problems = verify(dataset_directory(directory))
    if problems:
        name, msg = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CorruptDataError(f"{directory} fails verification: {name}: {msg}{more}; see 'cosmos-sim data verify "
                               f"{directory}'")


@contextlib.contextmanager
def staged_directory(out: str | os.PathLike) -> Iterator[Path]:
    """A fresh directory beside `out`, renamed to `out` when the block succeeds and removed when it raises.

    `out` must not exist, or be an empty directory: a half-written output is never seen under its name,
    and nothing already there is overwritten."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out} already exists and is not an empty directory; choose a new output directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if out.is_dir():
            out.rmdir()  # empty (checked above); os.rename cannot replace a directory portably
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def link_or_copy(src: Path, dst: Path, link: bool = True) -> str:
    """Put `src`'s bytes at `dst`: a hard link where possible, else an atomic copy. Returns 'link' or 'copy'."""
    if link:
        try:
            os.link(src, dst)
            return "link"
        except OSError as e:  # another filesystem, or one without hard links: copy instead
            if e.errno == errno.EEXIST:
                raise
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        publish(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return "copy"


def _identity_problem(first: dict, other: dict) -> str | None:
    """What makes two manifests' data incompatible, in words; None when they may merge."""
    for key in IDENTITY:
        if first.get(key) != other.get(key):
            return f"{key} {other.get(key)!r} (the first input has {first.get(key)!r})"
    a = {k: v for k, v in first.get("collection", {}).items() if k not in SEED_RANGE}
    b = {k: v for k, v in other.get("collection", {}).items() if k not in SEED_RANGE}
    if a != b:
        diff = {k: (b.get(k), a.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
        return f"collection settings {diff} (this input's, the first input's)"
    return None


def merge(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, config: MergeConfig = MergeConfig()) -> dict:
    """Merge the datasets `inputs` into a new dataset at `out`; returns its manifest (with a `merge` summary).

    Refuses (typed errors, nothing written) inputs that fail verification, curated views, inputs of
    another world, image size, layout or collection setting, and inputs whose seeds overlap.
    """
    if len(inputs) < 2:
        raise InputError(f"merge needs at least two datasets, got {len(inputs)}")
    dirs = [dataset_directory(d).resolve() for d in inputs]
    if len(set(dirs)) != len(dirs):
        raise InputError("the same dataset is named twice among the inputs")
    out = Path(out)
    if out.resolve() in dirs:
        raise InputError(f"write the merged dataset to a new directory, not to one of its inputs ({out})")
    manifests = []
    for d in dirs:
        m = read_manifest(d)
        if m.get("selection") is not None:
            raise DatasetError(f"{d} is a curated view (a selection over another dataset's shards); merge the "
                               "source datasets, then curate the result")
        if config.verify:
            require_intact(d)
        manifests.append(m)
    first = manifests[0]
    for d, m in zip(dirs[1:], manifests[1:], strict=True):
        problem = _identity_problem(first, m)
        if problem is not None:
            raise DatasetMismatchError(f"cannot merge {d} with {dirs[0]}: it holds {problem}")
    owner: dict[int, Path] = {}
    for d, m in zip(dirs, manifests, strict=True):
        for seed in (s for shard in m["shards"] for s in shard["seeds"]):
            if seed in owner:
                clash = sorted({s for sh in m["shards"] for s in sh["seeds"]} & set(owner))
                raise SeedOverlapError(f"cannot merge {d} with {owner[seed]}: both hold seed(s) {clash[:10]}"
                                       f"{' ...' if len(clash) > 10 else ''}; merged datasets need disjoint seeds")
            owner[seed] = d
    merged = {k: v for k, v in first.items() if k not in ("shards", "collection_config", "curation")}
    seeds = sorted(owner)
    if "collection" in first:  # one collection now: episode i of `base_seed + i` where the seeds run on
        merged["collection"] = {**first["collection"], "base_seed": seeds[0] if seeds else 0}
    if all("collection_config" in m for m in manifests):
        merged["collection_config"] = {**first["collection_config"], "base_seed": seeds[0] if seeds else 0,
                                       "episodes": len(seeds)}
    merged["shards"] = []
    counts = {"link": 0, "copy": 0}
    with staged_directory(out) as tmp:
        used: set[str] = set()
        for i, (d, m) in enumerate(zip(dirs, manifests, strict=True)):
            for entry in m["shards"]:
                src = d / entry["file"]
                name = Path(entry["file"]).name
                if name in used or name == MANIFEST:  # shard names come from their first seed: rarely taken
                    name = f"part{i}-{name}"
                used.add(name)
                counts[link_or_copy(src, tmp / name, config.link)] += 1
                merged["shards"].append({**entry, "file": name})
        merged["merge"] = {"sources": [str(d) for d in dirs], "episodes": len(seeds),
                           "linked": counts["link"], "copied": counts["copy"]}
        write_manifest(tmp, merged)
    return merged


def summary_line(manifest: dict, out: str | os.PathLike) -> str:
    """What `cosmos-sim data merge` prints."""
    s = manifest["merge"]
    return (f"{out}: {s['episodes']} episodes from {len(s['sources'])} datasets ({s['linked']} shards linked, "
            f"{s['copied']} copied)")
