"""Issue 2: bad input gets a typed error naming the problem; blow-ups end the episode cleanly."""

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest

import cosmos_sim  # noqa: F401
from cosmos_sim.camera import CameraPose
from cosmos_sim.envs import PhysicsEnv, make_env
from cosmos_sim.errors import ActionError, CameraError, CosmosSimError, UnknownChoiceError
from cosmos_sim.worlds import WORLDS, get_world

BACKENDS = ("mujoco", "pybullet")


def make(world="Push", backend="mujoco", **kw):
    return gym.make(f"cosmos_sim/{world}-v0", backend=backend, **kw)


@pytest.fixture(autouse=True)
def _no_mujoco_log_in_repo(tmp_path, monkeypatch):
    # MuJoCo appends its instability warnings to MUJOCO_LOG.TXT in the working directory.
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_actions_raise_action_error_and_lose_nothing(backend):
    env = make("Push", backend, obs_mode="state")
    try:
        obs, info = env.reset(seed=0)
        cases = [
            (np.zeros(3, np.float32), "shape"),
            (np.zeros((1, 2), np.float32), "shape"),
            (np.zeros((2, 1), np.float32), "shape"),
            (0.5, "shape"),
            ([], "shape"),
            (np.array([np.nan, 0.0], np.float32), "NaN"),
            (np.array([0.0, np.inf], np.float32), "inf"),
            (np.array([-np.inf, 0.0]), "inf"),
            (["a", "b"], "numeric"),
            (None, "shape|numeric"),
        ]
        for action, word in cases:
            with pytest.raises(ActionError, match=word) as ei:
                env.step(action)
            assert isinstance(ei.value, ValueError) and isinstance(ei.value, CosmosSimError)
            assert "(2,)" in str(ei.value) or "NaN" in str(ei.value)
        # Nothing moved: the next good step continues from the reset state exactly like a fresh env.
        good = np.array([0.5, -0.5], np.float32)
        after = env.step(good)[0]
        fresh = make("Push", backend, obs_mode="state")
        fresh.reset(seed=0)
        np.testing.assert_array_equal(after, fresh.step(good)[0])
        fresh.close()
        # Out-of-range but finite actions are clipped, not rejected.
        big = env.step(np.array([5.0, -5.0], np.float32))
        assert np.all(np.isfinite(big[0]))
    finally:
        env.close()


def test_action_error_is_a_value_error():
    assert issubclass(ActionError, ValueError) and issubclass(CameraError, ValueError)
    assert issubclass(UnknownChoiceError, ValueError)


def test_camera_control_action_shape_is_checked():
    env = make("Reach", obs_mode="state", camera_control=True)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=r"\(5,\)"):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ActionError, match="NaN"):
        env.step(np.array([0, 0, 0, np.nan, 0], np.float32))
    env.close()


def test_unknown_world_lists_the_worlds():
    for call in (lambda: get_world("Pong"), lambda: PhysicsEnv("Pong"), lambda: make_env("Pong"),
                 lambda: gym.make("cosmos_sim/Push-v0", world="Pong")):
        with pytest.raises(UnknownChoiceError) as ei:
            call()
        msg = str(ei.value)
        assert "Pong" in msg and all(w.lower() in msg for w in WORLDS), msg
    assert type(get_world("pUsH")).__name__ == "Push"  # names are case-insensitive


@pytest.mark.parametrize("call", [lambda: make("Push", backend="bullet"), lambda: make_env("Push", backend="bullet"),
                                  lambda: PhysicsEnv("Push", backend="bullet")])
def test_unknown_backend_lists_the_backends(call):
    with pytest.raises(UnknownChoiceError) as ei:
        call()
    msg = str(ei.value)
    assert "'bullet'" in msg and "mujoco" in msg and "pybullet" in msg, msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_obs_mode_lists_the_modes(backend):
    with pytest.raises(UnknownChoiceError) as ei:
        make("Push", backend, obs_mode="rgb")
    msg = str(ei.value)
    assert "'rgb'" in msg and all(m in msg for m in ("pixels", "state", "both")), msg


def test_unknown_render_mode_is_rejected():
    with pytest.raises(ValueError, match="rgb_array"):
        PhysicsEnv("Push", render_mode="human")


@pytest.mark.parametrize("kwargs", [
    dict(eye=(0, 0, 1), target=(0, 0, 1)),
    dict(eye=(0, 0, 1), target=(0, 0, 0), fovy=0.0),
    dict(eye=(0, 0, 1), target=(0, 0, 0), fovy=180.0),
    dict(eye=(0, 0, 1), target=(0, 0, 0), fovy=-30.0),
    dict(eye=(0, 0, 1), target=(0, 0, 0), fovy=float("nan")),
    dict(eye=(0, 0, float("nan")), target=(0, 0, 0)),
    dict(eye=(0, 0, 1), target=(0, 0, 0), up=(0, 0, 1)),  # looking along up
])
def test_degenerate_camera_is_a_camera_error(kwargs):
    with pytest.raises(CameraError):
        CameraPose(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_camera_arguments(backend):
    for bad in ("sideways", (1.0, 2.0, 3.0), 42, np.zeros(10)):
        with pytest.raises(CameraError):
            make("Push", backend, camera=bad)
    env = make("Push", backend)
    try:
        env.reset(seed=0)
        with pytest.raises(CameraError):
            env.reset(seed=0, options={"camera": "upside-down"})
        with pytest.raises(CameraError):
            env.reset(seed=0, options={"camera": CameraPose.from_array([0, 0, 1, 0, 0, 1, 0, 0, 1, 45])})
    finally:
        env.close()


def _blow_up_mujoco_qvel(env):
    env.unwrapped.sim.data.qvel[:] = 1e30


def _blow_up_mujoco_qacc(env):
    env.unwrapped.sim.data.qfrc_applied[:] = 1e30  # a force huge enough to make the accelerations explode


def _blow_up_pybullet(env):
    sim = env.unwrapped.sim
    if sim.free:
        for name in sim.free:
            p.resetBaseVelocity(sim.bodies[name].uid, [1e30] * 3, [1e30] * 3, physicsClientId=sim.cid)
    else:
        for ref in sim.joints.values():
            p.resetJointState(ref.uid, ref.link, 0.0, 1e30, physicsClientId=sim.cid)


@pytest.mark.parametrize("world", list(WORLDS))
@pytest.mark.parametrize("backend,blow_up", [("mujoco", _blow_up_mujoco_qvel), ("mujoco", _blow_up_mujoco_qacc),
                                             ("pybullet", _blow_up_pybullet)])
def test_forced_instability_truncates_with_a_finite_observation(world, backend, blow_up):
    env = make(world, backend, obs_mode="both", camera_control=True)
    try:
        obs0, info0 = env.reset(seed=1)
        zero = np.zeros(env.action_space.shape, np.float32)
        obs1, _, term, trunc, info1 = env.step(zero)
        assert not trunc and not info1["diverged"]
        blow_up(env)
        move_camera = zero.copy()
        move_camera[-3:] = 1.0
        obs, reward, term, trunc, info = env.step(move_camera)
        assert trunc is True and term is False and info["diverged"] is True
        assert np.all(np.isfinite(obs["state"])) and np.isfinite(reward)
        assert env.observation_space.contains(obs)
        # The last good observation and camera are kept, so pixels, state and pose still agree.
        np.testing.assert_array_equal(obs["state"], obs1["state"])
        np.testing.assert_array_equal(obs["pixels"], obs1["pixels"])
        assert info["camera"] == info1["camera"]
        # Stepping on without a reset stays truncated; a reset brings back a healthy episode.
        obs, _, _, trunc, info = env.step(zero)
        assert trunc and info["diverged"] and np.all(np.isfinite(obs["state"]))
        obs, info = env.reset(seed=1)
        assert info["diverged"] is False
        np.testing.assert_array_equal(obs["state"], obs0["state"])
        obs, _, _, trunc, info = env.step(zero)
        assert not trunc and not info["diverged"]
        np.testing.assert_array_equal(obs["state"], obs1["state"])
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_ordinary_episodes_never_diverge(backend):
    env = make("Drop", backend, obs_mode="state")
    try:
        rng = np.random.default_rng(0)
        for seed in range(3):
            env.reset(seed=seed)
            for _ in range(40):
                _, _, term, trunc, info = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
                assert not info["diverged"]
                if term or trunc:
                    break
    finally:
        env.close()
