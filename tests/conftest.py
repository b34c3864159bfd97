"""Shared fixtures, and the guard that keeps tests from leaking global state into each other.

Every test runs with one torch thread (COSMOS_TEST_THREADS=2 runs it with two: another reduction
order, so a test that leans on one machine's exact floating point shows up here first; .ci/run does
both) and leaves torch's global switches and the registries (worlds, dynamics families, gym ids,
policy kinds) as it found them, so the suite gives the same results run twice in one process or in
any order.

A test outside `slow` that steps an optimizer fails (in its body or in a fixture it sets up): the
fast lane trains nothing. Fast tests that need a trained model load the tiny ones in tests/assets
(rebuilt by tests/assets/build.py).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.optim.optimizer import register_optimizer_step_pre_hook  # noqa: E402

from cosmos_sim.dynamics import FAMILIES  # noqa: E402
from cosmos_sim.policies.saved import POLICY_KINDS  # noqa: E402
from cosmos_sim.worlds import WORLDS, unregister_world  # noqa: E402

THREADS = int(os.environ.get("COSMOS_TEST_THREADS", "1"))
SEED_SHIFT = int(os.environ.get("COSMOS_TEST_SEED_SHIFT", "0"))  # a probe of margins (tests/margins.py), not CI


class TrainsInFastTest(AssertionError):
    """A test outside `slow` ran an optimizer step."""


def _refuse_optimizer_steps(item):
    def refuse(optimizer, args, kwargs):
        raise TrainsInFastTest(f"{item.nodeid} is not marked slow but steps a {type(optimizer).__name__}: mark it "
                               "@pytest.mark.slow, or use a model from tests/assets (tests/assets/build.py)")

    return register_optimizer_step_pre_hook(refuse)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Fixture set-up counts: a session fixture that trains is set up by the first test that asks for it."""
    handle = None if item.get_closest_marker("slow") else _refuse_optimizer_steps(item)
    try:
        return (yield)
    finally:
        if handle is not None:
            handle.remove()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    handle = None if item.get_closest_marker("slow") else _refuse_optimizer_steps(item)
    try:
        return (yield)
    finally:
        if handle is not None:
            handle.remove()


@pytest.fixture(scope="session", autouse=True)
def _test_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def _seed_shift():
    """COSMOS_TEST_SEED_SHIFT=k: every torch.manual_seed(s) seeds s + k (another random path, same test)."""
    if not SEED_SHIFT:
        yield
        return
    seed = torch.manual_seed
    torch.manual_seed = lambda s: seed(int(s) + SEED_SHIFT)
    try:
        yield
    finally:
        torch.manual_seed = seed


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
def push_data(tmp_path_factory):
    """Six Push episodes at 32x32 from the fixed camera, experts of skill 0.3-1 (the data of tiny_world_model):
    shared by the session, so read it, never write into it."""
    from cosmos_sim.data import CollectConfig, collect

    from assets.build import PUSH_DATA

    out = tmp_path_factory.mktemp("push_data") / "data"
    collect(CollectConfig(**PUSH_DATA), out, progress=False)
    return out


@pytest.fixture(scope="session")
def push_views_data(tmp_path_factory):
    """Three Push episodes at 32x32, each from its own random camera, in several shards: what the dataset
    interchange tests round-trip. Shared by the session: read it, never write into it."""
    from cosmos_sim.data import CollectConfig, collect

    out = tmp_path_factory.mktemp("push_views") / "push_data"
    collect(CollectConfig(world="push", policy="mix", skill=(0.3, 1.0), camera="random", image_size=32, episodes=3,
                          shard_mb=0.05), out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_world_model(tmp_path_factory, push_data):
    """A tiny Push world model at 32x32 (deterministic family; tests/assets/tiny_push.safetensors) and the
    data it was trained on (`push_data`): (run dir, data dir). Nothing is trained."""
    from assets.build import TINY_PUSH, install

    return install(TINY_PUSH, tmp_path_factory.mktemp("tiny_wm") / "dyn"), push_data


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_world_model):
    """A tiny tokenizer run trained on `tiny_world_model`'s data, for slow tests that train dynamics on it."""
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.training import TrainConfig

    run, data = tiny_world_model
    train_tokenizer(data, run.parent / "tok", preset("tiny", 32), TrainConfig(steps=15, batch_size=4), progress=False)
    return run.parent / "tok"
