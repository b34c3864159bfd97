"""torchrl wraps our envs (docs/torchrl.md): `GymWrapper` over every backend, the batched learned vector env and
a Gymnasium env's learned twin passes `check_env_specs` and rolls out 100 steps; the info reader and the collector
loop of the how-to work. Skipped where torchrl is not installed (`pip install -e .[torchrl]`).

Physics at 32x32; the learned world is the shipped Push model (64x64, its size); nothing is trained here."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import cosmos_sim  # noqa: F401  (registers the ids)
from cosmos_sim.errors import EpisodeOverError, UnknownChoiceError

ID = "cosmos_sim/Push-v0"
OBS_MODES = ["both", "state", "pixels"]
STEPS = 100


@pytest.fixture(scope="module")
def trl():
    """torchrl's pieces, or the module's tests skip."""
    pytest.importorskip("torchrl")
    from torchrl.envs import GymWrapper, default_info_dict_reader
    from torchrl.envs.utils import check_env_specs

    return GymWrapper, check_env_specs, default_info_dict_reader


def check_and_roll(trl, gym_env, batch=()):
    """check_env_specs, then a 100-step rollout through episode ends (torchrl resets what finished)."""
    GymWrapper, check_env_specs, _ = trl
    env = GymWrapper(gym_env)
    assert env.batch_size == torch.Size(batch)
    env.set_seed(0)
    check_env_specs(env)
    td = env.rollout(STEPS, break_when_any_done=False)
    assert td.batch_size == torch.Size([*batch, STEPS])
    env.close()
    return td


def expected_keys(obs_mode: str, batched: bool = False) -> set[str]:
    """torchrl's names: Dict(pixels, state) gives "pixels" and "observation" (the state); a lone Box is "observation",
    unless it looks like one image ([H, W, 3] in 0..255: "pixels"), which a batch of them does not."""
    return {"both": {"pixels", "observation"}, "state": {"observation"},
            "pixels": {"observation" if batched else "pixels"}}[obs_mode]


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("backend", ["mujoco", "pybullet", "world_model"])
def test_single_env_every_backend(trl, backend, obs_mode):
    kwargs = {"device": "cpu"} if backend == "world_model" else {"image_size": 32}
    td = check_and_roll(trl, gym.make(ID, backend=backend, obs_mode=obs_mode, **kwargs))
    assert expected_keys(obs_mode) <= set(td["next"].keys())
    assert td["next", "truncated"][-1].all()  # Push's 100-step limit ends the rollout's episode
    if obs_mode != "state":
        px = td["next", "pixels"]
        assert px.dtype == torch.uint8 and px.shape[-3:] == ((64, 64, 3) if backend == "world_model" else (32, 32, 3))


def test_several_views(trl):
    td = check_and_roll(trl, gym.make(ID, obs_mode="both", image_size=32, cameras=["default", "random"]))
    assert td["next", "pixels"].shape == (STEPS, 2, 32, 32, 3)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_batched_learned_vector_env(trl, obs_mode):
    """autoreset_mode="disabled" (torchrl's preferred): torchrl resets finished envs through reset_mask; 7-step
    episodes, so each env finishes 14 times within the rollout."""
    envs = gym.make_vec(ID, num_envs=2, backend="world_model", obs_mode=obs_mode, device="cpu",
                        autoreset_mode="disabled", max_episode_steps=7)
    td = check_and_roll(trl, envs, batch=(2,))
    assert expected_keys(obs_mode, batched=True) <= set(td["next"].keys())
    assert td["next", "done"].squeeze(-1).sum(1).tolist() == [STEPS // 7] * 2


def test_same_step_autoreset_works_for_one_array_observations(trl):
    """autoreset_mode="same_step" also wraps (torchrl reads info["final_obs"]) where the observation is one array."""
    envs = gym.make_vec(ID, num_envs=2, backend="world_model", obs_mode="state", device="cpu",
                        autoreset_mode="same_step", max_episode_steps=7)
    td = check_and_roll(trl, envs, batch=(2,))
    assert td["next", "done"].sum().item() == 2 * (STEPS // 7)


def test_physics_vector_env(trl):
    envs = gym.make_vec(ID, num_envs=2, backend="mujoco", obs_mode="both", image_size=32, autoreset_mode="disabled",
                        max_episode_steps=7)
    td = check_and_roll(trl, envs, batch=(2,))
    assert td["next", "done"].sum().item() == 2 * (STEPS // 7)


def test_info_reader_of_the_how_to(trl):
    """The reader docs/torchrl.md gives: success and diverged as bool entries, single and vector envs alike
    (the default reader cannot read the single envs' Python bools, nor their CameraPose)."""
    GymWrapper, check_env_specs, default_info_dict_reader = trl
    from torchrl.data import Unbounded

    class FlagReader(default_info_dict_reader):
        def __init__(self, batch_size=(), keys=("success", "diverged")):
            super().__init__(list(keys), spec={k: Unbounded(batch_size, dtype=torch.bool) for k in keys})

        def __call__(self, info_dict, tensordict):
            return super().__call__({k: np.asarray(info_dict[k]) for k in self.keys}, tensordict)

    for gym_env in (gym.make(ID, obs_mode="state"),
                    gym.make_vec(ID, num_envs=2, backend="world_model", obs_mode="state", device="cpu",
                                 autoreset_mode="disabled", max_episode_steps=7)):
        env = GymWrapper(gym_env)
        env.set_info_dict_reader(FlagReader(env.batch_size))
        check_env_specs(env)
        td = env.rollout(20, break_when_any_done=False)
        assert td["next", "success"].dtype == torch.bool and td["next", "success"].shape == (*env.batch_size, 20)
        assert not td["next", "diverged"].any()
        env.close()
    # The learned vector env's info is all arrays: torchrl's automatic reader takes every entry.
    env = GymWrapper(gym.make_vec(ID, num_envs=2, backend="world_model", obs_mode="state", device="cpu",
                                  autoreset_mode="disabled", max_episode_steps=7)).auto_register_info_dict()
    check_env_specs(env)
    td = env.rollout(20, break_when_any_done=False)
    assert td["next", "camera"].shape == (2, 20, 10) and td["next", "uncertainty"].shape == (2, 20)
    env.close()


def test_collector_loop_of_the_how_to(trl):
    from tensordict.nn import TensorDictModule
    from torchrl.collectors import Collector

    GymWrapper, _, _ = trl
    env = GymWrapper(gym.make_vec(ID, num_envs=4, backend="world_model", obs_mode="state", device="cpu",
                                  autoreset_mode="disabled"))
    policy = TensorDictModule(torch.nn.Sequential(torch.nn.Linear(12, 2), torch.nn.Tanh()),
                              in_keys=["observation"], out_keys=["action"])
    collector = Collector(env, policy, frames_per_batch=4 * 60, total_frames=4 * 120,
                          auto_register_policy_transforms=False)
    batches = list(collector)
    collector.shutdown()
    assert [b.batch_size for b in batches] == [torch.Size([4, 60])] * 2
    assert batches[1]["next", "done"].sum().item() == 4  # Push's 100-step episodes end within the second batch


def test_twin_of_a_gymnasium_env(trl):
    """`cosmos_sim/Learned-v0` (the twin has the source env's spaces), single and batched. An untrained twin of
    the point mass of tests/twins, built in memory: what torchrl sees is its spaces, not its skill."""
    from twins import pointmass
    from twins.untrained import untrained_twin

    pointmass.register()
    model = untrained_twin("env:cosmos_test/PointMass-v0")
    td = check_and_roll(trl, gym.make("cosmos_sim/Learned-v0", model=model, obs_mode="both", device="cpu"))
    assert td["next", "observation"].dtype == torch.float64  # the point mass's own Box(float64)
    assert td["next", "pixels"].shape == (STEPS, 32, 32, 3)
    check_and_roll(trl, gym.make_vec("cosmos_sim/Learned-v0", num_envs=2, model=model, obs_mode="state",
                                     device="cpu", autoreset_mode="disabled"), batch=(2,))


# --- the autoreset mode torchrl needs (plain Gymnasium: runs without torchrl) -----------------------------
def test_disabled_autoreset_mode():
    """autoreset_mode="disabled": a finished env stays finished until reset(options={"reset_mask": ...}); stepping
    it before raises, naming it. Physics vector envs take the same keyword."""
    from gymnasium.vector import AutoresetMode

    envs = gym.make_vec(ID, num_envs=2, backend="world_model", obs_mode="state", device="cpu",
                        autoreset_mode="disabled", max_episode_steps=2)
    assert envs.autoreset_mode == envs.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    envs.reset(seed=0)
    a = np.zeros((2, 2), np.float32)
    envs.step(a)
    obs, reward, terminated, truncated, info = envs.step(a)
    assert truncated.all() and "final_obs" not in info
    with pytest.raises(EpisodeOverError, match=r"envs \[0, 1\] have finished.*reset_mask"):
        envs.step(a)
    obs2, _ = envs.reset(options={"reset_mask": np.array([True, False])})
    np.testing.assert_array_equal(obs2[1], obs[1])  # env 1 not reset: still its last observation
    with pytest.raises(EpisodeOverError, match=r"envs \[1\]"):
        envs.step(a)
    envs.reset(options={"reset_mask": np.array([False, True])})
    *_, truncated, _ = envs.step(a)
    assert not truncated.any()
    envs.close()
    phys = gym.make_vec(ID, num_envs=2, backend="mujoco", obs_mode="state", autoreset_mode="disabled")
    assert phys.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    phys.close()
    with pytest.raises(UnknownChoiceError, match="valid choices: disabled, next_step, same_step"):
        gym.make_vec(ID, num_envs=2, backend="world_model", obs_mode="state", autoreset_mode="never")
