"""`data merge`: disjoint halves of one collection merge into the whole; anything else is refused by name."""

import errno
import os
import shutil
import stat

import numpy as np
import pytest

from cosmos_sim import cli
from cosmos_sim.data import CollectConfig, EpisodeDataset, collect, read_manifest
from cosmos_sim.data.curate import curate
from cosmos_sim.data.inspect import verify
from cosmos_sim.data.merge import MergeConfig, SeedOverlapError, merge
from cosmos_sim.errors import CorruptDataError, DatasetError, DatasetMismatchError, InputError, MissingPathError

CFG = dict(world="push", policy="mix", skill=(0.3, 1.0), image_size=32, shard_mb=0.05)
KEYS = ("pixels", "states", "actions", "rewards", "extrinsics", "fovy", "terminated", "truncated")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Seeds 0..3 collected in one go, and as two halves (seeds 0-1 and 2-3) in two directories."""
    root = tmp_path_factory.mktemp("merge")
    collect(CollectConfig(**CFG, episodes=4), root / "whole", progress=False)
    collect(CollectConfig(**CFG, episodes=2, base_seed=0), root / "a", progress=False)
    collect(CollectConfig(**CFG, episodes=2, base_seed=2), root / "b", progress=False)
    return root


def assert_same_episodes(got_dir, want_dir) -> None:
    got, want = EpisodeDataset(got_dir), EpisodeDataset(want_dir)
    assert got.seeds == want.seeds
    for i in range(len(want)):
        g, w = got[i], want[i]
        for key in KEYS:
            np.testing.assert_array_equal(g[key], w[key], err_msg=key)
            assert g[key].dtype == w[key].dtype
        assert g["metadata"] == w["metadata"]
    assert got.digest() == want.digest()


def test_disjoint_halves_merge_into_the_whole(parts, tmp_path):
    m = merge([parts / "a", parts / "b"], tmp_path / "m")
    assert verify(tmp_path / "m") == []
    assert_same_episodes(tmp_path / "m", parts / "whole")
    whole = read_manifest(parts / "whole")
    assert m["collection"] == whole["collection"]  # one collection of seeds 0..3, as if collected in one go
    assert m["merge"]["episodes"] == 4 and m["merge"]["copied"] == 0
    src = parts / "a" / read_manifest(parts / "a")["shards"][0]["file"]
    assert os.path.samefile(src, tmp_path / "m" / src.name)  # hard-linked, not copied
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "m").st_mode) == 0o777 & ~umask  # not the staging dir's 0700
    # the merged directory is a proper collection: collecting the whole again finds nothing left to do
    again = collect(CollectConfig(**CFG, episodes=4), tmp_path / "m", progress=False)
    assert len(again["shards"]) == len(m["shards"])


def test_copies_when_asked_or_when_links_fail(parts, tmp_path, monkeypatch):
    m = merge([parts / "b", parts / "a"], tmp_path / "copied", MergeConfig(link=False))
    assert m["merge"]["linked"] == 0 and verify(tmp_path / "copied") == []
    shard = m["shards"][0]["file"]
    assert not os.path.samefile(tmp_path / "copied" / shard, parts / "b" / shard)

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    m = merge([parts / "a", parts / "b"], tmp_path / "fallback")
    assert m["merge"]["linked"] == 0 and m["merge"]["copied"] == len(m["shards"])
    assert_same_episodes(tmp_path / "fallback", parts / "whole")


def test_refuses_overlapping_seeds(parts, tmp_path):
    with pytest.raises(SeedOverlapError, match=r"seed\(s\) \[0, 1\]"):
        merge([parts / "a", parts / "whole"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_refuses_other_world_and_other_settings(parts, tmp_path):
    collect(CollectConfig(**{**CFG, "world": "reach"}, episodes=1, base_seed=10), tmp_path / "reach", progress=False)
    with pytest.raises(DatasetMismatchError, match="world 'Reach'"):
        merge([parts / "a", tmp_path / "reach"], tmp_path / "m")
    collect(CollectConfig(**{**CFG, "policy": "random"}, episodes=1, base_seed=10), tmp_path / "rand", progress=False)
    with pytest.raises(DatasetMismatchError, match="policy"):
        merge([parts / "a", tmp_path / "rand"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_refuses_a_corrupt_input(parts, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(parts / "b", bad)
    shard = bad / read_manifest(bad)["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="fails verification"):
        merge([parts / "a", bad], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_refuses_bad_arguments(parts, tmp_path):
    with pytest.raises(MissingPathError, match="no dataset directory"):
        merge([parts / "a", tmp_path / "nowhere"], tmp_path / "m")
    with pytest.raises(InputError, match="at least two"):
        merge([parts / "a"], tmp_path / "m")
    with pytest.raises(InputError, match="not to one of its inputs"):
        merge([parts / "a", parts / "b"], parts / "a")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(DatasetError, match="not an empty directory"):
        merge([parts / "a", parts / "b"], tmp_path / "full")
    curate(parts / "a", tmp_path / "view")
    with pytest.raises(DatasetError, match="curated view"):
        merge([tmp_path / "view", parts / "b"], tmp_path / "m")


def test_cli_merge(parts, tmp_path, capsys):
    assert cli.main(["data", "merge", str(parts / "a"), str(parts / "b"), "--out", str(tmp_path / "m")]) == 0
    assert "4 episodes from 2 datasets" in capsys.readouterr().out
    assert_same_episodes(tmp_path / "m", parts / "whole")
    assert cli.main(["data", "merge", str(parts / "whole"), str(parts / "b"), "--out", str(tmp_path / "n")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cosmos-sim: error:") and "disjoint seeds" in err and len(err.splitlines()) == 1
