"""PyBullet bounces like MuJoCo in Drop, for both kinds of contact pair: an object landing on the static
table, and one object hitting another.

MuJoCo gives every pair the same coefficient of restitution when the two geoms share a solref: its soft
contact is a damped spring in acceleration space, scaled by the pair's inverse inertia, so masses and
whether one side is static do not enter. Bullet multiplies the two bodies' coefficients, so the twin must
give static and moving bodies the same per-body value (envs/pybullet_sim.py).

A rebound is measured as the ratio of the rebound speed to the impact speed, in Drop's own scene and
through the Sim protocol: after one control step the object is in free flight again, and its height and
vertical speed give the speed it left the table with. MuJoCo resolves a contact over a handful of its
steps, so one drop's ratio depends on where the step boundaries fall; each figure is the mean over drops
released at PHASES heights spread over one step's travel, which makes it steady, and the backends must
agree within TOL on it.
"""

import math

import mujoco
import numpy as np
import pytest

from cosmos_sim.envs.mujoco_sim import MujocoSim
from cosmos_sim.envs.pybullet_sim import PybulletSim
from cosmos_sim.worlds import get_world
from cosmos_sim.worlds.drop import OBJECTS, PARKING

W = get_world("drop")
_MODEL = mujoco.MjModel.from_xml_path(W.mjcf_path())
G = -float(_MODEL.opt.gravity[2])
DT = float(_MODEL.opt.timestep)  # both backends step at it
PHASES = 8
GAP = 0.002  # m between the surfaces at release: contact comes early in the control step
XY = (0.15, 0.05)  # on the flat table, away from the ramp, the walls and the target
# Rebound over impact speed. MuJoCo's and Bullet's mean ratios differ by much less than this when the per-body
# coefficients combine right, and by several times it when a pair type gets the wrong coefficient.
TOL = 0.05


def half_height(obj: str) -> float:
    geom = W.geom(obj)
    return float(geom.size[2] if geom.attrib["type"] == "box" else geom.size[0])


def initial_state(placed: dict[str, tuple[tuple[float, float, float], float]]) -> dict:
    """Drop's initial state with the objects in `placed` at (position, vertical velocity), upright and not
    spinning, and the others parked under the table."""
    init = {"n_active": np.array([len(placed)]), "target": np.array([0.15, 0.0])}
    for obj in OBJECTS:
        pos, vz = placed.get(obj, (PARKING[obj], 0.0))
        init[obj] = np.array([*pos, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, vz, 0.0, 0.0, 0.0])
    return init


def table_rebound(sim, obj: str, speed: float, gap: float) -> float:
    """`obj` released `gap` above the table moving down at `speed`: rebound over impact speed."""
    r = half_height(obj)
    sim.reset(initial_state({obj: ((*XY, r + gap), -speed)}))
    sim.step(np.zeros(2))
    z, vz = sim.body_position(obj)[2], sim.body_linear_velocity(obj)[2]
    assert z > r, f"{sim.backend}: {obj} is not in flight after its bounce"
    return math.sqrt(vz * vz + 2 * G * (z - r)) / math.sqrt(speed * speed + 2 * G * gap)


def pair_rebound(sim, top: str, bottom: str, speed: float, gap: float) -> float:
    """`top` released `gap` above `bottom`, both in mid-air, approaching at `speed`: separation speed over
    approach speed (both fall alike, so gravity leaves their relative motion alone)."""
    z = 0.3
    sim.reset(initial_state({bottom: ((*XY, z), 0.0),
                             top: ((*XY, z + half_height(top) + half_height(bottom) + gap), -speed)}))
    sim.step(np.zeros(2))
    return (sim.body_linear_velocity(top)[2] - sim.body_linear_velocity(bottom)[2]) / speed


def mean_ratio(measure, speed: float) -> float:
    return float(np.mean([measure(GAP + speed * DT * k / PHASES) for k in range(PHASES)]))


@pytest.fixture(scope="module")
def sims():
    pair = {"mujoco": MujocoSim(W, (16, 16)), "pybullet": PybulletSim(W, (16, 16))}
    yield pair
    for sim in pair.values():
        sim.close()


def table_ratios(sims, obj, speed):
    return {name: mean_ratio(lambda gap, s=sim: table_rebound(s, obj, speed, gap), speed) for name, sim in sims.items()}


def pair_ratios(sims, top, bottom, speed):
    return {name: mean_ratio(lambda gap, s=sim: pair_rebound(s, top, bottom, speed, gap), speed)
            for name, sim in sims.items()}


# MuJoCo 3.3.0's box-box collider gives a box landing flat on the table box half the depth 4.x gives it (2e-5 vs
# 4e-5 m at first touch), and the box rebounds at 0.27-0.29 of its impact speed instead of 0.41 (spheres: the same
# 0.41 in both). PyBullet follows 4.x. docs/benchmarks.md (MuJoCo 3.3 and 4.0) has the figures.
MUJOCO3_BOX = pytest.mark.xfail(int(mujoco.__version__.split(".")[0]) < 4, strict=True,
                                reason="MuJoCo 3.x bounces a box off the table box less than 4.x (and PyBullet) do")


@pytest.mark.parametrize("obj", ["obj0", pytest.param("obj1", marks=MUJOCO3_BOX)])  # a sphere and a box landing flat
@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_object_table_rebound_matches_mujoco(sims, obj, speed):
    ratios = table_ratios(sims, obj, speed)
    assert ratios["mujoco"] > 0.2, ratios  # Drop's contacts are bouncy
    assert abs(ratios["pybullet"] - ratios["mujoco"]) < TOL, ratios


@pytest.mark.parametrize(("top", "bottom", "speed"), [
    ("obj0", "obj2", 1.0), ("obj0", "obj2", 2.0),  # sphere on sphere
    ("obj0", "obj1", 1.0), ("obj0", "obj1", 2.0),  # sphere on a box's top face
    ("obj0", "obj2", 0.15),  # slower than Bullet's default restitution threshold
])
def test_object_object_rebound_matches_mujoco(sims, top, bottom, speed):
    ratios = pair_ratios(sims, top, bottom, speed)
    assert ratios["mujoco"] > 0.2, ratios
    assert abs(ratios["pybullet"] - ratios["mujoco"]) < TOL, ratios


def test_mujoco_gives_both_pair_types_one_coefficient(sims):
    """Why static and moving bodies get one per-body value in Bullet: MuJoCo's own rebound ratio is the
    same on the table as against another object."""
    mj = {"mujoco": sims["mujoco"]}
    for speed in (1.0, 2.0):
        table = table_ratios(mj, "obj0", speed)["mujoco"]
        pair = pair_ratios(mj, "obj0", "obj2", speed)["mujoco"]
        assert abs(table - pair) < TOL, (speed, table, pair)
