"""Reach: bring the fingertip of a 2-link planar arm onto a target."""

from __future__ import annotations

import math

import numpy as np

from cosmos_sim.camera import CameraRange, orbit
from cosmos_sim.worlds.base import Sim, StateLayout, World, norm

TARGET_Z = 0.05
LINKS = (0.25, 0.2)  # link lengths, as in reach.xml


class Reach(World):
    name = "Reach"
    asset = "reach.xml"
    description = "2-link planar arm (joint velocities) brings its fingertip onto a target"
    action_names = ("shoulder_vel", "elbow_vel")
    state_layout = StateLayout((
        ("joint_cos", 2), ("joint_sin", 2), ("joint_vel", 2), ("fingertip", 2), ("target", 2),
    ))
    control_dt = 0.1
    max_episode_steps = 50
    default_camera = orbit(90.0, -65.0, 1.3)
    camera_range = CameraRange(azimuth=(45.0, 135.0), elevation=(-85.0, -45.0), distance=(1.15, 1.5))

    max_joint_speed = 3.0  # rad/s at |action| = 1
    success_radius = 0.03
    elbow_limit = 2.8

    def sample_initial_state(self, rng):
        q = np.array([rng.uniform(-math.pi, math.pi), rng.uniform(-2.5, 2.5)])
        tip = self.fingertip(q)
        while True:
            r, th = rng.uniform(0.1, 0.42), rng.uniform(-math.pi, math.pi)
            target = np.array([r * math.cos(th), r * math.sin(th)])
            if np.linalg.norm(target - tip) > 0.1:
                return {"q": q, "target": target}

    @staticmethod
    def fingertip(q) -> np.ndarray:
        """Planar forward kinematics (used to sample targets away from the start)."""
        a, b = q[0], q[0] + q[1]
        return np.array([LINKS[0] * math.cos(a) + LINKS[1] * math.cos(b),
                         LINKS[0] * math.sin(a) + LINKS[1] * math.sin(b)])

    def apply_initial_state(self, sim: Sim, init):
        sim.set_joint("shoulder", float(init["q"][0]))
        sim.set_joint("elbow", float(init["q"][1]))
        sim.set_body_pose("target", (init["target"][0], init["target"][1], TARGET_Z))

    def apply_action(self, sim: Sim, action):
        sim.set_joint_velocity_target("shoulder", float(action[0]) * self.max_joint_speed)
        sim.set_joint_velocity_target("elbow", float(action[1]) * self.max_joint_speed)

    def read_state(self, sim: Sim):
        q = np.array([sim.joint_position("shoulder"), sim.joint_position("elbow")])
        return self.state_layout.pack({
            "joint_cos": np.cos(q), "joint_sin": np.sin(q),
            "joint_vel": [sim.joint_velocity("shoulder"), sim.joint_velocity("elbow")],
            "fingertip": sim.site_position("fingertip")[:2],
            "target": sim.body_position("target")[:2],
        })

    def distance(self, state):
        L = self.state_layout
        return norm(L.get(state, "fingertip") - L.get(state, "target"))

    def reward(self, state, action):
        return -self.distance(state)

    def success(self, state):
        return self.distance(state) < self.success_radius
