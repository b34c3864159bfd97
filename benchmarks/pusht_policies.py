"""Hand-written PushT pushers as `module:callable` policies for `cosmos-sim` (the `pusht` extra: gym-pusht, pymunk).

PushT (`gym_pusht/PushT-v0`, obs_type="state") observes [agent x, y, T x, y, T angle] in pixels (angle in
[0, 2π)) and takes the agent's target position in [0, 512]². `pusht_policies:pusher` walks around the T to the
side away from the goal and pushes its centre of mass through the goal, off-centre by an amount that turns it
toward the goal's angle; `pusher_lazy` pushes without turning, `to_block` walks into the T and stays, `still`
holds the agent where it starts. Degrade them with the usual modifiers (`pusht_policies:pusher@noise=0.2`; in
the normalized action space, where ±1 is the board's edges). benchmarks/twins.py puts this directory on
PYTHONPATH for the commands it runs.
"""

from __future__ import annotations

import numpy as np

GOAL = np.array([256.0, 256.0, np.pi / 4])  # gym-pusht's fixed goal pose (x, y, angle)
COG = np.array([0.0, 45.0])  # the T's centre of mass in its body frame (bar 0..30, stem 30..120 px)
BEHIND = 75.0  # how far behind the centre of mass a push starts (the T reaches ~75 px from it)
AROUND = 110.0  # the radius the agent walks around the T at, to reach the pushing side without touching it


def _rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def _push(obs: np.ndarray, turn: float) -> np.ndarray:
    agent, pos, angle = obs[:2], obs[2:4], float(obs[4])
    cog = pos + _rot(angle) @ COG
    goal_cog = GOAL[:2] + _rot(GOAL[2]) @ COG
    err = goal_cog - cog
    d_angle = float((GOAL[2] - angle + np.pi) % (2 * np.pi) - np.pi)
    if np.linalg.norm(err) < 6.0 and abs(d_angle) < 0.1:
        return agent.astype(np.float32)  # there: stay off it
    direction = _unit(err) if np.linalg.norm(err) > 15.0 else _unit(cog - agent)
    side = np.array([-direction[1], direction[0]])
    lateral = float(np.clip(turn * d_angle * 40.0, -35.0, 35.0))  # off-centre: the push turns the T
    start = cog - direction * BEHIND + side * lateral
    if np.linalg.norm(agent - start) > 20.0:  # walk around the T, not through it
        to_agent, to_start = _unit(agent - cog), _unit(start - cog)
        if float(to_agent @ to_start) < 0.7:
            waypoint = cog + AROUND * _unit(to_agent + to_start)
            return np.clip(waypoint, 0, 512).astype(np.float32)
        return np.clip(start, 0, 512).astype(np.float32)
    return np.clip(cog + direction * 40.0 + side * lateral, 0, 512).astype(np.float32)


def pusher(obs: np.ndarray) -> np.ndarray:
    """Push the T to the goal and turn it toward the goal's angle."""
    return _push(np.asarray(obs, np.float64), turn=1.0)


def pusher_lazy(obs: np.ndarray) -> np.ndarray:
    """Push the T's centre of mass to the goal's, whatever its angle."""
    return _push(np.asarray(obs, np.float64), turn=0.0)


def to_block(obs: np.ndarray) -> np.ndarray:
    """Walk to the T's position and press on it."""
    return np.asarray(obs[2:4], np.float32)


def still(obs: np.ndarray) -> np.ndarray:
    """Hold the agent where it is."""
    return np.asarray(obs[:2], np.float32)
