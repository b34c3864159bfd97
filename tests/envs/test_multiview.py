"""Issue 26: several cameras on one scene (`cameras=[...]`) in the physics backends."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import cosmos_sim  # noqa: F401  (registers the ids)
from cosmos_sim.camera import orbit
from cosmos_sim.errors import CameraError
from cosmos_sim.worlds import get_world

BACKENDS = ("mujoco", "pybullet")
ID = "cosmos_sim/Push-v0"
FRONT, SIDE, TOP = orbit(90, -45, 1.1), orbit(150, -35, 1.2), orbit(90, -85, 1.0)


def make(backend, cameras, **kw):
    return gym.make(ID, backend=backend, cameras=cameras, render_mode="rgb_array", **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("views", [[FRONT, "random"], [FRONT, SIDE, "default"]])
def test_check_env_and_same_seed_same_pixels_in_every_view(backend, views):
    V = len(views)
    env = make(backend, views, obs_mode="both")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped, skip_render_check=False)
        assert env.observation_space["pixels"].shape == (V, 64, 64, 3)
        rng = np.random.default_rng(0)
        actions = [rng.uniform(-1, 1, 2).astype(np.float32) for _ in range(4)]

        def run(e):
            obs, info = e.reset(seed=5)
            out, poses = [obs["pixels"]], [info["camera"]]
            for a in actions:
                obs, *_, info = e.step(a)
                out.append(obs["pixels"])
                poses.append(info["camera"])
            return np.stack(out), poses

        first, poses = run(env)
        assert all(len(p) == V for p in poses) and poses[0][0] == FRONT
        other = make(backend, views, obs_mode="both")
        try:
            again, poses_again = run(other)
        finally:
            other.close()
        np.testing.assert_array_equal(first, again)
        assert poses == poses_again
        for v in range(1, V):  # each view sees its own picture
            assert not np.array_equal(first[:, 0], first[:, v])
        assert env.render().shape == (64, 64 * V, 3)  # render(): the views side by side
    finally:
        env.close()


@pytest.mark.parametrize("hw", [96])
def test_views_of_one_state_match_the_projection_in_both_backends(hw):
    """The block (blue) appears where `CameraPose.project` puts its centre, in every view and backend, and
    MuJoCo and PyBullet agree on where."""
    from test_camera import OBJECT_COLOURS, colour_labels

    blue = list(OBJECT_COLOURS).index("blue")
    layout = get_world("push").state_layout
    views = [FRONT, SIDE, TOP]
    envs = {b: gym.make(ID, backend=b, cameras=views, image_size=hw, obs_mode="both") for b in BACKENDS}
    try:
        for seed in range(3):
            seen = {}
            for b, env in envs.items():
                obs, info = env.reset(seed=seed)
                x, y = layout.get(info["state"], "block_pos")
                centre = np.array([x, y, 0.05])
                for v, pose in enumerate(info["camera"]):
                    i, j = np.nonzero(colour_labels(obs["pixels"][v]) == blue)
                    assert len(i) > 20, f"{b} view {v}: block not visible"
                    c = np.array([j.mean() + 0.5, i.mean() + 0.5])
                    uv = pose.project(centre, hw, hw)
                    assert np.abs(c - uv).max() <= 3.0, f"{b} view {v}: block at {c}, projected {uv}"
                    seen[b, v] = c
            for v in range(len(views)):
                assert np.abs(seen["mujoco", v] - seen["pybullet", v]).max() <= 1.5, (seed, v, seen)
    finally:
        for env in envs.values():
            env.close()


def test_camera_control_moves_the_views_as_one_rig():
    """Every view changes by the same orbit step; the step is shortened where a view would leave the world's
    range, and a view placed outside the range (SIDE) moves with the rig."""
    r = get_world("push").camera_range
    inner = orbit(r.azimuth[1] - 2.0, -60.0, 1.1)  # 2° from the range's edge
    env = make("mujoco", [FRONT, inner, SIDE], obs_mode="pixels", camera_control=True)
    try:
        _, info = env.reset(seed=0)
        for action, az_step in (([0, 0, 1.0, 0.5, 0.0], 2.0), ([0, 0, -1.0, 0.5, 0.0], -5.0)):
            before = [np.array(p.orbit_params()) for p in info["camera"]]
            *_, info = env.step(np.array(action, np.float32))
            moves = [np.array(p.orbit_params()) - b for p, b in zip(info["camera"], before, strict=True)]
            for m in moves[1:]:
                np.testing.assert_allclose(m, moves[0], atol=1e-6)
            assert moves[0][0] == pytest.approx(az_step)  # cut short at the range's edge, then a full step
            assert moves[0][1] == pytest.approx(1.5)
    finally:
        env.close()


def test_vector_envs_batch_the_views():
    envs = gym.make_vec(ID, num_envs=2, backend="mujoco", cameras=[FRONT, SIDE, TOP], obs_mode="pixels")
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 3, 64, 64, 3)
    finally:
        envs.close()


@pytest.mark.parametrize("cameras,message", [
    ([], "1 to 8 views"),
    ([FRONT] * 9, "1 to 8 views"),
    ("random", "list of views"),
    (FRONT, "list of views"),
    ([FRONT, (SIDE, 32)], "mix image sizes 32x32, 64x64"),
    ([FRONT, "sideways"], "camera must be"),
])
def test_bad_views_are_refused(cameras, message):
    with pytest.raises(CameraError, match=message):
        gym.make(ID, backend="mujoco", cameras=cameras)


def test_one_view_keeps_its_shapes_and_both_keywords_are_refused():
    env = gym.make(ID, backend="mujoco", obs_mode="pixels", camera=FRONT)
    assert env.observation_space.shape == (64, 64, 3)
    env.close()
    with pytest.raises(CameraError, match="not both"):
        gym.make(ID, backend="mujoco", camera=FRONT, cameras=[SIDE])
    env = gym.make(ID, backend="mujoco", obs_mode="pixels", cameras=[(FRONT, 32), (SIDE, 32)])
    assert env.observation_space.shape == (2, 32, 32, 3)  # views that carry their own (shared) size
    env.close()
