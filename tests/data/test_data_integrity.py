import json
import struct

import numpy as np
import pytest

from cosmos_sim.data import EpisodeDataset, EpisodeSpec, read_manifest
from cosmos_sim.data.curate import curate
from cosmos_sim.data.inspect import info, verify
from cosmos_sim.data.shards import write_manifest, write_shard
from cosmos_sim.errors import CorruptDataError, DatasetError, EpisodeSchemaError

SPEC = EpisodeSpec(image_size=(16, 16), action_dim=2, state_dim=3)


def episode(seed: int, T: int = 6, static: bool = False, actions=None) -> dict:
    rng = np.random.default_rng(seed)
    pixels = np.repeat(rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8), T + 1, axis=0)
    if not static:
        pixels = rng.integers(0, 256, (T + 1, 16, 16, 3), dtype=np.uint8)
    return {
        "pixels": pixels,
        "states": np.zeros((T + 1, 3), np.float32) + np.float32(seed % 2),
        "extrinsics": np.tile(np.eye(4, dtype=np.float32), (T + 1, 1, 1)),
        "fovy": np.full(T + 1, 45.0, np.float32),
        "actions": rng.uniform(-1, 1, (T, 2)).astype(np.float32) if actions is None else actions,
        "rewards": np.zeros(T, np.float32),
        "terminated": np.zeros(T, np.uint8),
        "truncated": np.zeros(T, np.uint8),
        "metadata": {"world": "Push", "backend": "mujoco", "seed": seed, "policy": "random",
                     "image_size": [16, 16], "world_hash": "x", "version": "0", "diverged": False},
    }


def make_dataset(path, episodes_per_shard):
    path.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "cosmos_sim.dataset", "version": 1, "world": "Push", "world_hash": "x",
                "image_size": [16, 16], "action_dim": 2, "state_dim": 3, "shards": []}
    for k, eps in enumerate(episodes_per_shard):
        manifest["shards"].append(write_shard(path, f"shard-{k:09d}-{len(eps):04d}.safetensors", eps, SPEC))
    write_manifest(path, manifest)
    return path


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "ds", [[episode(0), episode(1)], [episode(2)]])


def read_everything(path):
    ds = EpisodeDataset(path)
    return [ds[i] for i in range(len(ds))]


def header_len(path):
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


@pytest.mark.parametrize("where", ["header", "pixels", "states", "last_byte"])
def test_one_flipped_byte_is_named_by_verify_and_refused_by_readers(dataset, where):
    shard = dataset / read_manifest(dataset)["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    n = header_len(shard)
    header = json.loads(data[8:8 + n])
    if where == "header":
        needle = b'seed\\": 1'  # metadata is JSON inside the JSON header: quotes are escaped
        pos = 8 + data[8:8 + n].index(needle) + len(needle) - 1  # flip the seed's digit
    elif where == "last_byte":
        pos = len(data) - 1
    else:
        begin = header[where]["data_offsets"][0]
        pos = 8 + n + begin + 5
    data[pos] ^= 0x01
    shard.write_bytes(bytes(data))
    problems = verify(dataset)
    assert [name for name, _ in problems] == [shard.name]
    with pytest.raises(CorruptDataError, match=shard.name):
        read_everything(dataset)


def test_truncated_shard(dataset):
    shard = dataset / read_manifest(dataset)["shards"][1]["file"]
    shard.write_bytes(shard.read_bytes()[:-100])
    assert [name for name, _ in verify(dataset)] == [shard.name]
    with pytest.raises(CorruptDataError, match="truncated"):
        read_everything(dataset)


def test_missing_shard(dataset):
    shard = dataset / read_manifest(dataset)["shards"][1]["file"]
    shard.unlink()
    assert [name for name, _ in verify(dataset)] == [shard.name]
    with pytest.raises(DatasetError, match="missing"):
        read_everything(dataset)


def test_corrupt_or_absent_manifest(tmp_path, dataset):
    with pytest.raises(DatasetError, match="manifest.json"):
        EpisodeDataset(tmp_path / "nothing")
    (dataset / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptDataError, match="manifest"):
        EpisodeDataset(dataset)
    assert verify(dataset)[0][0] == "manifest"


def test_intact_dataset_reads_back_exactly(dataset):
    eps = read_everything(dataset)
    for ep, seed in zip(eps, [0, 1, 2], strict=True):
        ref = episode(seed)
        for k in ("pixels", "states", "actions", "extrinsics"):
            np.testing.assert_array_equal(ep[k], ref[k])
        assert ep["metadata"]["seed"] == seed
    assert verify(dataset) == []


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.pop("states"), "missing keys: states"),
    (lambda e: e.__setitem__("pixels", e["pixels"].astype(np.float32)), "dtype uint8"),
    (lambda e: e.__setitem__("actions", e["actions"][:, :1].copy()), "shape"),
    (lambda e: e.__setitem__("states", e["states"][:-1].copy()), "shape"),
    (lambda e: e["rewards"].__setitem__(0, np.nan), "NaN"),
    (lambda e: e["metadata"].pop("seed"), "metadata is missing: seed"),
])
def test_schema_errors_at_write_time(tmp_path, mutate, message):
    ep = episode(0)
    mutate(ep)
    with pytest.raises(EpisodeSchemaError, match=message):
        write_shard(tmp_path, "shard.safetensors", [ep], SPEC)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_curate_drops_static_diverged_and_duplicates(tmp_path):
    acts = np.zeros((6, 2), np.float32)
    dup_a, dup_b = episode(10, actions=acts), episode(11, actions=acts)
    dup_b["pixels"] = dup_a["pixels"].copy()
    dup_b["states"] = dup_a["states"].copy()
    diverged = episode(12)
    diverged["metadata"]["diverged"] = True
    src = make_dataset(tmp_path / "src", [[episode(1), episode(2, static=True), dup_a], [dup_b, diverged]])
    summary = curate(src, tmp_path / "view")
    assert summary["dropped"] == {"static": 1, "diverged": 1, "duplicate": 1}
    assert summary["dropped_seeds"] == {"static": [2], "diverged": [12], "duplicate": [11]}
    view = EpisodeDataset(tmp_path / "view")
    assert view.seeds == [1, 10]
    np.testing.assert_array_equal(view[1]["pixels"], dup_a["pixels"])
    assert sorted(p.name for p in (tmp_path / "view").iterdir()) == ["curation.json", "manifest.json"]
    assert verify(tmp_path / "view") == []
    assert info(tmp_path / "view")["episodes"] == 2
