"""Push: slide a block onto a goal disk with a velocity-controlled planar pusher."""

from __future__ import annotations

import math

import numpy as np

from cosmos_sim.camera import CameraRange, orbit
from cosmos_sim.worlds.base import Sim, StateLayout, World, norm, yaw_quat

GOAL_Z = 0.0005
BLOCK_HALF = 0.05


class Push(World):
    name = "Push"
    asset = "push.xml"
    description = "planar pusher (x, y velocity) pushes a free block onto a goal disk"
    action_names = ("pusher_vx", "pusher_vy")
    state_layout = StateLayout((
        ("pusher_pos", 2), ("pusher_vel", 2),
        ("block_pos", 2), ("block_rot4", 2),  # cos/sin of 4*yaw: the block looks the same every 90 deg
        ("block_vel", 2), ("goal", 2),
    ))
    control_dt = 0.1
    max_episode_steps = 100
    default_camera = orbit(90.0, -60.0, 1.1)
    camera_range = CameraRange(azimuth=(45.0, 135.0), elevation=(-80.0, -40.0), distance=(0.95, 1.3))

    object_entries = ("block_pos",)
    max_speed = 0.3  # m/s at |action| = 1 (the actuators' ctrlrange)
    success_radius = 0.05

    def sample_initial_state(self, rng):
        block = rng.uniform(-0.2, 0.2, 2)
        yaw = rng.uniform(-math.pi, math.pi)
        goal = rng.uniform(-0.25, 0.25, 2)
        while np.linalg.norm(goal - block) < 0.15:
            goal = rng.uniform(-0.25, 0.25, 2)
        pusher = rng.uniform(-0.3, 0.3, 2)
        while np.linalg.norm(pusher - block) < 0.12:
            pusher = rng.uniform(-0.3, 0.3, 2)
        return {"pusher": pusher, "block": block, "yaw": np.array([yaw]), "goal": goal}

    def apply_initial_state(self, sim: Sim, init):
        sim.set_joint("pusher_x", float(init["pusher"][0]))
        sim.set_joint("pusher_y", float(init["pusher"][1]))
        bx, by = init["block"]
        sim.set_body_pose("block", (bx, by, BLOCK_HALF), yaw_quat(float(init["yaw"][0])))
        sim.set_body_velocity("block", (0.0, 0.0, 0.0))
        sim.set_body_pose("goal", (init["goal"][0], init["goal"][1], GOAL_Z))

    def apply_action(self, sim: Sim, action):
        sim.set_joint_velocity_target("pusher_x", float(action[0]) * self.max_speed)
        sim.set_joint_velocity_target("pusher_y", float(action[1]) * self.max_speed)

    def read_state(self, sim: Sim):
        w, x, y, z = sim.body_quaternion("block")
        yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        return self.state_layout.pack({
            "pusher_pos": sim.body_position("pusher")[:2],
            "pusher_vel": [sim.joint_velocity("pusher_x"), sim.joint_velocity("pusher_y")],
            "block_pos": sim.body_position("block")[:2],
            "block_rot4": [math.cos(4 * yaw), math.sin(4 * yaw)],
            "block_vel": sim.body_linear_velocity("block")[:2],
            "goal": sim.body_position("goal")[:2],
        })

    def block_to_goal(self, state):
        L = self.state_layout
        return norm(L.get(state, "block_pos") - L.get(state, "goal"))

    def reward(self, state, action):
        L = self.state_layout
        pusher_to_block = norm(L.get(state, "pusher_pos") - L.get(state, "block_pos"))
        return -self.block_to_goal(state) - 0.1 * pusher_to_block

    def success(self, state):
        return self.block_to_goal(state) < self.success_radius
