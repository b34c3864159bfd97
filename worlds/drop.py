"""Drop: one to three objects fall onto a walled table with a ramp; push the red one into the target.

The physics-alignment world: free fall, bounces, rolling and collisions. Zero action is passive
physics. Objects not in play this episode rest on the floor under the table, out of view.
"""

from __future__ import annotations

import numpy as np

from cosmos_sim.camera import CameraRange, orbit
from cosmos_sim.worlds.base import Sim, StateLayout, World, norm

OBJECTS = ("obj0", "obj1", "obj2")
PARKING = {"obj0": (0.25, 0.25, -0.45), "obj1": (-0.25, 0.25, -0.46), "obj2": (0.25, -0.25, -0.46)}
TARGET_Z = 0.0005


def random_quat(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


class Drop(World):
    name = "Drop"
    asset = "drop.xml"
    description = "1-3 objects dropped onto a table with a ramp; a horizontal push moves obj0 to a target"
    action_names = ("push_x", "push_y")
    state_layout = StateLayout(
        tuple((f"{o}_{k}", n) for o in OBJECTS for k, n in (("pos", 3), ("quat", 4), ("vel", 3)))
        + (("target", 2),)
    )
    control_dt = 0.05
    max_episode_steps = 80
    default_camera = orbit(90.0, -55.0, 1.35, target=(0.0, 0.0, 0.02))
    camera_range = CameraRange(azimuth=(60.0, 120.0), elevation=(-75.0, -40.0), distance=(1.2, 1.55),
                               target=(0.0, 0.0, 0.02))

    object_entries = tuple(f"{o}_pos" for o in OBJECTS)
    max_force = 1.0  # N on obj0 at |action| = 1
    target_radius = 0.08
    settle_speed = 0.15  # obj0 must be nearly at rest inside the target

    def sample_initial_state(self, rng):
        n_active = int(rng.integers(1, 4))
        placed: list[np.ndarray] = []
        init = {"n_active": np.array([n_active])}
        for i, obj in enumerate(OBJECTS):
            if i < n_active:
                xy = rng.uniform(-0.3, 0.3, 2)
                while any(np.linalg.norm(xy - p) < 0.13 for p in placed):
                    xy = rng.uniform(-0.3, 0.3, 2)
                placed.append(xy)
                pos = np.array([xy[0], xy[1], rng.uniform(0.15, 0.35)])
                vel = np.concatenate([rng.uniform(-0.4, 0.4, 2), rng.uniform(-0.5, 0.5, 1)])
                init[obj] = np.concatenate([pos, random_quat(rng), vel, rng.uniform(-3.0, 3.0, 3)])
            else:
                init[obj] = np.array([*PARKING[obj], 1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        init["target"] = np.array([rng.uniform(-0.1, 0.3), rng.uniform(-0.28, 0.28)])
        return init

    def apply_initial_state(self, sim: Sim, init):
        for obj in OBJECTS:
            v = init[obj]
            sim.set_body_pose(obj, v[0:3], v[3:7])
            sim.set_body_velocity(obj, v[7:10], v[10:13])
        sim.set_body_pose("target", (init["target"][0], init["target"][1], TARGET_Z))

    def apply_action(self, sim: Sim, action):
        sim.set_body_force("obj0", (float(action[0]) * self.max_force, float(action[1]) * self.max_force, 0.0))

    def read_state(self, sim: Sim):
        values = {"target": sim.body_position("target")[:2]}
        for obj in OBJECTS:
            q = sim.body_quaternion(obj)
            values[f"{obj}_pos"] = sim.body_position(obj)
            values[f"{obj}_quat"] = q if q[0] >= 0 else -q  # one sign per rotation
            values[f"{obj}_vel"] = sim.body_linear_velocity(obj)
        return self.state_layout.pack(values)

    def distance(self, state):
        L = self.state_layout
        return norm(L.get(state, "obj0_pos")[..., :2] - L.get(state, "target"))

    def reward(self, state, action):
        return -self.distance(state)

    def success(self, state):
        L = self.state_layout
        on_table = L.get(state, "obj0_pos")[..., 2] < 0.1
        slow = norm(L.get(state, "obj0_vel")) < self.settle_speed
        return (self.distance(state) < self.target_radius) & on_table & slow


