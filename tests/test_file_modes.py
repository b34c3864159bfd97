"""Files written atomically get the permissions a plain open() would give (0666 less the umask), not
mkstemp's 0600: a dataset, a checkpoint, a report and a video shared with a group stay readable."""

import os
import stat

import numpy as np
import pytest

from cosmos_sim.fileio import atomic_write_json


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_shards_checkpoints_reports_and_videos_are_world_readable(tmp_path, umask_022):
    import torch

    from cosmos_sim.data import CollectConfig, collect
    from cosmos_sim.training.checkpoint import write_checkpoint
    from cosmos_sim.video import save_png, write_mp4

    collect(CollectConfig(world="push", policy="random", image_size=16, episodes=1), tmp_path / "d", progress=False)
    shard = next((tmp_path / "d").glob("shard-*.safetensors"))
    write_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(2)}, {"kind": "test"})
    atomic_write_json(tmp_path / "report.json", {"a": 1})
    frames = [np.zeros((16, 16, 3), np.uint8)] * 3
    write_mp4(tmp_path / "v.mp4", frames)
    save_png(tmp_path / "p.png", frames[0])
    for p in (shard, tmp_path / "d" / "manifest.json", tmp_path / "c.safetensors", tmp_path / "report.json",
              tmp_path / "v.mp4", tmp_path / "p.png"):
        assert mode(p) == 0o644, f"{p.name}: {oct(mode(p))}"


def test_a_tighter_umask_is_respected(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write_json(tmp_path / "r.json", {})
    finally:
        os.umask(old)
    assert mode(tmp_path / "r.json") == 0o600


def test_results_entries_from_two_runs_both_stay(tmp_path):
    """Two runs of one benchmark writing the same results file: each entry goes in beside the other's (the file
    is read again just before the write), with the machine recorded."""
    from cosmos_sim.fileio import update_results

    path = tmp_path / "results" / "bench_cpu.json"
    update_results(path, "runs", "push", {"success": 0.9})
    out = update_results(path, "runs", "reach", {"success": 0.6})
    assert out["runs"] == {"push": {"success": 0.9}, "reach": {"success": 0.6}}
    assert out["machine"]["device"] == "cpu" and out["machine"]["cpus"] >= 1
    assert update_results(path, "runs", "push", {"success": 1.0})["runs"]["push"] == {"success": 1.0}
    assert not [p for p in path.parent.iterdir() if p != path]  # no temp file left behind
