"""`collect --ray`: collection as Ray tasks on a local cluster gives the data a plain collection gives."""

import sys

import numpy as np
import pytest

from cosmos_sim import cli
from cosmos_sim.data import CollectConfig, EpisodeDataset, collect, read_manifest
from cosmos_sim.data.inspect import verify
from cosmos_sim.data.merge import merge
from cosmos_sim.data.ray_collect import RayConfig, collect_ray, seed_ranges
from cosmos_sim.errors import DatasetError, InputError, MissingPackageError

CFG = dict(world="push", policy="mix", skill=(0.3, 1.0), image_size=32)
KEYS = ("pixels", "states", "actions", "rewards", "extrinsics", "fovy", "terminated", "truncated")


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.mark.slow  # starts a local Ray cluster and its worker processes
def test_halves_on_two_ray_workers_merged_equal_one_collection(local_ray, tmp_path):
    for base_seed, name in ((0, "a"), (2, "b")):  # each half runs as two tasks (workers=2) on the two CPUs
        m = collect_ray(CollectConfig(**CFG, episodes=2, base_seed=base_seed, workers=2), tmp_path / name,
                        progress=False)
        assert len(m["shards"]) == 2 and verify(tmp_path / name) == []
    merge([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    collect(CollectConfig(**CFG, episodes=4), tmp_path / "whole", progress=False)
    assert verify(tmp_path / "merged") == []
    got, want = EpisodeDataset(tmp_path / "merged"), EpisodeDataset(tmp_path / "whole")
    assert got.seeds == want.seeds == [0, 1, 2, 3]
    for i in range(4):
        g, w = got[i], want[i]
        for key in KEYS:
            np.testing.assert_array_equal(g[key], w[key], err_msg=f"episode {i}: {key}")
        assert g["metadata"] == w["metadata"]
    assert got.digest() == want.digest()
    assert read_manifest(tmp_path / "merged")["collection"] == read_manifest(tmp_path / "whole")["collection"]


@pytest.mark.slow  # uses the local Ray cluster
def test_cli_collect_on_ray_resumes_like_collect(local_ray, tmp_path, capsys):
    out = tmp_path / "d"
    argv = ["collect", "--world", "push", "--episodes", "1", "--image-size", "32", "--out", str(out), "--ray",
            "--no-progress"]
    assert cli.main(argv) == 0  # joins the cluster this process already started
    assert "1 episodes" in capsys.readouterr().out
    argv[argv.index("--episodes") + 1] = "2"
    assert cli.main(argv) == 0  # only the missing seed is collected
    m = read_manifest(out)
    assert sorted(s for shard in m["shards"] for s in shard["seeds"]) == [0, 1] and len(m["shards"]) == 2
    assert verify(out) == []


@pytest.mark.slow  # uses the local Ray cluster
def test_a_failing_task_is_one_typed_error(local_ray, tmp_path):
    config = CollectConfig(**CFG, episodes=1)
    object.__setattr__(config, "backend", "nope")  # passes the driver, fails in the worker
    with pytest.raises(DatasetError, match="(?s)failed on a Ray worker.*nope"):
        collect_ray(config, tmp_path / "d", progress=False)


def test_seed_ranges_and_config():
    assert seed_ranges(list(range(10)), workers=2, episodes_per_task=16) == [list(range(5)), list(range(5, 10))]
    assert seed_ranges(list(range(5)), workers=1, episodes_per_task=2) == [[0, 1], [2, 3], [4]]
    assert seed_ranges([3], workers=8, episodes_per_task=4) == [[3]]
    assert seed_ranges([], workers=2, episodes_per_task=4) == []
    with pytest.raises(InputError):
        RayConfig(episodes_per_task=0)


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(MissingPackageError, match=r"pip install 'cosmos_sim\[ray\]'"):
        collect_ray(CollectConfig(**CFG, episodes=1), tmp_path / "d", progress=False)
    assert not (tmp_path / "d").exists()
