"""Drop: one to three objects fall onto a walled table with a ramp; push the red one into the target.

The physics-alignment world: free fall, bounces, rolling and collisions. Zero action is passive
physics. Objects not in play this episode rest on the floor under the table, out of view.

The state is Markov and continuous, so a learned simulator can carry it forward: each object's
orientation as the first two columns of its rotation matrix (a quaternion flips sign), and its
angular velocity (a spinning ball bounces and rolls off differently). The push acts only on a ball
resting on the table or the ramp, and an episode ends when an object leaves the walled table:
pushed through the air or over a wall, a ball would otherwise fall forever below the floor.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from cosmos_sim.camera import CameraRange, orbit
from cosmos_sim.worlds.base import Sim, StateLayout, World, norm
from cosmos_sim.worlds.geometry import cap_norm, subgoal

OBJECTS = ("obj0", "obj1", "obj2")
PARKING = {"obj0": (0.25, 0.25, -0.45), "obj1": (-0.25, 0.25, -0.46), "obj2": (0.25, -0.25, -0.46)}
EXPERT_KP, EXPERT_KD = 16.0, 8.0  # 1/s^2 and 1/s: critically damped, natural frequency 4 rad/s
FLAT_CLEARANCE = 0.005  # m kept between the expert's subgoals and the walls or the ramp


def random_quat(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


class Drop(World):
    name = "Drop"
    asset = "drop.xml"
    description = "1-3 objects dropped onto a table with a ramp; a horizontal push moves obj0 to a target"
    action_names = ("push_x", "push_y")
    state_layout = StateLayout(
        tuple((f"{o}_{k}", n) for o in OBJECTS for k, n in (("pos", 3), ("rot6", 6), ("vel", 3), ("angvel", 3)))
        + (("target", 2),)
    )
    control_dt = 0.05
    max_episode_steps = 80
    default_camera = orbit(90.0, -55.0, 1.35, target=(0.0, 0.0, 0.02))
    camera_range = CameraRange(azimuth=(60.0, 120.0), elevation=(-75.0, -40.0), distance=(1.2, 1.55),
                               target=(0.0, 0.0, 0.02))

    object_entries = tuple(f"{o}_pos" for o in OBJECTS)
    # Objects that fall under passive physics (evaluation/physics_alignment.py): each names its geom and its
    # `<name>_pos` and `<name>_vel` state entries.
    falling_objects = OBJECTS
    max_force = 1.0  # N on obj0 at |action| = 1
    target_radius = 0.08
    settle_speed = 0.15  # obj0 must be nearly at rest inside the target

    expert_miss = (2.0 * target_radius, 3.5 * target_radius)
    expert_noise = 0.3
    expert_random_prob = 0.3
    expert_min_success = 0.6
    off_ladder = ("scripted:1@speed=0.02", "scripted:1@speed=0.04", "scripted:1@act=0.005", "scripted:1@act=0.02",
                  "scripted:1@noise=1.5", "scripted:1@noise=1", "scripted:1@speed=0.1@act=0.25")

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
        sim.set_body_pose("target", (init["target"][0], init["target"][1], self.mjcf.body("target").pos[2]))

    def apply_action(self, sim: Sim, action):
        supported = sim.body_position("obj0")[2] < self.push_height
        a = self.max_force if supported else 0.0
        sim.set_body_force("obj0", (float(action[0]) * a, float(action[1]) * a, 0.0))

    def read_state(self, sim: Sim):
        values = {"target": sim.body_position("target")[:2]}
        for obj in OBJECTS:
            w, x, y, z = sim.body_quaternion(obj)
            values[f"{obj}_pos"] = sim.body_position(obj)
            values[f"{obj}_rot6"] = [1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y),  # R[:, 0]
                                     2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)]  # R[:, 1]
            values[f"{obj}_vel"] = sim.body_linear_velocity(obj)
            values[f"{obj}_angvel"] = sim.body_angular_velocity(obj)
        return self.state_layout.pack(values)

    def terminated(self, state):
        """Solved, or an object has left the walled table (beyond a wall's outer face)."""
        L, (x_out, y_out) = self.state_layout, self.walls_outer
        lost = [(abs(L.get(state, f"{o}_pos")[..., 0]) > x_out) | (abs(L.get(state, f"{o}_pos")[..., 1]) > y_out)
                for o in OBJECTS]
        return self.success(state) | lost[0] | lost[1] | lost[2]

    def reward(self, state, action):
        return -self.planar_distance(state, "obj0_pos", "target")

    def success(self, state):
        L = self.state_layout
        on_table = L.get(state, "obj0_pos")[..., 2] < 0.1
        slow = norm(L.get(state, "obj0_vel")) < self.settle_speed
        return (self.planar_distance(state, "obj0_pos", "target") < self.target_radius) & on_table & slow

    @cached_property
    def push_height(self) -> float:
        """obj0's centre is below this when the ball rests on the table or the ramp (from drop.xml): the
        ramp's highest top corner plus the ball's radius, and a centimetre."""
        ramp = self.geom("ramp")
        corners = np.array([[sx, sy, 1.0] for sx in (-1, 1) for sy in (-1, 1)]) * ramp.size
        top = (corners @ ramp.rotation().T)[:, 2].max() + ramp.pos[2]
        return float(top + self.geom("obj0").size[0] + 0.01)

    @cached_property
    def walls_outer(self) -> tuple[float, float]:
        """|x| and |y| of the walls' outer faces (drop.xml): an object beyond them has left the table."""
        px, py = self.geom("wall_px"), self.geom("wall_py")
        return px.pos[0] + px.size[0], py.pos[1] + py.size[1]

    @cached_property
    def flat_region(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) corners of where obj0's centre rests on the flat table touching neither wall nor ramp.

        From drop.xml: the walls' inner faces less the sphere's radius, and on the -x side the point where
        the sphere meets the ramp's sloped top face; FLAT_CLEARANCE inside both.
        """
        r = self.geom("obj0").size[0]
        px, nx, py, ny = (self.geom(f"wall_{w}") for w in ("px", "nx", "py", "ny"))
        table = self.geom("table")
        z0 = table.pos[2] + table.size[2] + r  # the centre's height on the table
        ramp = self.geom("ramp")
        n = ramp.rotation() @ np.array([0.0, 0.0, 1.0])  # the top face's normal
        if n[0] <= 0:
            raise ValueError("drop.xml: the ramp must slope down toward +x")
        # Sphere centre (x, 0, z0) at distance r from the top face (half-thickness above the ramp's centre).
        c = ramp.pos
        ramp_x = c[0] + (ramp.size[2] + r + n[1] * c[1] - n[2] * (z0 - c[2])) / n[0]
        lo = np.array([max(ramp_x, nx.pos[0] + nx.size[0] + r), ny.pos[1] + ny.size[1] + r]) + FLAT_CLEARANCE
        hi = np.array([px.pos[0] - px.size[0] - r, py.pos[1] - py.size[1] - r]) - FLAT_CLEARANCE
        return lo, hi

    def expert(self, state, aim):
        """PD control of obj0's xy position onto the target, with velocity damping so it comes to rest."""
        L = self.state_layout
        pos = L.get(state, "obj0_pos")
        vel = L.get(state, "obj0_vel")
        lo, hi = self.flat_region
        t = subgoal(L.get(state, "target"), aim, lambda c: np.all((c >= lo) & (c <= hi), -1))
        t = np.clip(t, lo, hi)
        acc = EXPERT_KP * (t - pos[:, :2]) - EXPERT_KD * vel[:, :2]
        roll_mass = self.geom("obj0").mass * (1 + 2 / 5)  # a solid sphere: rolling adds 2/5 of its mass
        force = cap_norm(roll_mass * acc, self.max_force)
        return force / self.max_force
