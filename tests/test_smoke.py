import gymnasium as gym
import numpy as np

import cosmos_sim  # noqa: F401


def test_make_and_step_every_world():
    for world in cosmos_sim.WORLDS:
        env = gym.make(f"cosmos_sim/{world}-v0")
        obs, info = env.reset(seed=0)
        assert obs["pixels"].shape == (64, 64, 3)
        obs, r, term, trunc, info = env.step(np.zeros(env.action_space.shape, np.float32))
        assert np.isfinite(r) and "success" in info
        env.close()
