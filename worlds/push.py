"""Push: slide a block onto a goal disk with a velocity-controlled planar pusher."""

from __future__ import annotations

import math

import numpy as np

from cosmos_sim.camera import CameraRange, orbit
from cosmos_sim.worlds.base import Sim, StateLayout, World, yaw_quat
from cosmos_sim.worlds.geometry import cap_norm, perp, unit, wrap


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
    contact_targets = ("pusher_pos", "block_pos")
    success_radius = 0.05

    expert_miss = (1.5 * success_radius, 3.0 * success_radius)
    expert_min_success = 0.9
    off_ladder = ("scripted:1@speed=0.25", "scripted:1@speed=0.35", "scripted:1@act=0.2", "scripted:1@act=0.25",
                  "scripted:1@noise=1.5", "scripted:1@noise=1", "scripted:1@speed=0.5@act=0.5")

    @property
    def max_speed(self) -> float:
        """m/s at |action| = 1: the actuators' ctrlrange."""
        return self.mjcf.actuator("pusher_x").range[1]

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
        sim.set_body_pose("block", (bx, by, self.geom("block").size[2]), yaw_quat(float(init["yaw"][0])))
        sim.set_body_velocity("block", (0.0, 0.0, 0.0))
        sim.set_body_pose("goal", (init["goal"][0], init["goal"][1], self.mjcf.body("goal").pos[2]))

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

    def reward(self, state, action):
        return (-self.planar_distance(state, "block_pos", "goal")
                - 0.1 * self.planar_distance(state, "pusher_pos", "block_pos"))

    def success(self, state):
        return self.planar_distance(state, "block_pos", "goal") < self.success_radius

    def expert(self, state, aim):
        """Get behind the block (orbiting around it), then push it toward the goal, correcting sideways drift."""
        L = self.state_layout
        p = L.get(state, "pusher_pos")
        b = L.get(state, "block_pos")
        g = L.get(state, "goal")
        # A subgoal error lands short of the goal or beside it, never beyond (pushing through would succeed).
        d0, _ = unit(g - b)
        g = g - np.abs((aim * d0).sum(-1, keepdims=True)) * d0 + (aim * perp(d0)).sum(-1, keepdims=True) * perp(d0)
        d, dist = unit(g - b)
        side = perp(d)
        rel = p - b
        along = (rel * d).sum(-1)
        lat = (rel * side).sum(-1)
        block_half, pusher_radius = self.geom("block").size[0], self.geom("pusher").size[0]
        contact = block_half + pusher_radius
        orbit_r = math.sqrt(2) * block_half + pusher_radius + 0.03  # clears the block's corners
        max_speed, dt = self.max_speed, self.control_dt

        # Angle of the pusher around the block, 0 = straight behind it (opposite the goal).
        theta = wrap(np.arctan2(rel[:, 1], rel[:, 0]) - np.arctan2(-d[:, 1], -d[:, 0]))
        behind = np.abs(theta) < 0.5

        # Orbit: step around the block on a circle that clears its corners, toward the back.
        step = np.clip(-theta, -0.7, 0.7)
        ang = np.arctan2(rel[:, 1], rel[:, 0]) + step
        way = b + orbit_r * np.stack([np.cos(ang), np.sin(ang)], -1)
        v_orbit = (way - p) / dt

        # Push: advance along d, pulling the lateral offset to zero; slow down when misaligned or near.
        align = np.clip(1.0 - np.abs(lat) / 0.03, 0.0, 1.0)
        near = np.clip(dist / 0.12, 0.25, 1.0)
        v_fwd = max_speed * align * near
        # Misaligned and close: back off to the pre-push point first.
        v_fwd = np.where((align < 0.3) & (along > -contact - 0.02), -0.5 * max_speed, v_fwd)
        v_lat = -lat / dt * 0.8
        v_push = d * v_fwd[:, None] + side * v_lat[:, None]
        done = dist < 0.015
        v_push = np.where(done[:, None], 0.0, v_push)

        v = np.where(behind[:, None], v_push, v_orbit)
        v = cap_norm(v, max_speed)
        return v / max_speed
