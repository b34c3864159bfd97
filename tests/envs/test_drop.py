"""Drop's state is Markov and bounded: spin and continuous orientation in the state, pushes only on a
supported ball, and an episode ends when an object leaves the walled table."""

import numpy as np
import pytest

from cosmos_sim.envs.mujoco_sim import MujocoSim
from cosmos_sim.envs.physics_env import PhysicsEnv
from cosmos_sim.envs.pybullet_sim import PybulletSim
from cosmos_sim.worlds import get_world

W = get_world("drop")
L = W.state_layout


@pytest.mark.parametrize("sim_cls", [MujocoSim, PybulletSim])
def test_state_holds_rotation_columns_and_world_frame_spin(sim_cls):
    sim = sim_cls(W, (16, 16))
    try:
        sim.reset(W.sample_initial_state(np.random.default_rng(0)))
        yaw = 0.7
        sim.set_body_pose("obj1", (0.1, 0.0, 0.3), (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)))
        sim.set_body_velocity("obj1", (0.0, 0.0, 0.0), (0.5, -1.0, 2.0))
        np.testing.assert_allclose(sim.body_angular_velocity("obj1"), (0.5, -1.0, 2.0), atol=1e-9)
        s = W.read_state(sim)
        c, si = np.cos(yaw), np.sin(yaw)
        np.testing.assert_allclose(L.get(s, "obj1_rot6"), (c, si, 0.0, -si, c, 0.0), atol=1e-6)
        np.testing.assert_allclose(L.get(s, "obj1_angvel"), (0.5, -1.0, 2.0), atol=1e-6)
    finally:
        sim.close()


def test_push_acts_only_on_a_supported_ball():
    env = PhysicsEnv("drop", obs_mode="state")
    zero, push = np.zeros(2, np.float32), np.array([1.0, 0.0], np.float32)

    def after(actions):
        env.reset(seed=0)
        for a in actions:
            s = env.step(a)[0]
        return s

    try:
        s0 = env.reset(seed=0)[0]
        assert L.get(s0, "obj0_pos")[2] > W.push_height  # dropped from above: in the air
        np.testing.assert_allclose(after([push]), after([zero]), atol=1e-9)  # the push does nothing mid-air
        landed = next(t for t in range(1, 40) if L.get(after([zero] * t), "obj0_pos")[2] < W.push_height)
        pushed, passive = after([zero] * landed + [push]), after([zero] * (landed + 1))
        assert L.get(pushed, "obj0_vel")[0] > L.get(passive, "obj0_vel")[0] + 0.05  # on the table it pushes
    finally:
        env.close()


def test_an_object_leaving_the_table_ends_the_episode():
    env = PhysicsEnv("drop", obs_mode="state")
    try:
        s = env.reset(seed=1)[0]
        assert not W.terminated(s)
        lost = s.copy()
        lost[L.slice("obj2_pos")] = (0.0, -(W.walls_outer[1] + 0.01), 0.0)
        assert W.terminated(lost) and not W.success(lost)
        batch = np.stack([s, lost])
        np.testing.assert_array_equal(W.terminated(batch), [False, True])
        import torch

        assert W.terminated(torch.from_numpy(batch)).tolist() == [False, True]  # the learned world's states
    finally:
        env.close()
