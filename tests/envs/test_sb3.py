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
    model = sb3.PPO("MultiInputPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=2048)
    assert model.num_timesteps == 2048
    env.close()
