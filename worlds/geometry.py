"""Planar vector helpers for the scripted experts: batched numpy, rows are envs, the last axis is (x, y)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def wrap(angle):
    """Angles into [-pi, pi)."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


def unit(v, eps: float = 1e-9):
    """(v / |v|, |v|) per row; rows shorter than `eps` are divided by `eps`, not by zero."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps), n[..., 0]


def cap_norm(v, limit: float):
    """Scale rows of v down so their norm is at most `limit` (keeps the direction)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v * np.minimum(1.0, limit / np.maximum(n, 1e-12))


def perp(u):
    """Rows turned 90 degrees counter-clockwise."""
    return np.stack([-u[..., 1], u[..., 0]], axis=-1)


def subgoal(goal, aim, valid: Callable[[np.ndarray], np.ndarray]):
    """`goal + aim`, or with the error turned (opposite, then perpendicular) where that is not `valid`.

    A subgoal error must stay a miss: clipped back into reach, or stopped by a wall, it could land near
    the goal again. Rows where no candidate is valid keep `goal + aim` (the caller clips).
    """
    cands = np.stack([aim, -aim, perp(aim), -perp(aim)], 1) + goal[:, None]  # [N, 4, 2]
    ok = valid(cands)
    first = np.where(ok.any(1), ok.argmax(1), 0)
    return cands[np.arange(len(cands)), first]
