"""The Sim protocol means the same thing in MuJoCo and PyBullet (what the worlds are written against)."""

import numpy as np
import pytest

from cosmos_sim.envs.mujoco_sim import MujocoSim
from cosmos_sim.envs.pybullet_sim import PybulletSim
from cosmos_sim.worlds import WORLDS, get_world


@pytest.fixture(params=list(WORLDS))  # every registered world (at import: the built-in ones)
def sims(request):
    world = get_world(request.param)
    pair = {"mujoco": MujocoSim(world, (32, 32)), "pybullet": PybulletSim(world, (32, 32))}
    init = world.sample_initial_state(np.random.default_rng(0))
    for sim in pair.values():
        sim.reset(init)
    yield world, pair
    for sim in pair.values():
        sim.close()


def test_setters_are_visible_at_once(sims):
    """Reading back (and rendering) right after a setter shows the new pose in both backends."""
    world, pair = sims
    body = {"Push": "block", "Reach": "target", "Drop": "obj1"}[world.name]
    pos = np.array([0.11, -0.07, 0.2])
    quat = np.array([np.cos(0.3), 0.0, 0.0, np.sin(0.3)])
    frames = {}
    for name, sim in pair.items():
        before = sim.render(world.default_camera)
        sim.set_body_pose(body, pos, quat)
        np.testing.assert_allclose(sim.body_position(body), pos, atol=1e-9, err_msg=name)
        q = sim.body_quaternion(body)
        np.testing.assert_allclose(q * np.sign(q[0]), quat, atol=1e-9, err_msg=name)
        frames[name] = sim.render(world.default_camera)
        assert not np.array_equal(before, frames[name]), f"{name}: render did not see the moved {body}"
    np.testing.assert_allclose(world.read_state(pair["mujoco"]), world.read_state(pair["pybullet"]), atol=1e-6)


def test_joint_and_site_readback():
    world = get_world("Reach")
    pair = [MujocoSim(world, (16, 16)), PybulletSim(world, (16, 16))]
    try:
        for sim in pair:
            sim.reset(world.sample_initial_state(np.random.default_rng(1)))
            sim.set_joint("shoulder", 0.4, 0.5)
            sim.set_joint("elbow", -1.1, -0.25)
            assert sim.joint_position("shoulder") == pytest.approx(0.4)
            assert sim.joint_velocity("elbow") == pytest.approx(-0.25)
            np.testing.assert_allclose(sim.site_position("fingertip")[:2], world.fingertip([0.4, -1.1]), atol=1e-6)
        with pytest.raises(KeyError, match="nose"):
            pair[0].body_position("nose")
        with pytest.raises(KeyError, match="nose"):
            pair[1].body_position("nose")
    finally:
        for sim in pair:
            sim.close()


def quat_mul(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


@pytest.mark.parametrize("cls", [MujocoSim, PybulletSim])
def test_body_velocity_is_in_the_world_frame(cls):
    world = get_world("Drop")
    sim = cls(world, (16, 16))
    try:
        sim.reset(world.sample_initial_state(np.random.default_rng(2)))
        sim.set_body_pose("obj0", (0.0, 0.0, 0.6))
        sim.set_body_velocity("obj0", (0.3, -0.2, 0.1), (0.0, 0.0, 2.0))
        tilt = np.array([np.cos(0.6), np.sin(0.6), 0.0, 0.0])  # body and world frames now differ
        sim.set_body_pose("obj0", (0.0, 0.0, 0.5), tilt)  # keeps the velocities, in the world frame
        np.testing.assert_allclose(sim.body_linear_velocity("obj0"), (0.3, -0.2, 0.1), atol=1e-9)
        assert sim.step(np.zeros(2))
        # Falling freely (no contact at z = 0.5) and spinning about world z at 2 rad/s (a sphere keeps its spin).
        v = sim.body_linear_velocity("obj0")
        np.testing.assert_allclose(v[:2], (0.3, -0.2), atol=1e-3)
        assert v[2] == pytest.approx(0.1 - 9.81 * world.control_dt, abs=2e-2)
        a = 2.0 * world.control_dt
        expected = quat_mul([np.cos(a / 2), 0.0, 0.0, np.sin(a / 2)], tilt)
        q = sim.body_quaternion("obj0")
        np.testing.assert_allclose(q * np.sign(q[0]), expected, atol=2e-3)
    finally:
        sim.close()
