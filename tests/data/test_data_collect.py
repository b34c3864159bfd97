import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from cosmos_sim.data import CollectConfig, EpisodeDataset, WindowDataset, collect, read_manifest, rollout_episode
from cosmos_sim.data.inspect import verify
from cosmos_sim.errors import DatasetMismatchError, UnknownChoiceError

CFG = dict(world="push", policy="mix", skill=(0.3, 1.0), image_size=32)


@pytest.fixture(scope="module")
def two_worker_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    cfg = CollectConfig(**CFG, episodes=4, workers=2, shard_mb=0.1)
    collect(cfg, out, progress=False)
    return cfg, out


@pytest.mark.slow  # worker processes
def test_two_workers_match_direct_rollouts(two_worker_dataset):
    cfg, out = two_worker_dataset
    ds = EpisodeDataset(out)
    assert len(ds) == 4 and ds.seeds == [0, 1, 2, 3]
    for i in (0, 3):
        ep, ref = ds[i], rollout_episode(cfg, seed=i)
        for key in ("pixels", "states", "actions", "rewards", "extrinsics", "fovy", "terminated", "truncated"):
            np.testing.assert_array_equal(ep[key], ref[key], err_msg=key)
        assert ep["metadata"]["seed"] == i and ep["metadata"]["world"] == "Push"
        assert ep["metadata"]["policy"] == ref["metadata"]["policy"]
    assert verify(out) == []


@pytest.mark.slow  # worker processes
def test_windows_through_dataloader_and_distributed_sampler(two_worker_dataset):
    _, out = two_worker_dataset
    ds = EpisodeDataset(out)
    windows = WindowDataset(out, context=2, horizon=1)
    expected = sum(ds.num_steps(i) + 1 - 3 + 1 for i in range(len(ds)))
    assert len(windows) == expected
    w = windows[7]
    ep = ds[int(w["episode"])]
    s = int(w["start"])
    np.testing.assert_array_equal(w["frames"].numpy(), ep["pixels"][s:s + 3].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(w["actions"].numpy(), ep["actions"][s:s + 2])
    np.testing.assert_array_equal(w["states"].numpy(), ep["states"][s:s + 3])
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(windows, num_replicas=2, rank=rank, shuffle=True, seed=0)
        loader = DataLoader(windows, batch_size=16, sampler=sampler, num_workers=2)
        for batch in loader:
            assert batch["frames"].dtype == torch.uint8 and batch["frames"].shape[1:] == (3, 3, 32, 32)
            seen.extend((int(e), int(st)) for e, st in zip(batch["episode"], batch["start"], strict=True))
    assert len(set(seen)) == len(windows)


@pytest.mark.slow  # worker processes
def test_refuses_other_world_or_image_size(two_worker_dataset, tmp_path):
    cfg, out = two_worker_dataset
    with pytest.raises(DatasetMismatchError, match="world"):
        collect(CollectConfig(**{**CFG, "world": "reach"}, episodes=1), out, progress=False)
    with pytest.raises(DatasetMismatchError, match="image_size"):
        collect(CollectConfig(**{**CFG, "image_size": 48}, episodes=1), out, progress=False)
    with pytest.raises(DatasetMismatchError, match="policy"):
        collect(CollectConfig(**{**CFG, "policy": "random"}, episodes=1), out, progress=False)


def test_config_rejects_unknown_choices():
    with pytest.raises(UnknownChoiceError, match="scripted"):
        CollectConfig(world="push", policy="nope")
    with pytest.raises(UnknownChoiceError, match="moving"):
        CollectConfig(world="push", camera="sideways")
    with pytest.raises(UnknownChoiceError, match="push"):
        CollectConfig(world="pong")
    with pytest.raises(ValueError, match="skill"):
        CollectConfig(world="push", skill=(0.8, 0.2))


def test_moving_camera_is_recorded(tmp_path):
    cfg = CollectConfig(world="reach", policy="random", camera="moving", image_size=32, episodes=1)
    ep = rollout_episode(cfg, seed=5)
    eyes = -np.einsum("tji,tj->ti", ep["extrinsics"][:, :3, :3], ep["extrinsics"][:, :3, 3])
    assert np.linalg.norm(np.diff(eyes, axis=0), axis=1).max() > 1e-3  # the camera moved
    assert ep["actions"].shape[1] == 2  # world actions only; the camera is in extrinsics


SCRIPT = """
from cosmos_sim.data import CollectConfig, collect
collect(CollectConfig(world="push", policy="random", image_size=32, episodes={n}, shard_mb=0.01), {out!r},
        progress=False)
"""


def wait_for_shards(out, k: int, timeout: float = 120.0) -> None:
    """Until a running collection's manifest lists `k` shards (or the timeout passes)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if len(json.loads((out / "manifest.json").read_text())["shards"]) >= k:
                return
        except (FileNotFoundError, ValueError):  # not written yet, or caught mid-replace
            pass
        time.sleep(0.05)


@pytest.mark.slow  # a killed worker process
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "killed"
    n = 12
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(n=n, out=str(out))])
    wait_for_shards(out, 3)  # kill once a few shards are down but before the end
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_manifest(out)
    assert 3 <= sum(s["episodes"] for s in partial["shards"]) < n
    assert subprocess.run([sys.executable, "-c", SCRIPT.format(n=n, out=str(out))]).returncode == 0
    manifest = read_manifest(out)
    seeds = [s for shard in manifest["shards"] for s in shard["seeds"]]
    assert sorted(seeds) == list(range(n))
    assert not list(out.glob(".*.tmp"))
    listed = {s["file"] for s in manifest["shards"]}
    assert {p.name for p in out.glob("*.safetensors")} == listed
    assert verify(out) == []


def test_state_only_episodes_match_the_rendered_ones():
    """`collect_states` runs the episodes `rollout_episode` records, without rendering a frame."""
    from cosmos_sim.data.collect import collect_states

    cfg = CollectConfig(world="push", policy="mix", skill=(0.3, 1.0), episodes=4, image_size=16)
    states, actions = collect_states(cfg)
    for i in range(cfg.episodes):
        ep = rollout_episode(cfg, seed=i)
        np.testing.assert_array_equal(states[i], ep["states"])
        np.testing.assert_array_equal(actions[i], ep["actions"])


def test_varied_experts_are_seeded_and_modified():
    from cosmos_sim.policies.modifiers import ModifiedPolicy
    from cosmos_sim.policies.registry import make_policy

    policies = [make_policy("varied", "push", seed=s, skill=1.0) for s in range(12)]
    assert any(isinstance(p, ModifiedPolicy) for p in policies)  # most episodes get some modifier
    obs = {"state": np.zeros((3, 12), np.float32) + 0.1}
    a = make_policy("varied", "push", seed=5).act(obs)
    np.testing.assert_array_equal(a, make_policy("varied", "push", seed=5).act(obs))


@pytest.mark.slow  # worker processes, interrupted
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_exits_130_and_leaves_a_resumable_dataset(tmp_path, workers):
    """Ctrl-C (SIGINT to the terminal's process group) during `cosmos-sim collect`: exit status 130, one line
    saying how to resume, no traceback; the same command then completes the dataset."""
    out, n = tmp_path / "interrupted", 150  # long enough (several seconds) to be interrupted on a fast machine
    cmd = [sys.executable, "-m", "cosmos_sim", "collect", "--world", "push", "--policy", "random", "--image-size",
           "32", "--episodes", str(n), "--workers", str(workers), "--shard-mb", "0.01", "--out", str(out)]
    log = tmp_path / "stderr.txt"

    def as_a_terminal_would():  # a background job (CI) inherits SIGINT ignored; a terminal's foreground does not
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    with open(log, "w") as stderr:
        proc = subprocess.Popen(cmd, stderr=stderr, start_new_session=True, preexec_fn=as_a_terminal_would)
    wait_for_shards(out, 2)  # interrupt once a few shards are down but before the end
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    err = log.read_text()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "re-run the same command to resume" in err, err
    assert 2 <= sum(s["episodes"] for s in read_manifest(out)["shards"]) < n
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert sorted(s for shard in read_manifest(out)["shards"] for s in shard["seeds"]) == list(range(n))
    assert verify(out) == []


@pytest.mark.slow  # trains
def test_multi_view_datasets_record_every_view_and_train(tmp_path):
    """collect --views 2: each frame's views and poses; windows and latent caches take each view as its own
    sequence, so the tokenizer and the dynamics train on them as they are."""
    import gymnasium as gym

    from cosmos_sim.dynamics.train import StateModelConfig, train_dynamics
    from cosmos_sim.errors import DatasetError, InputError
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.training import TrainConfig

    cfg = CollectConfig(world="push", policy="random", image_size=32, episodes=3, camera="random", views=2)
    assert cfg.identity()["views"] == 2 and "views" not in CollectConfig(**CFG, episodes=1).identity()
    out = tmp_path / "views"
    collect(cfg, out, progress=False)
    ds = EpisodeDataset(out)
    assert ds.spec.views == 2
    ep = ds[0]
    T = len(ep["actions"])
    assert ep["pixels"].shape == (T + 1, 2, 32, 32, 3) and ep["extrinsics"].shape == (T + 1, 2, 4, 4)
    env = gym.make("cosmos_sim/Push-v0", cameras=["random", "random"], image_size=32, obs_mode="pixels")
    obs, info = env.reset(seed=ds.seeds[0])  # the same seed draws the same state and the same two poses
    np.testing.assert_array_equal(obs, ep["pixels"][0])
    np.testing.assert_allclose(np.stack([c.extrinsics() for c in info["camera"]]), ep["extrinsics"][0], atol=1e-6)
    env.close()
    assert verify(out) == []
    windows = WindowDataset(out, context=2, horizon=1)
    single = sum(max(0, ds.num_steps(i) + 1 - 3 + 1) for i in range(len(ds)))
    assert len(windows) == 2 * single and int(windows[1]["view"]) == 1
    np.testing.assert_array_equal(windows[1]["frames"][0].numpy().transpose(1, 2, 0), ep["pixels"][0, 1])
    train_tokenizer(out, tmp_path / "tok", preset("tiny", 32), TrainConfig(steps=4, batch_size=4), progress=False)
    train_dynamics(out, tmp_path / "tok", tmp_path / "dyn", "deterministic", "tiny",
                   TrainConfig(steps=4, batch_size=4, warmup_steps=1), progress=False, state=StateModelConfig(steps=5),
                   cross_view=True)
    from cosmos_sim.dynamics.latents import LatentWindows, load_file

    cache = load_file(next((tmp_path / "dyn" / "cache").glob("*.safetensors")))
    assert int(cache["views"]) == 2 and len(cache["seeds"]) == 2 * len(ds)
    same, cross = LatentWindows(cache, 2, 2, [0, 1]), LatentWindows(cache, 2, 2, [0, 1], cross_view=True)
    assert len(cross) == 2 * len(same)  # each window also with the other view's targets
    fo = cache["frame_offsets"].tolist()
    item = next(cross[i] for i, (f, _, pad, d) in enumerate(cross.index) if d and not pad and f == fo[0] + 3)
    torch.testing.assert_close(item["latents"][:2], cache["latents"][fo[0] + 3:fo[0] + 5])  # context: view 0
    torch.testing.assert_close(item["latents"][2:], cache["latents"][fo[1] + 5:fo[1] + 7])  # targets: view 1
    torch.testing.assert_close(item["plucker"][2:], cache["plucker"][fo[1] + 5:fo[1] + 7])
    with pytest.raises(DatasetError, match="several camera views"):
        LatentWindows({**cache, "views": torch.tensor(1)}, 2, 2, [0], cross_view=True)
    learned = gym.make("cosmos_sim/Push-v0", backend="world_model", model=tmp_path / "dyn", obs_mode="pixels",
                       cameras=["random", "random"], device="cpu")
    assert learned.reset(seed=0)[0].shape == (2, 32, 32, 3)
    learned.close()
    from cosmos_sim.data.interchange import export_dataset

    with pytest.raises(DatasetError, match="2 camera views"):  # Minari takes one view (LeRobot exports every view)
        export_dataset(out, tmp_path / "exported", "minari", progress=False)
    for bad in (dict(camera="fixed", views=2), dict(camera="random", views=9), dict(camera="random", views=0)):
        with pytest.raises(InputError, match="views"):
            CollectConfig(world="push", **bad)
