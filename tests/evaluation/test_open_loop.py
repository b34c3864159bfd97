"""The one open-loop evaluator: references from physics or a dataset, both starts, exact metrics."""

import numpy as np
import pytest

from cosmos_sim.data import EpisodeDataset
from cosmos_sim.evaluation import open_loop as ol
from cosmos_sim.world_model import WorldModel


@pytest.fixture(scope="module")
def model_and_data(tiny_world_model):
    run, data = tiny_world_model
    return WorldModel.load(run), data


@pytest.mark.slow  # trains the session's tiny world model
def test_dataset_reference_from_the_context_frames(model_and_data):
    m, data = model_and_data
    K, ds = m.context, EpisodeDataset(data)
    ref, used = ol.from_dataset(data, range(len(ds)), K - 1 + 4)
    assert used and ref.steps == K - 1 + 4 and ref.pixels.shape[1] == K + 4
    r = ol.open_loop("push", ref, m, start="context", references=("copy_last", "ceiling"))
    assert r["given"] == K and r["steps"] == [1, 2, 3, 4]
    h = ol.at_horizons(r, (1, 4))
    # copy-last at horizon 4 against a direct numpy PSNR of the same frames
    want = []
    for i in used:
        px = ds[i]["pixels"].astype(np.float64) / 255
        want.append(10 * np.log10(1 / (((px[K - 1 + 4] - px[K - 1]) ** 2).mean() + 1e-10)))
    assert h["copy_last"][4]["psnr"] == pytest.approx(np.mean(want), rel=1e-6)
    assert h["copy_last"][1]["state_error/block_pos"] >= 0 and "state_error/block_pos" not in h["ceiling"][1]
    for name in ("model", "ceiling"):
        assert np.isfinite(h[name][1]["psnr"]) and 0 < h[name][4]["ssim"] <= 1
    assert "state_error/block_pos" in h["model"][4] and "reward_abs_error" in h["model"][4]
    # the dynamics benchmark's summary is the same evaluation
    bench = ol.held_out(m, data, range(len(ds)), horizons=(1, 4))
    assert bench["episodes"] == len(used) and bench["copy_last"][4]["psnr"] == h["copy_last"][4]["psnr"]
    assert bench["model"][4]["position_error_m"] == h["model"][4]["state_error/block_pos"]
    with pytest.raises(ValueError, match="sampling option"):
        ol.open_loop("push", ref, m, sampling={"steps": 4})
    with pytest.raises(ValueError, match="horizons"):
        ol.at_horizons(r, (5,))
    with pytest.raises(ValueError, match="references"):
        ol.open_loop("push", ref, m, references=("oracle",))


@pytest.mark.slow
def test_the_start_is_a_parameter(model_and_data):
    """start="reset" gives the model frame 0 only; "context" its K frames; both score the frames after."""
    m, data = model_and_data
    ref, _ = ol.from_dataset(data, range(len(EpisodeDataset(data))), 6)
    reset = ol.open_loop("push", ref, m, start="reset")
    ctx = ol.open_loop("push", ref, m, start="context")
    assert reset["given"] == 1 and len(reset["steps"]) == 6
    assert ctx["given"] == m.context and len(ctx["steps"]) == 7 - m.context
    # from one frame, the given frame is the reset frame: the rollout starts at the true state
    traj = ol.rollout_model(m, ref, "reset")
    np.testing.assert_array_equal(traj.pixels[:, 0], ref.pixels[:, 0])
    np.testing.assert_array_equal(traj.states[:, 0], ref.states[:, 0])
    assert traj.pixels.shape == ref.pixels.shape and traj.rewards.shape == ref.rewards.shape
    with pytest.raises(ValueError, match="start"):
        ol.open_loop("push", ref, m, start="middle")


def test_physics_reference_replays_exactly_in_its_own_engine():
    """record -> replay in the same engine reproduces every frame; PyBullet drifts a little."""
    ref = ol.record("push", [0, 1], 5, "scripted:0.75", image_size=32)
    assert ref.pixels.shape[:2] == (2, 6) and ref.actions.shape == (2, 5, 2) and ref.seeds == [0, 1]
    same = ol.replay("push", "mujoco", ref)
    np.testing.assert_array_equal(same.pixels, ref.pixels)
    r = ol.open_loop("push", ref, others={"mujoco": same, "pybullet": ol.replay("push", "pybullet", ref)})
    assert r["given"] == 1 and r["steps"] == [1, 2, 3, 4, 5]
    mj, pb = r["metrics"]["mujoco"], r["metrics"]["pybullet"]
    assert np.all(mj["psnr"] == ol.PSNR_CAP) and np.all(mj["state_error/block_pos"] == 0)
    assert np.all(mj["success_agreement"] == 1) and np.all(mj["reward_abs_error"] == 0)
    assert np.all(pb["state_error/block_pos"] < 0.01) and np.all(pb["psnr"] < ol.PSNR_CAP)
