"""PushT (gym-pusht, pymunk: the `pusht` extra, in the test extra too): the first suite env that is not MuJoCo,
recorded by `cosmos-sim collect --env` and reset by its twin where the env starts. Trains nothing."""

import json

import numpy as np
import pytest

pytest.importorskip("gym_pusht", reason="PushT is the `pusht` extra")

from cosmos_sim.cli import main  # noqa: E402
from cosmos_sim.data import EpisodeDataset  # noqa: E402

ID = "gym_pusht:gym_pusht/PushT-v0"  # "module:id": importing gym_pusht registers the id
KWARGS = {"obs_type": "state", "max_episode_steps": 5}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pygame's own
def test_collect_records_pusht(tmp_path):
    assert main(["collect", "--env", ID, "--env-kwargs", json.dumps(KWARGS), "--policy", "random", "--episodes", "2",
                 "--image-size", "32", "--out", str(tmp_path), "--no-progress"]) == 0
    ds = EpisodeDataset(tmp_path)
    for i in range(2):
        ep = ds[i]
        assert ep["states"].shape == (6, 5) and np.all(np.isfinite(ep["states"]))
        assert ep["pixels"].shape == (6, 32, 32, 3) and ep["pixels"].std() > 10  # 680 px frames, resized
        assert np.abs(ep["actions"]).max() <= 1  # the board's [0, 512] mapped to [-1, 1]
        assert ep["metadata"]["has_success"]
    assert np.abs(ds[0]["states"][0] - ds[1]["states"][0]).max() > 1.0  # seeds place the T apart


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_twin_starts_where_pusht_does():
    import gymnasium as gym

    from cosmos_sim.envs.source_env import SourceEnv, env_world

    from twins.untrained import untrained_twin

    world = env_world(ID, KWARGS)
    twin = gym.make("cosmos_sim/Learned-v0", model=untrained_twin(world.name), obs_mode="state", device="cpu")
    env = SourceEnv(world, obs_mode="state")
    try:
        firsts = []
        for seed in (0, 3, 3):
            a, _ = twin.reset(seed=seed)
            b, _ = env.reset(seed=seed)
            np.testing.assert_allclose(a, world.state_to_obs(b), atol=1e-4)
            firsts.append(a)
        assert np.abs(firsts[0] - firsts[1]).max() > 1.0 and np.array_equal(firsts[1], firsts[2])
    finally:
        twin.close()
        env.close()
