"""Reach: bring the fingertip of a 2-link planar arm onto a target."""

from __future__ import annotations

import math

import numpy as np

from cosmos_sim.camera import CameraRange, orbit
from cosmos_sim.worlds.base import Sim, StateLayout, World
from cosmos_sim.worlds.geometry import subgoal, wrap


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
    object_entries = ("fingertip",)  # what the task moves: its open-loop error is the fingertip's
    default_camera = orbit(90.0, -65.0, 1.3)
    camera_range = CameraRange(azimuth=(45.0, 135.0), elevation=(-85.0, -45.0), distance=(1.15, 1.5))

    success_radius = 0.03

    expert_miss = (3.0 * success_radius, 6.0 * success_radius)
    expert_noise = 0.3
    expert_random_prob = 0.3
    expert_min_success = 0.9
    off_ladder = ("scripted:1@speed=0.1", "scripted:1@speed=0.15", "scripted:1@act=0.05", "scripted:1@act=0.15",
                  "scripted:1@noise=3", "scripted:1@noise=2", "scripted:1@speed=0.25@act=0.25")

    @property
    def links(self) -> tuple[float, float]:
        """Link lengths: the capsules' fromto."""
        return self.geom("link1").length, self.geom("link2").length

    @property
    def max_joint_speed(self) -> float:
        """rad/s at |action| = 1: the actuators' ctrlrange."""
        return self.mjcf.actuator("shoulder").range[1]

    @property
    def elbow_limit(self) -> float:
        return self.mjcf.joint("elbow").range[1]

    def sample_initial_state(self, rng):
        q = np.array([rng.uniform(-math.pi, math.pi), rng.uniform(-2.5, 2.5)])
        tip = self.fingertip(q)
        while True:
            r, th = rng.uniform(0.1, 0.42), rng.uniform(-math.pi, math.pi)
            target = np.array([r * math.cos(th), r * math.sin(th)])
            if np.linalg.norm(target - tip) > 0.1:
                return {"q": q, "target": target}

    def fingertip(self, q) -> np.ndarray:
        """Planar forward kinematics (used to sample targets away from the start)."""
        l1, l2 = self.links
        a, b = q[0], q[0] + q[1]
        return np.array([l1 * math.cos(a) + l2 * math.cos(b), l1 * math.sin(a) + l2 * math.sin(b)])

    def apply_initial_state(self, sim: Sim, init):
        sim.set_joint("shoulder", float(init["q"][0]))
        sim.set_joint("elbow", float(init["q"][1]))
        sim.set_body_pose("target", (init["target"][0], init["target"][1], self.mjcf.body("target").pos[2]))

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

    def reward(self, state, action):
        return -self.planar_distance(state, "fingertip", "target")

    def success(self, state):
        return self.planar_distance(state, "fingertip", "target") < self.success_radius

    def expert(self, state, aim):
        """Analytic 2-link IK (elbow solution nearest the current angles), P-control in joint space."""
        L = self.state_layout
        c, s = L.get(state, "joint_cos"), L.get(state, "joint_sin")
        q = np.arctan2(s, c)
        l1, l2 = self.links

        def reachable(c):
            r = np.linalg.norm(c, axis=-1)
            return (r >= abs(l1 - l2) + 0.03) & (r <= l1 + l2 - 0.02)

        t = subgoal(L.get(state, "target"), aim, reachable)
        r = np.clip(np.linalg.norm(t, axis=-1), abs(l1 - l2) + 1e-4, l1 + l2 - 1e-4)
        c2 = np.clip((r * r - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1.0, 1.0)
        lim = self.elbow_limit - 0.02
        base = np.arctan2(t[:, 1], t[:, 0])
        best_err = None
        best_cost = None
        for sign in (1.0, -1.0):
            q2 = np.clip(sign * np.arccos(c2), -lim, lim)
            q1 = base - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
            err = np.stack([wrap(q1 - q[:, 0]), q2 - q[:, 1]], -1)  # the elbow never wraps: it is limited
            cost = np.abs(err).max(-1)
            if best_err is None:
                best_err, best_cost = err, cost
            else:
                pick = cost < best_cost
                best_err = np.where(pick[:, None], err, best_err)
                best_cost = np.where(pick, cost, best_cost)
        # Arrive in one control step where the speed allows it, moving both joints along a straight line.
        speed = self.max_joint_speed
        qd = best_err / self.control_dt
        qd = qd * np.minimum(1.0, speed / np.maximum(np.abs(qd).max(-1, keepdims=True), 1e-12))
        return qd / speed
