"""Scripted experts with a skill knob: a ladder of policies whose success rates are known to differ.

Each world registers one expert function (`@register_expert("Push", miss=...)`). An expert reads
the batched state vector through the world's `StateLayout` names and world constants, and returns
normalized actions `[N, A]`. `ScriptedPolicy` wraps it and adds sloppiness as `skill` falls from 1 to 0:

- a wrong-ish subgoal: with probability `1 - skill` per episode (drawn again by `reset`), the expert aims
  at a point a few success radii off the real goal (the expert's `miss` range),
- Gaussian action noise with std `noise * (1 - skill)`,
- a per-step probability `random_prob * (1 - skill)` of a uniformly random action
  (`noise` and `random_prob` per expert: a random walk must not find the goal by luck too often).

All randomness comes from the policy's own seeded generators: one for per-episode draws, one for per-step
noise. The same seed and the same observations give the same actions, and because a mistaken episode is
`u < 1 - skill` with the same `u` at every skill, the mistaken episodes of a higher skill are a subset of
those of a lower one (given the same seed and batching): the ladder's rungs are nested, not just ordered on
average; the per-step noise still adds some scatter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cosmos_sim.policies.base import Obs
from cosmos_sim.worlds import World, get_world
from cosmos_sim.worlds.drop import Drop
from cosmos_sim.worlds.push import BLOCK_HALF, Push
from cosmos_sim.worlds.reach import LINKS, Reach

ExpertFn = Callable[[World, np.ndarray, np.ndarray], np.ndarray]
Miss = Callable[[World], tuple[float, float]]


@dataclass(frozen=True)
class Expert:
    """`fn(world, state [N, S], aim_error [N, 2] in metres) -> actions [N, A]` in [-1, 1].

    `aim_error` is zero on a good episode; on a mistaken one its length lies in `miss` (metres).
    """

    world: str
    fn: ExpertFn
    miss: Miss  # world -> (shortest, longest) subgoal error of a mistaken episode, metres
    noise: float = 0.5  # Gaussian action noise std at skill 0
    random_prob: float = 0.5  # probability of a random action per step at skill 0


EXPERTS: dict[str, Expert] = {}


def register_expert(world: str, miss: Miss, noise: float = 0.5,
                    random_prob: float = 0.5) -> Callable[[ExpertFn], ExpertFn]:
    """Register `fn` as the expert of `world` (case-insensitive name).

    `miss(world)`: length range (metres) of a mistaken episode's subgoal error, from the world's constants;
    `noise`, `random_prob`: action noise std and random-action probability at skill 0 (they scale with
    1 - skill).
    """

    def deco(fn: ExpertFn) -> ExpertFn:
        EXPERTS[world.lower()] = Expert(world, fn, miss, float(noise), float(random_prob))
        return fn

    return deco


def _check_skill(skill) -> float:
    if isinstance(skill, bool):
        raise ValueError(f"skill must be a number in [0, 1], got {skill!r}")
    try:
        s = float(skill)
    except (TypeError, ValueError):
        raise ValueError(f"skill must be a number in [0, 1], got {skill!r}") from None
    if not 0.0 <= s <= 1.0:  # also rejects NaN
        raise ValueError(f"skill must be in [0, 1], got {skill!r}")
    return s


class ScriptedPolicy:
    """The world's scripted expert, made sloppier as `skill` falls from 1 (expert) to 0.

    `ScriptedPolicy("push", skill=0.75)`; `act(obs)` takes a dict with `"state"` `[N, S]` (or `[S]`,
    giving `[A]`) and returns float32 actions in [-1, 1].
    """

    def __init__(self, world: str | World, skill: float = 1.0, seed: int | None = 0):
        self.world = get_world(world)
        key = self.world.name.lower()
        if key not in EXPERTS:
            raise ValueError(f"no scripted expert for world {self.world.name!r}; experts exist for: "
                             f"{', '.join(sorted(EXPERTS))}")
        self.expert = EXPERTS[key]
        self.miss = tuple(float(v) for v in self.expert.miss(self.world))
        self.skill = _check_skill(skill)
        self.seed = seed
        episode_seq, step_seq = np.random.SeedSequence(seed).spawn(2)
        self.episode_rng = np.random.default_rng(episode_seq)  # per-episode draws, made by reset
        self.step_rng = np.random.default_rng(step_seq)  # per-step noise
        self.name = f"scripted(skill={self.skill:g})"
        self._aim: np.ndarray | None = None  # per-env subgoal error [N, 2], metres

    @property
    def sloppiness(self) -> float:
        return 1.0 - self.skill

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Forget per-env memory (the episode's subgoal error) where `mask` is True; all envs when None."""
        if mask is None or self._aim is None:
            self._aim = None  # drawn on the next act, when the batch size is known
            return
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        if mask.shape[0] != self._aim.shape[0]:
            raise ValueError(f"reset mask has {mask.shape[0]} entries but the policy acts on {self._aim.shape[0]} envs")
        self._aim[mask] = self._draw_aim(int(mask.sum()))

    def _draw_aim(self, n: int) -> np.ndarray:
        # Always three draws per env, whatever the skill, so every skill sees the same u, angle, length.
        u = self.episode_rng.random(n)
        angle = self.episode_rng.uniform(-np.pi, np.pi, n)
        length = self.episode_rng.uniform(*self.miss, n)
        mistaken = u < self.sloppiness
        return (mistaken * length)[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)

    def _state(self, obs) -> tuple[np.ndarray, bool]:
        if isinstance(obs, dict):
            if "state" not in obs:
                raise ValueError(f"ScriptedPolicy needs the state vector but the observation has only "
                                 f"{sorted(obs)}; make the env with obs_mode='state' or 'both', or pass "
                                 "{'state': info['state']}")
            state = obs["state"]
        else:
            state = obs
        state = np.asarray(state, dtype=np.float64)
        shape = state.shape
        single = state.ndim == 1
        if single:
            state = state[None]
        S = self.world.state_dim
        if state.ndim != 2 or state.shape[1] != S:
            raise ValueError(f"{self.world.name} state must have shape [N, {S}] (or [{S}]), "
                             f"got {shape}")
        if not np.all(np.isfinite(state)):
            raise ValueError("state contains NaN or inf")
        return state, single

    def act(self, obs: Obs) -> np.ndarray:
        state, single = self._state(obs)
        n = state.shape[0]
        if self._aim is None or self._aim.shape[0] != n:
            self._aim = self._draw_aim(n)
        a = np.asarray(self.expert.fn(self.world, state, self._aim), dtype=np.float64)
        s = self.sloppiness
        if s > 0:
            a = a + self.step_rng.normal(size=a.shape) * (self.expert.noise * s)
            rand = self.step_rng.random(n) < self.expert.random_prob * s
            a = np.where(rand[:, None], self.step_rng.uniform(-1.0, 1.0, a.shape), a)
        a = np.clip(a, -1.0, 1.0).astype(np.float32)
        return a[0] if single else a

    def __repr__(self) -> str:
        return f"ScriptedPolicy({self.world.name!r}, skill={self.skill:g}, seed={self.seed!r})"


# --- helpers ----------------------------------------------------------------------------------------
def _wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _unit(v, eps: float = 1e-9):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps), n[..., 0]


def _cap_norm(v, limit: float):
    """Scale rows of v down so their norm is at most `limit` (keeps the direction)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v * np.minimum(1.0, limit / np.maximum(n, 1e-12))


def _perp(u):
    return np.stack([-u[..., 1], u[..., 0]], axis=-1)


def _subgoal(goal, aim, valid: Callable[[np.ndarray], np.ndarray]):
    """`goal + aim`, or with the error turned (opposite, then perpendicular) where that is not `valid`.

    A subgoal error must stay a miss: clipped back into reach, or stopped by a wall, it could land near
    the goal again. Rows where no candidate is valid keep `goal + aim` (the caller clips).
    """
    cands = np.stack([aim, -aim, _perp(aim), -_perp(aim)], 1) + goal[:, None]  # [N, 4, 2]
    ok = valid(cands)
    first = np.where(ok.any(1), ok.argmax(1), 0)
    return cands[np.arange(len(cands)), first]


# --- Push ---------------------------------------------------------------------------------------------
PUSHER_RADIUS = 0.025  # push.xml


@register_expert("Push", miss=lambda w: (1.5 * w.success_radius, 3.0 * w.success_radius))
def push_expert(world: Push, state: np.ndarray, aim: np.ndarray) -> np.ndarray:
    """Get behind the block (orbiting around it), then push it toward the goal, correcting sideways drift."""
    L = world.state_layout
    p = L.get(state, "pusher_pos")
    b = L.get(state, "block_pos")
    g = L.get(state, "goal")
    # A subgoal error lands short of the goal or beside it, never beyond (pushing through would succeed).
    d0, _ = _unit(g - b)
    g = g - np.abs((aim * d0).sum(-1, keepdims=True)) * d0 + (aim * _perp(d0)).sum(-1, keepdims=True) * _perp(d0)
    d, dist = _unit(g - b)
    perp = _perp(d)
    rel = p - b
    along = (rel * d).sum(-1)
    lat = (rel * perp).sum(-1)
    contact = BLOCK_HALF + PUSHER_RADIUS
    orbit_r = math.sqrt(2) * BLOCK_HALF + PUSHER_RADIUS + 0.03  # clears the block's corners

    # Angle of the pusher around the block, 0 = straight behind it (opposite the goal).
    theta = _wrap(np.arctan2(rel[:, 1], rel[:, 0]) - np.arctan2(-d[:, 1], -d[:, 0]))
    behind = np.abs(theta) < 0.5

    # Orbit: step around the block on a circle that clears its corners, toward the back.
    step = np.clip(-theta, -0.7, 0.7)
    ang = np.arctan2(rel[:, 1], rel[:, 0]) + step
    way = b + orbit_r * np.stack([np.cos(ang), np.sin(ang)], -1)
    v_orbit = (way - p) / world.control_dt

    # Push: advance along d, pulling the lateral offset to zero; slow down when misaligned or near.
    align = np.clip(1.0 - np.abs(lat) / 0.03, 0.0, 1.0)
    near = np.clip(dist / 0.12, 0.25, 1.0)
    v_fwd = world.max_speed * align * near
    # Misaligned and close: back off to the pre-push point first.
    v_fwd = np.where((align < 0.3) & (along > -contact - 0.02), -0.5 * world.max_speed, v_fwd)
    v_lat = -lat / world.control_dt * 0.8
    v_push = d * v_fwd[:, None] + perp * v_lat[:, None]
    done = dist < 0.015
    v_push = np.where(done[:, None], 0.0, v_push)

    v = np.where(behind[:, None], v_push, v_orbit)
    v = _cap_norm(v, world.max_speed)
    return v / world.max_speed


# --- Reach --------------------------------------------------------------------------------------------
@register_expert("Reach", miss=lambda w: (3.0 * w.success_radius, 6.0 * w.success_radius), noise=0.3, random_prob=0.3)
def reach_expert(world: Reach, state: np.ndarray, aim: np.ndarray) -> np.ndarray:
    """Analytic 2-link IK (elbow solution nearest the current angles), P-control in joint space."""
    L = world.state_layout
    c, s = L.get(state, "joint_cos"), L.get(state, "joint_sin")
    q = np.arctan2(s, c)
    l1, l2 = LINKS

    def reachable(c):
        r = np.linalg.norm(c, axis=-1)
        return (r >= abs(l1 - l2) + 0.03) & (r <= l1 + l2 - 0.02)

    t = _subgoal(L.get(state, "target"), aim, reachable)
    r = np.clip(np.linalg.norm(t, axis=-1), abs(l1 - l2) + 1e-4, l1 + l2 - 1e-4)
    c2 = np.clip((r * r - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1.0, 1.0)
    lim = world.elbow_limit - 0.02
    base = np.arctan2(t[:, 1], t[:, 0])
    best_err = None
    best_cost = None
    for sign in (1.0, -1.0):
        q2 = np.clip(sign * np.arccos(c2), -lim, lim)
        q1 = base - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
        err = np.stack([_wrap(q1 - q[:, 0]), q2 - q[:, 1]], -1)  # the elbow never wraps: it is limited
        cost = np.abs(err).max(-1)
        if best_err is None:
            best_err, best_cost = err, cost
        else:
            pick = cost < best_cost
            best_err = np.where(pick[:, None], err, best_err)
            best_cost = np.where(pick, cost, best_cost)
    # Arrive in one control step where the speed allows it, moving both joints along a straight line.
    qd = best_err / world.control_dt
    qd = qd * np.minimum(1.0, world.max_joint_speed / np.maximum(np.abs(qd).max(-1, keepdims=True), 1e-12))
    return qd / world.max_joint_speed


# --- Drop ---------------------------------------------------------------------------------------------
ROLL_MASS = 0.1 * 1.4  # obj0: a 0.1 kg solid sphere; rolling adds 2/5 of its mass to the inertia felt
DROP_KP, DROP_KD = 16.0, 8.0  # 1/s^2 and 1/s: critically damped, natural frequency 4 rad/s
# Where obj0's centre can rest on the flat table (drop.xml): walls at |x|, |y| = 0.40 (inner face) less the
# sphere's 0.045 radius, and the ramp's foot at x = -0.15.
DROP_FLAT_LO = np.array([-0.12, -0.35])
DROP_FLAT_HI = np.array([0.35, 0.35])


@register_expert("Drop", miss=lambda w: (2.0 * w.target_radius, 3.5 * w.target_radius), noise=0.3, random_prob=0.3)
def drop_expert(world: Drop, state: np.ndarray, aim: np.ndarray) -> np.ndarray:
    """PD control of obj0's xy position onto the target, with velocity damping so it comes to rest."""
    L = world.state_layout
    pos = L.get(state, "obj0_pos")
    vel = L.get(state, "obj0_vel")
    t = _subgoal(L.get(state, "target"), aim, lambda c: np.all((c >= DROP_FLAT_LO) & (c <= DROP_FLAT_HI), -1))
    t = np.clip(t, DROP_FLAT_LO, DROP_FLAT_HI)
    acc = DROP_KP * (t - pos[:, :2]) - DROP_KD * vel[:, :2]
    force = _cap_norm(ROLL_MASS * acc, world.max_force)
    return force / world.max_force
