"""Stable-Baselines3 sees our envs as ordinary Gymnasium envs (its own checker, and PPO on the learned world)."""

import gymnasium as gym
import pytest

import cosmos_sim  # noqa: F401

sb3 = pytest.importorskip("stable_baselines3", reason="stable-baselines3 is a test extra")
from stable_baselines3.common.env_checker import check_env  # noqa: E402

pytestmark = pytest.mark.slow  # trains SB3 PPO on the tiny world model

ID = "cosmos_sim/Push-v0"


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
@pytest.mark.parametrize("obs_mode", ["state", "both"])
def test_sb3_check_env_physics(backend, obs_mode):
    env = gym.make(ID, backend=backend, obs_mode=obs_mode)
    check_env(env.unwrapped, warn=True)
    env.close()


@pytest.mark.parametrize("obs_mode", ["pixels", "state", "both"])
def test_sb3_check_env_world_model(tiny_world_model, obs_mode):
    env = gym.make(ID, backend="world_model", model=tiny_world_model[0], obs_mode=obs_mode)
    check_env(env.unwrapped, warn=True)
    env.close()


def test_sb3_ppo_runs_on_world_model(tiny_world_model):
    env = gym.make(ID, backend="world_model", model=tiny_world_model[0], obs_mode="state")
    model = sb3.PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=2048)
    assert model.num_timesteps == 2048
    env.close()


def test_sb3_ppo_through_the_batched_adapter(tiny_world_model):
    """SB3 PPO steps 64 learned envs in one forward pass (SB3VecEnv), and a physics vector env too."""
    from cosmos_sim.envs.sb3 import SB3VecEnv

    learned = SB3VecEnv(gym.make_vec(ID, num_envs=64, backend="world_model", model=tiny_world_model[0],
                                     obs_mode="state", device="cpu"))
    model = sb3.PPO("MlpPolicy", learned, n_steps=32, batch_size=512, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64 * 32 * 2)
    assert model.num_timesteps == 64 * 32 * 2
    learned.close()
    physics = SB3VecEnv(gym.make_vec(ID, num_envs=4, backend="mujoco", obs_mode="state"))
    model = sb3.PPO("MlpPolicy", physics, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    physics.close()


def test_adapter_resets_on_the_same_step_with_the_terminal_observation(tiny_world_model):
    import numpy as np

    from cosmos_sim.envs.sb3 import SB3VecEnv

    venv = gym.make_vec(ID, num_envs=3, backend="world_model", model=tiny_world_model[0], obs_mode="state",
                        device="cpu", max_episode_steps=4)
    env = SB3VecEnv(venv)
    env.seed(0)
    first = env.reset()
    assert first.shape == (3, 12)
    for _ in range(4):
        obs, rew, done, infos = env.step(np.zeros((3, 2), np.float32))
    assert done.all() and all(i["TimeLimit.truncated"] for i in infos)
    terminal = np.stack([i["terminal_observation"] for i in infos])
    assert not np.allclose(terminal, obs)  # the returned observation is the new episode's first
    obs2, _, done2, _ = env.step(np.zeros((3, 2), np.float32))
    assert not done2.any()  # no second reset on the next step (SB3's same-step semantics, not NEXT_STEP)
    env.close()


@pytest.mark.parametrize("backend", ["mujoco", "pybullet", "world_model"])
def test_sb3_mlp_and_cnn_policies_take_one_part_observations(backend):
    """obs_mode "state" is the state Box and "pixels" the image Box, as SB3's MlpPolicy and CnnPolicy expect
    (a Dict needs MultiInputPolicy). The learned world is the shipped Push model (64 px: NatureCNN's size)."""
    import numpy as np

    for obs_mode, policy in (("state", "MlpPolicy"), ("pixels", "CnnPolicy")):
        env = gym.make(ID, backend=backend, obs_mode=obs_mode)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box)
        assert space.dtype == (np.float32 if obs_mode == "state" else np.uint8)
        model = sb3.PPO(policy, env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=32)
        action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
        assert env.action_space.contains(action)
        env.close()
