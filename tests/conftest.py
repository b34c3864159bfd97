"""Shared fixtures, and the guard that keeps tests from leaking global state into each other.

Every test runs with one torch thread (the same numbers in any order, no oversubscription on small
CI machines) and leaves torch's global switches and the registries (worlds, dynamics families, gym
ids, policy kinds) as it found them, so the suite gives the same results run twice in one process
or in any order.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cosmos_sim.dynamics import FAMILIES  # noqa: E402
from cosmos_sim.policies.saved import POLICY_KINDS  # noqa: E402
from cosmos_sim.worlds import WORLDS, unregister_world  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _leave_globals_as_found():
    torch_state = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.get_default_dtype(),
                   torch.is_grad_enabled())
    registries = (dict(WORLDS), dict(FAMILIES), set(gym.registry), dict(POLICY_KINDS))
    yield
    threads, deterministic, dtype, grad = torch_state
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    torch.set_default_dtype(dtype)
    torch.set_grad_enabled(grad)
    worlds, families, gym_ids, kinds = registries
    for name in [n for n in WORLDS if n not in worlds]:
        unregister_world(name)
    for table, before in ((FAMILIES, families), (POLICY_KINDS, kinds)):
        for name in [n for n in table if n not in before]:
            del table[name]
    for env_id in [i for i in gym.registry if i not in gym_ids]:
        del gym.registry[env_id]


@pytest.fixture(scope="session")
def tiny_world_model(tmp_path_factory):
    """A Push world model trained in seconds at 32x32 (deterministic family): (run dir, data dir)."""
    from cosmos_sim.data import CollectConfig, collect
    from cosmos_sim.dynamics.train import train_dynamics
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.training import TrainConfig

    root = tmp_path_factory.mktemp("tiny_wm")
    collect(CollectConfig(world="push", policy="mix", skill=(0.3, 1.0), image_size=32, episodes=6), root / "data",
            progress=False)
    train_tokenizer(root / "data", root / "tok", preset("tiny", 32), TrainConfig(steps=15, batch_size=4),
                    progress=False)
    train_dynamics(root / "data", root / "tok", root / "dyn", "deterministic", "tiny",
                   TrainConfig(steps=20, batch_size=8, lr=3e-3, warmup_steps=2), progress=False)
    return root / "dyn", root / "data"
