"""Slide: the example of adding a world (docs/adding-a-world.md): one module and one MJCF, nothing else.

A velocity-controlled puck glides onto a target disk. Importing this module registers the world and its
gym id `cosmos_sim/Slide-v0`; the scene is assets/slide.xml beside this file.
"""

from __future__ import annotations

import numpy as np

from cosmos_sim.camera import CameraRange, orbit
from cosmos_sim.worlds import StateLayout, World
from cosmos_sim.worlds.base import Sim
from cosmos_sim.worlds.geometry import cap_norm, subgoal


class Slide(World):
    name = "Slide"
    asset = "slide.xml"
    description = "a velocity-controlled puck glides onto a target disk"
    action_names = ("puck_vx", "puck_vy")
    state_layout = StateLayout((("puck_pos", 2), ("puck_vel", 2), ("target", 2)))
    control_dt = 0.1
    max_episode_steps = 30
    default_camera = orbit(90.0, -60.0, 0.9)
    camera_range = CameraRange(azimuth=(60.0, 120.0), elevation=(-80.0, -45.0), distance=(0.8, 1.0))

    object_entries = ("puck_pos",)
    success_radius = 0.03

    expert_miss = (2.0 * success_radius, 4.0 * success_radius)  # a mistaken episode aims this far off
    expert_min_success = 0.9

    @property
    def max_speed(self) -> float:
        """m/s at |action| = 1: the actuators' ctrlrange."""
        return self.mjcf.actuator("puck_x").range[1]

    def sample_initial_state(self, rng):
        puck = rng.uniform(-0.2, 0.2, 2)
        target = rng.uniform(-0.2, 0.2, 2)
        while np.linalg.norm(target - puck) < 0.1:
            target = rng.uniform(-0.2, 0.2, 2)
        return {"puck": puck, "target": target}

    def apply_initial_state(self, sim: Sim, init):
        sim.set_joint("puck_x", float(init["puck"][0]))
        sim.set_joint("puck_y", float(init["puck"][1]))
        sim.set_body_pose("target", (init["target"][0], init["target"][1], self.mjcf.body("target").pos[2]))

    def apply_action(self, sim: Sim, action):
        sim.set_joint_velocity_target("puck_x", float(action[0]) * self.max_speed)
        sim.set_joint_velocity_target("puck_y", float(action[1]) * self.max_speed)

    def read_state(self, sim: Sim):
        return self.state_layout.pack({
            "puck_pos": sim.body_position("puck")[:2],
            "puck_vel": [sim.joint_velocity("puck_x"), sim.joint_velocity("puck_y")],
            "target": sim.body_position("target")[:2],
        })

    def reward(self, state, action):
        return -self.planar_distance(state, "puck_pos", "target")

    def success(self, state):
        return self.planar_distance(state, "puck_pos", "target") < self.success_radius

    def expert(self, state, aim):
        """Head for the target (or the mistaken subgoal), arriving in one control step where speed allows."""
        L = self.state_layout
        lo, hi = self.mjcf.joint("puck_x").range  # the puck's travel, from the MJCF
        t = subgoal(L.get(state, "target"), aim, lambda c: np.all((c >= lo) & (c <= hi), -1))
        t = np.clip(t, lo, hi)
        v = cap_norm((t - L.get(state, "puck_pos")) / self.control_dt, self.max_speed)
        return v / self.max_speed
