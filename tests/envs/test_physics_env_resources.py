"""Issue 2: creating, stepping, rendering and closing 100 envs keeps file descriptors and memory flat."""

import gc
import os

import gymnasium as gym
import pytest

import cosmos_sim

pytestmark = pytest.mark.slow  # many envs and worker processes

N_ENVS = 100
WARM_UP = 8
# A leaked env (MjModel/MjData + EGL renderer, or a Bullet client) costs about 20 MB here, so 100 of them
# would cost ~2 GB; allocator noise after the warm-up is a few MB.
RSS_BOUND_MB = 32.0
FD_BOUND = 2


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def one_env(backend: str, k: int) -> None:
    worlds = list(cosmos_sim.WORLDS)
    world = worlds[k % len(worlds)]
    env = gym.make(f"cosmos_sim/{world}-v0", backend=backend, render_mode="rgb_array", image_size=32)
    obs, _ = env.reset(seed=k)
    for _ in range(2):
        obs, *_ = env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == (32, 32, 3) and obs["pixels"].shape == (32, 32, 3)
    env.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
@pytest.mark.parametrize("backend", ("mujoco", "pybullet"))
def test_many_envs_keep_fds_and_memory_flat(backend):
    for k in range(WARM_UP):
        one_env(backend, k)
    gc.collect()
    fds0, rss0 = open_fds(), rss_mb()
    peak = rss0
    for k in range(N_ENVS):
        one_env(backend, WARM_UP + k)
        if k % 10 == 9:
            peak = max(peak, rss_mb())
    gc.collect()
    fds1, rss1 = open_fds(), rss_mb()
    assert fds1 - fds0 <= FD_BOUND, f"{backend}: open fds grew {fds0} -> {fds1} over {N_ENVS} envs"
    assert rss1 - rss0 <= RSS_BOUND_MB, f"{backend}: RSS grew {rss0:.1f} -> {rss1:.1f} MB over {N_ENVS} envs"
    assert peak - rss0 <= RSS_BOUND_MB, f"{backend}: RSS peaked at {peak:.1f} MB (from {rss0:.1f})"


def test_close_is_idempotent_and_releases_the_sim():
    for backend in ("mujoco", "pybullet"):
        env = gym.make("cosmos_sim/Push-v0", backend=backend)
        env.reset(seed=0)
        env.render()
        env.close()
        env.close()
        assert env.unwrapped.sim is None
    # A closed PyBullet client is really gone.
    import pybullet as p

    env = gym.make("cosmos_sim/Push-v0", backend="pybullet")
    cid = env.unwrapped.sim.cid
    assert p.isConnected(physicsClientId=cid)
    env.close()
    assert not p.isConnected(physicsClientId=cid)
