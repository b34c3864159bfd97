"""Issue 2: cameras, camera control, image sizes, vector envs and gym ids of the physics backends."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import cosmos_sim
from cosmos_sim.camera import CameraPose, orbit

BACKENDS = ("mujoco", "pybullet")


def make(world="Push", backend="mujoco", **kw):
    kw.setdefault("render_mode", "rgb_array")
    return gym.make(f"cosmos_sim/{world}-v0", backend=backend, **kw)


def in_range(pose: CameraPose, rng_: cosmos_sim.CameraRange, tol=1e-6) -> bool:
    az, el, dist = pose.orbit_params()
    return (rng_.azimuth[0] - tol <= az <= rng_.azimuth[1] + tol
            and rng_.elevation[0] - tol <= el <= rng_.elevation[1] + tol
            and rng_.distance[0] - tol <= dist <= rng_.distance[1] + tol
            and np.allclose(pose.target, rng_.target) and pose.fovy == rng_.fovy)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("world", ("Push", "Drop"))
def test_random_camera_samples_the_range_deterministically(world, backend):
    env = make(world, backend, camera="random", obs_mode="pixels")
    ref = make(world, backend, obs_mode="pixels")
    try:
        rng_ = env.unwrapped.world.camera_range
        poses = {}
        for seed in range(6):
            obs, info = env.reset(seed=seed)
            pose = info["camera"]
            assert in_range(pose, rng_), pose.orbit_params()
            poses[seed] = pose
            again_obs, again = env.reset(seed=seed)
            assert again["camera"] == pose
            np.testing.assert_array_equal(again_obs, obs)
        assert len(set(poses.values())) == len(poses)  # a new pose per seed
        # The random camera is really used: the default camera sees another picture of the same scene.
        ref_obs, ref_info = ref.reset(seed=0)
        obs, info = env.reset(seed=0)
        np.testing.assert_array_equal(ref_info["state"], info["state"])
        assert ref_info["camera"] == env.unwrapped.world.default_camera
        assert not np.array_equal(ref_obs, obs)
    finally:
        env.close()
        ref.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_option_camera_sets_the_pose(backend):
    pose = orbit(70.0, -50.0, 1.2, target=(0.05, 0.0, 0.0), fovy=50.0)
    env = make("Push", backend)
    fixed = make("Push", backend, camera=pose)
    try:
        obs, info = env.reset(seed=3, options={"camera": pose})
        assert info["camera"] == pose and env.unwrapped.camera == pose
        f_obs, f_info = fixed.reset(seed=3)
        assert f_info["camera"] == pose
        np.testing.assert_array_equal(obs["pixels"], f_obs["pixels"])
        np.testing.assert_array_equal(env.render(), obs["pixels"])
        # The pose stays for the episode ...
        obs2, *_, info2 = env.step(np.zeros(2, np.float32))
        assert info2["camera"] == pose
        # ... and only for it: a plain reset returns to the env's own camera (the world default here).
        d_obs, d_info = env.reset(seed=3)
        assert d_info["camera"] == env.unwrapped.world.default_camera
        assert not np.array_equal(d_obs["pixels"], obs["pixels"])
        # "random" works as an option too, inside the range.
        _, r_info = env.reset(seed=3, options={"camera": "random"})
        assert in_range(r_info["camera"], env.unwrapped.world.camera_range)
    finally:
        env.close()
        fixed.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_camera_control_moves_the_camera_inside_the_range(backend):
    env = make("Push", backend, camera_control=True)
    try:
        world = env.unwrapped.world
        rng_ = world.camera_range
        assert env.action_space.shape == (world.action_dim + 3,)
        obs, info = env.reset(seed=0)
        az0, el0, d0 = info["camera"].orbit_params()
        # Zero camera action: the camera stays.
        obs, _, _, _, info = env.step(np.zeros(5, np.float32))
        assert info["camera"] == env.unwrapped.camera
        np.testing.assert_allclose(info["camera"].orbit_params(), (az0, el0, d0), atol=1e-6)
        # A full positive step moves each orbit parameter by the range's max_step.
        before = obs["pixels"]
        obs, _, _, _, info = env.step(np.array([0, 0, 1, 1, 1], np.float32))
        np.testing.assert_allclose(info["camera"].orbit_params(),
                                   np.array(rng_.clamp(az0 + rng_.max_step[0], el0 + rng_.max_step[1],
                                                       d0 + rng_.max_step[2])), atol=1e-6)
        assert not np.array_equal(before, obs["pixels"])
        np.testing.assert_array_equal(env.render(), obs["pixels"])
        # Pushing hard in one direction for long ends at the range's edge, never past it.
        seen = []
        rng = np.random.default_rng(0)
        for t in range(60):
            a = np.concatenate([rng.uniform(-1, 1, 2), [1.0, -1.0, 1.0] if t < 40 else rng.uniform(-1, 1, 3)])
            _, _, term, trunc, info = env.step(a.astype(np.float32))
            seen.append(info["camera"])
            assert in_range(info["camera"], rng_, tol=1e-4), info["camera"].orbit_params()
            if term or trunc:
                env.reset(seed=t)
        az, el, d = seen[39].orbit_params()
        assert az == pytest.approx(rng_.azimuth[1], abs=1e-4)
        assert el == pytest.approx(rng_.elevation[0], abs=1e-4)
        assert d == pytest.approx(rng_.distance[1], abs=1e-4)
    finally:
        env.close()


def test_camera_control_is_deterministic():
    runs = []
    for _ in range(2):
        env = make("Reach", "mujoco", camera_control=True, camera="random", obs_mode="pixels")
        obs, info = env.reset(seed=5)
        rng = np.random.default_rng(1)
        out = [obs]
        for _ in range(5):
            obs, *_ = env.step(rng.uniform(-1, 1, 5).astype(np.float32))
            out.append(obs)
        runs.append(np.stack(out))
        env.close()
    np.testing.assert_array_equal(*runs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size,hw", [(32, (32, 32)), ((48, 80), (48, 80)), ([80, 48], (80, 48)), (256, (256, 256))])
def test_image_sizes(backend, size, hw):
    env = make("Drop", backend, image_size=size)
    try:
        assert env.observation_space["pixels"].shape == (*hw, 3)
        obs, _ = env.reset(seed=0)
        assert obs["pixels"].shape == (*hw, 3) and obs["pixels"].dtype == np.uint8
        assert env.render().shape == (*hw, 3)
        obs, *_ = env.step(np.zeros(2, np.float32))
        assert obs["pixels"].shape == (*hw, 3)
        assert obs["pixels"].std() > 5  # a picture, not a blank buffer
    finally:
        env.close()


@pytest.mark.parametrize("bad", [0, -4, 257, 1000, (64,), (64, 64, 3), (0, 64), (64, 300), 64.0, (64.0, 64),
                                 "64", None, True, (True, 64)])
def test_invalid_image_sizes_raise_value_error(bad):
    with pytest.raises(ValueError, match="image_size"):
        make("Push", "mujoco", image_size=bad)
    with pytest.raises(ValueError, match="image_size"):
        make("Push", "pybullet", image_size=bad)


def test_default_image_size_is_64():
    env = make("Reach")
    assert env.observation_space["pixels"].shape == (64, 64, 3)
    env.close()


@pytest.mark.slow  # async worker processes
@pytest.mark.parametrize("mode", ("sync", "async"))
@pytest.mark.parametrize("backend", BACKENDS)
def test_make_vec_physics(backend, mode):
    # Render in this process first: forked workers used to hang on Mesa's dead render threads.
    single = make("Reach", backend, image_size=32)
    single.reset(seed=0)
    single.render()
    venv = gym.make_vec("cosmos_sim/Reach-v0", num_envs=2, vectorization_mode=mode, backend=backend,
                        image_size=32)
    try:
        if mode == "async":
            assert isinstance(venv, gym.vector.AsyncVectorEnv)
            venv.reset_async(seed=10)
            obs, info = venv.reset_wait(timeout=30)  # raises instead of hanging
        else:
            assert isinstance(venv, gym.vector.SyncVectorEnv)
            obs, info = venv.reset(seed=10)
        assert obs["pixels"].shape == (2, 32, 32, 3) and obs["state"].shape == (2, 10)
        # Sub-env i is seeded with seed + i, as a single env would be.
        for i in range(2):
            s_obs, _ = single.reset(seed=10 + i)
            np.testing.assert_array_equal(s_obs["state"], obs["state"][i])
            np.testing.assert_array_equal(s_obs["pixels"], obs["pixels"][i])
        assert not np.array_equal(obs["state"][0], obs["state"][1])
        for _ in range(3):
            obs, rew, term, trunc, info = venv.step(np.ones((2, 2), np.float32) * 0.5)
            assert rew.shape == (2,) and obs["pixels"].shape == (2, 32, 32, 3)
            assert info["success"].shape == (2,)
    finally:
        single.close()
        venv.close(**({"terminate": True} if mode == "async" else {}))


@pytest.mark.slow  # a fresh interpreter
def test_gym_make_with_module_prefix_in_a_fresh_interpreter():
    code = ("import gymnasium as gym, numpy as np\n"
            "env = gym.make('cosmos_sim:cosmos_sim/Push-v0', image_size=16)\n"
            "obs, info = env.reset(seed=0)\n"
            "obs, *_ = env.step(np.zeros(2, np.float32))\n"
            "print(type(env.unwrapped).__name__, obs['pixels'].shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "PhysicsEnv (16, 16, 3)" in out.stdout


def test_ids_registered_on_import():
    from cosmos_sim.worlds import WORLDS

    for world in WORLDS:
        spec = gym.spec(f"cosmos_sim/{world}-v0")
        assert spec.kwargs["world"] == world


def test_registration_sets_the_episode_length_and_gym_make_can_change_it():
    import gymnasium as gym
    import numpy as np

    env = gym.make("cosmos_sim/Push-v0", obs_mode="state")
    assert env.spec.max_episode_steps == 100
    for steps in (5, 130):  # shorter and longer than the world's 100: one limit, the caller's
        env = gym.make("cosmos_sim/Push-v0", obs_mode="state", max_episode_steps=steps)
        env.reset(seed=0)
        n, done = 0, False
        while not done:
            _, _, term, trunc, _ = env.step(np.zeros(2, np.float32))
            n, done = n + 1, term or trunc
        assert n == steps and trunc
