"""Passive-drop events: what a world's falling objects do in one backend's states -- their first touchdown
(`first_bounce`), height, resting position and pairwise collisions (`events`) -- read from the state vector
and the MJCF alone. `physics_alignment` scores one backend's events against MuJoCo's.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

import numpy as np

from cosmos_sim.errors import InputError
from cosmos_sim.worlds import World, get_world


class Thresholds(Protocol):
    """What `events` needs of an `AlignmentConfig`."""

    free_fall_fraction: float  # a step is a touchdown when the object loses less than this share of g*dt
    collision_tolerance: float  # m added to the sum of two objects' bounding radii


# --- the world's falling objects -------------------------------------------------------------------
def falling_objects(world: str | World) -> tuple[str, ...]:
    """The world's declared falling objects, checked: each is a geom with `<name>_pos[3]` and `<name>_vel[3]`."""
    world = get_world(world)
    names = tuple(world.falling_objects)
    if not names:
        raise InputError(f"world {world.name} declares no falling_objects; physics alignment needs objects whose "
                         "geom names prefix <name>_pos[3] and <name>_vel[3] state entries (see worlds/drop.py)")
    sizes = dict(world.state_layout.entries)
    for name in names:
        for entry in (f"{name}_pos", f"{name}_vel"):
            if sizes.get(entry) != 3:
                raise InputError(f"world {world.name}: falling object {name!r} needs a state entry {entry}[3]")
        try:
            world.geom(name)
        except KeyError:
            raise InputError(f"world {world.name}: falling object {name!r} has no geom of that name in its MJCF"
                             ) from None
    return names


def bounding_radius(world: str | World, geom: str) -> float:
    """Radius (m) of the smallest sphere about the geom's centre that holds it, from the MJCF."""
    g = get_world(world).geom(geom)
    kind = g.attrib.get("type", "sphere")
    s = g.size
    if kind == "sphere":
        return float(s[0])
    if kind == "box":
        return float(np.linalg.norm(s[:3]))
    if kind == "ellipsoid":
        return float(max(s[:3]))
    half = g.length / 2 if "fromto" in g.attrib else float(s[1])
    if kind == "capsule":
        return float(s[0] + half)
    if kind == "cylinder":
        return float(np.hypot(s[0], half))
    raise InputError(f"geom {geom!r}: no bounding radius for type {kind!r} (sphere, box, ellipsoid, capsule, "
                     "cylinder)")


def gravity(world: str | World) -> float:
    """Downward gravity (m/s^2) from the MJCF's `<option gravity>` (MuJoCo's default when absent)."""
    world = get_world(world)
    option = ET.parse(world.mjcf_path()).getroot().find("option")
    g = float(option.get("gravity", "0 0 -9.81").split()[2]) if option is not None else -9.81
    if g >= 0:
        raise InputError(f"world {world.name}: gravity does not point down (z component {g}); nothing falls")
    return -g


# --- per-object events ------------------------------------------------------------------------------
def first_bounce(z: np.ndarray, vz: np.ndarray, g_dt: float, free_fall_fraction: float = 0.5
                 ) -> tuple[int | None, float]:
    """(step, height) of an object's first touchdown; (None, nan) when it never touches down.

    z and vz are the centre's height and vertical velocity at steps 0..T. In free fall vz drops by g_dt
    every step; the touchdown step is the first t >= 1 where it dropped by less than `free_fall_fraction`
    of that (it rose after a rebound, stopped, or slowed to a slide down a slope). The height is the peak
    of z from that step until vz is no longer positive.
    """
    z, vz = np.asarray(z, np.float64), np.asarray(vz, np.float64)
    if z.ndim != 1 or z.shape != vz.shape or len(z) < 2:
        raise InputError(f"z and vz must be 1-D of one length >= 2, got shapes {z.shape} and {vz.shape}")
    hit = np.flatnonzero(np.diff(vz) > -free_fall_fraction * g_dt)
    if not len(hit):
        return None, float("nan")
    t = int(hit[0]) + 1
    falling = np.flatnonzero(vz[t:] <= 0)
    end = t + int(falling[0]) if len(falling) else len(z) - 1
    return t, float(z[t:end + 1].max())


@dataclass
class DropEvents:
    """What happened to each falling object in E drops of T steps (K objects, P pairs)."""

    z: np.ndarray  # [E, T+1, K]
    bounce_step: np.ndarray  # [E, K], NaN where none
    bounce_height: np.ndarray  # [E, K]
    rebound: np.ndarray  # bool [E, K]: moving up right after touchdown
    rest: np.ndarray  # [E, K, 3] centre at the last step
    rest_speed: np.ndarray  # [E, K]
    collide: np.ndarray  # bool [E, P]


def events(world: World, states: np.ndarray, radii: np.ndarray, config: Thresholds) -> DropEvents:
    """Heights, first bounces, resting positions and pairwise collisions from states [E, T+1, S]."""
    L = world.state_layout
    objects = falling_objects(world)
    states = np.asarray(states, np.float64)
    pos = np.stack([L.get(states, f"{o}_pos") for o in objects], 2)  # [E, T+1, K, 3]
    vel = np.stack([L.get(states, f"{o}_vel") for o in objects], 2)
    E, _, K, _ = pos.shape
    g_dt = gravity(world) * world.control_dt
    step = np.full((E, K), np.nan)
    height = np.full((E, K), np.nan)
    rebound = np.zeros((E, K), bool)
    for e in range(E):
        for k in range(K):
            t, h = first_bounce(pos[e, :, k, 2], vel[e, :, k, 2], g_dt, config.free_fall_fraction)
            if t is not None:
                step[e, k], height[e, k], rebound[e, k] = t, h, vel[e, t, k, 2] > 0
    pairs = list(combinations(range(K), 2))
    collide = np.zeros((E, len(pairs)), bool)
    for p, (i, j) in enumerate(pairs):
        gap = np.linalg.norm(pos[:, :, i] - pos[:, :, j], axis=-1).min(1)
        collide[:, p] = gap < radii[i] + radii[j] + config.collision_tolerance
    return DropEvents(z=pos[..., 2], bounce_step=step, bounce_height=height, rebound=rebound, rest=pos[:, -1],
                      rest_speed=np.linalg.norm(vel[:, -1], axis=-1), collide=collide)
