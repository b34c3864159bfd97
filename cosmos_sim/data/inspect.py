"""`data info` and `data verify`: what a dataset holds, and whether its bytes are intact."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from cosmos_sim.data.dataset import EpisodeDataset
from cosmos_sim.data.shards import ShardReader, read_manifest, sha256_file
from cosmos_sim.errors import CorruptDataError, DatasetError
from cosmos_sim.worlds import get_world

MOVED_THRESHOLD = 0.01  # metres: an object that travelled less than this "did not move"


def objects_moved(world, states: np.ndarray) -> bool | None:
    """Did any of the world's objects travel? None for worlds without objects."""
    entries = world.object_entries
    if not entries:
        return None
    L = world.state_layout
    for name in entries:
        pos = L.get(states, name)
        if np.linalg.norm(pos - pos[0], axis=-1).max() > MOVED_THRESHOLD:
            return True
    return False


def info(directory: str | os.PathLike, thumbnails: str | os.PathLike | None = None, max_thumbs: int = 16) -> dict:
    ds = EpisodeDataset(directory)
    m = ds.manifest
    world = get_world(ds.world)
    policies, policy_success, cameras, backends = Counter(), Counter(), Counter(), Counter()
    moved, success, diverged, steps = [], 0, 0, 0
    for i in range(len(ds)):
        r, e = ds.locate(i)
        meta = r.metadata[e]
        policy = meta.get("policy_params", {}).get("kind", meta["policy"])
        policies[policy] += 1
        policy_success[policy] += bool(meta.get("success"))
        cameras[meta.get("camera_mode", "?")] += 1
        backends[meta["backend"]] += 1
        success += bool(meta.get("success"))
        diverged += bool(meta.get("diverged"))
        steps += r.num_steps(e)
        mv = objects_moved(world, r.small_arrays(e)["states"])
        if mv is not None:
            moved.append(mv)
    report = {
        "directory": str(directory), "world": ds.world, "image_size": list(ds.spec.image_size),
        "episodes": len(ds), "steps": steps, "frames": steps + len(ds), "shards": len(m["shards"]),
        "bytes": sum(s["bytes"] for s in m["shards"]),
        "backends": dict(backends), "policies": dict(policies),
        "policy_success": {k: policy_success[k] / n for k, n in policies.items()}, "cameras": dict(cameras),
        "success_rate": success / max(len(ds), 1), "diverged": diverged,
        "objects_moved_share": (sum(moved) / len(moved)) if moved else None,
        "curated": m.get("selection") is not None,
    }
    if thumbnails is not None and len(ds):
        from cosmos_sim.video import save_png, tile

        idx = np.linspace(0, len(ds) - 1, min(max_thumbs, len(ds))).astype(int)
        frames = []
        for i in idx:
            r, e = ds.locate(int(i))
            frame = r.pixels(e)[r.num_steps(e) // 2]
            frames.append(np.concatenate(list(frame), axis=1) if frame.ndim == 4 else frame)  # views side by side
        save_png(thumbnails, tile(frames, scale=2, cols=8))
        report["thumbnails"] = str(thumbnails)
    ds.close()
    return report


def verify(directory: str | os.PathLike) -> list[tuple[str, str]]:
    """Every problem found, as (shard file or 'manifest', message). Empty means intact."""
    directory = Path(directory)
    problems: list[tuple[str, str]] = []
    try:
        m = read_manifest(directory)
    except DatasetError as e:
        return [("manifest", str(e))]
    want_spec = (tuple(m["image_size"]), m["action_dim"], m["state_dim"])
    seeds: Counter = Counter()
    for entry in m["shards"]:
        name = entry.get("file", "?")
        path = directory / name
        try:
            if not path.is_file():
                raise DatasetError("missing")
            if path.stat().st_size != entry["bytes"]:
                raise CorruptDataError(f"{path.stat().st_size} bytes, manifest says {entry['bytes']}")
            if sha256_file(path) != entry["sha256"]:
                raise CorruptDataError("sha256 mismatch")
            r = ShardReader(path, entry)
            try:
                if (r.spec.image_size, r.spec.action_dim, r.spec.state_dim) != want_spec:
                    raise CorruptDataError(f"schema {r.spec} differs from the manifest")
                got = (len(r), int(r.frame_offsets[-1]), int(r.step_offsets[-1]), [int(x["seed"]) for x in r.metadata])
                if got != (entry["episodes"], entry["frames"], entry["steps"], entry["seeds"]):
                    raise CorruptDataError("episode/frame/step counts or seeds differ from the manifest")
                for e in range(len(r)):
                    r.pixels(e)
            finally:
                r.close()
            seeds.update(entry["seeds"])
        except (DatasetError, KeyError, OSError) as e:
            problems.append((name, str(e)))
    dup = sorted(s for s, c in seeds.items() if c > 1)
    if dup:
        problems.append(("manifest", f"duplicate seeds: {dup[:10]}"))
    return problems


def info_table(r: dict) -> str:
    """`info`'s report as the two-column table `cosmos-sim data info` prints."""
    from cosmos_sim.text import format_table

    moved = "n/a" if r["objects_moved_share"] is None else f"{100 * r['objects_moved_share']:.0f}%"
    rows = [("world", r["world"]), ("image size", "x".join(map(str, r["image_size"]))),
            ("episodes", r["episodes"]), ("frames", r["frames"]), ("shards", r["shards"]),
            ("size", f"{r['bytes'] / 2**20:.1f} MiB"), ("backends", r["backends"]),
            ("cameras", r["cameras"]), ("success", f"{100 * r['success_rate']:.0f}%"),
            ("objects moved", moved), ("diverged", r["diverged"]), ("curated view", r["curated"]),
            ("thumbnails", r.get("thumbnails", "-"))]
    return format_table(["", ""], rows) + "\n\n" + policy_table(r)


def policy_table(r: dict) -> str:
    """One line per collection policy, most episodes first: its share of the episodes and its success."""
    from cosmos_sim.text import format_table

    total = max(r["episodes"], 1)
    success = r.get("policy_success", {})  # reports written before it was kept lack it
    rows = [(name, n, f"{100 * n / total:.0f}%", f"{100 * success[name]:.0f}%" if name in success else "-")
            for name, n in sorted(r["policies"].items(), key=lambda kv: (-kv[1], kv[0]))]
    return format_table(["policy", "episodes", "share", "success"], rows)


def verify_command(directory: str | os.PathLike) -> str:
    """`cosmos-sim data verify`: every problem on stderr, then one CorruptDataError naming how many; or OK."""
    import sys

    problems = verify(directory)
    for name, msg in problems:
        print(f"{name}: {msg}", file=sys.stderr)
    if problems:  # the one-line error after the list
        raise CorruptDataError(f"{len(problems)} problem(s) in {directory}")
    return f"{directory}: OK (checksums, schema and counts)"


def info_command(directory: str | os.PathLike, thumbnails: str | os.PathLike | None = None,
                 as_json: bool = False) -> str:
    """What `cosmos-sim data info` prints (the thumbnail grid goes to DIR/thumbnails.png unless named)."""
    import json

    r = info(directory, thumbnails=thumbnails or Path(directory) / "thumbnails.png")
    return json.dumps(r, indent=2) if as_json else info_table(r)
