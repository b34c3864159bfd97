"""Issue 2: every world x physics backend x obs_mode passes Gymnasium's checker and is deterministic."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import cosmos_sim  # registers the ids
from cosmos_sim.policies.base import obs_dict, space_dict

WORLDS = list(cosmos_sim.WORLDS)
BACKENDS = ("mujoco", "pybullet")
OBS_MODES = ("pixels", "state", "both")
N_STEPS = 6


def make(world, backend, obs_mode="both", **kw):
    return gym.make(f"cosmos_sim/{world}-v0", backend=backend, obs_mode=obs_mode, render_mode="rgb_array", **kw)


def rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    frames, states = [obs], [info["state"]]
    for a in actions:
        obs, _, _, _, info = env.step(a)
        frames.append(obs)
        states.append(info["state"])
    return frames, states


def assert_same(run_a, run_b):
    (obs_a, st_a), (obs_b, st_b) = run_a, run_b
    assert len(obs_a) == len(obs_b)
    for oa, ob in zip(map(obs_dict, obs_a), map(obs_dict, obs_b), strict=True):
        assert oa.keys() == ob.keys()
        for k in oa:
            np.testing.assert_array_equal(oa[k], ob[k], err_msg=k)
    for sa, sb in zip(st_a, st_b, strict=True):
        np.testing.assert_array_equal(sa, sb)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("world", WORLDS)
def test_check_env_and_determinism(world, backend, obs_mode):
    env = make(world, backend, obs_mode)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the checker reports most problems as warnings
            check_env(env.unwrapped, skip_render_check=False)
        keys = {"pixels": {"pixels"}, "state": {"state"}, "both": {"pixels", "state"}}[obs_mode]
        # One-part observations are the array itself (a Box space), as libraries like SB3 expect.
        assert isinstance(env.observation_space, gym.spaces.Dict if obs_mode == "both" else gym.spaces.Box)
        assert set(space_dict(env.observation_space)) == keys

        rng = np.random.default_rng(7)
        actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(N_STEPS)]
        first = rollout(env, 11, actions)
        assert set(obs_dict(first[0][0])) == keys
        for o in first[0]:
            assert env.observation_space.contains(o)
        # The actions must actually change the world, or the determinism check below proves little.
        assert not np.array_equal(first[1][0], first[1][-1])
        # One env reset twice.
        assert_same(first, rollout(env, 11, actions))
        # A second, fresh env.
        other = make(world, backend, obs_mode)
        try:
            assert_same(first, rollout(other, 11, actions))
        finally:
            other.close()
        # Different seeds give different initial states.
        starts = {env.reset(seed=s)[1]["state"].tobytes() for s in range(4)}
        assert len(starts) == 4
    finally:
        env.close()


@pytest.mark.parametrize("world", WORLDS)
def test_same_seed_same_initial_state_in_both_backends(world):
    envs = {b: make(world, b, "state") for b in BACKENDS}
    try:
        for seed in (0, 1, 2, 3, 4):
            s = {b: e.reset(seed=seed)[1]["state"] for b, e in envs.items()}
            np.testing.assert_allclose(s["mujoco"], s["pybullet"], atol=1e-5, rtol=0,
                                       err_msg=f"{world} seed {seed}")
            obs = {b: e.reset(seed=seed)[0] for b, e in envs.items()}
            np.testing.assert_allclose(obs["mujoco"], s["mujoco"], atol=0)
    finally:
        for e in envs.values():
            e.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_info_carries_success_camera_state(backend):
    env = make("Reach", backend)
    try:
        _, info = env.reset(seed=0)
        for _ in range(2):
            assert isinstance(info["success"], bool)
            assert isinstance(info["camera"], cosmos_sim.CameraPose)
            assert info["camera"] == env.unwrapped.camera
            assert info["state"].dtype == np.float32 and info["state"].shape == (env.unwrapped.world.state_dim,)
            assert info["diverged"] is False
            _, _, _, _, info = env.step(np.zeros(2, np.float32))
    finally:
        env.close()
