"""Policy modifiers: a policy slowed, acting on a share of steps, or noisy, to test ranking off the ladder.

A learned world judged only on the skill ladder can still lose what the ladder does not exercise: small,
slow or sparse motions, or jittery actions. A modified spec wraps any policy the registry builds:

    SPEC     := BASE ( "@" MODIFIER )*        scripted:1@speed=0.25, scripted:0.75@act=0.5@noise=0.2
    MODIFIER := NAME "=" NUMBER

- `speed=s`, s in (0, 1]: every action scaled by s (a slowed expert);
- `act=p`, p in (0, 1]: the policy acts on a random share p of steps, zero action otherwise (sparse acting);
- `noise=σ`, σ >= 0: Gaussian action noise of std σ, then clipped to [-1, 1].

Modifiers are joined by "@" rather than "," because lists of specs are comma separated. Each may appear once;
they apply in a fixed order whatever the spec's order — scale, add noise, clip, then idle steps — so a spec
means one policy. The inner policy acts on every step (its own random streams stay as they would be without
the modifiers), and the idle and noise draws come from two generators of the wrapper's own seed, one draw per
env and step: the same seed and observations give the same actions, and since a step is active when
`u < p` with the same `u` at every p, the active steps of `act=0.25` are a subset of those of `act=0.5`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cosmos_sim.errors import InputError, UnknownChoiceError
from cosmos_sim.policies.base import Obs, Policy

SEP = "@"
_STREAM = 0x6D6F64  # "mod": keeps the wrapper's random streams apart from the inner policy's
# name -> (identity value, what the value must be, check)
MODIFIERS: dict[str, tuple[float, str, Any]] = {
    "speed": (1.0, "a number in (0, 1]", lambda v: 0.0 < v <= 1.0),
    "act": (1.0, "a number in (0, 1]", lambda v: 0.0 < v <= 1.0),
    "noise": (0.0, "a finite number >= 0", lambda v: 0.0 <= v < math.inf),
}


def split_modifiers(spec: str) -> tuple[str, dict[str, float]]:
    """"scripted:1@speed=0.25@noise=0.1" -> ("scripted:1", {"speed": 0.25, "noise": 0.1}); the values checked."""
    base, *parts = str(spec).split(SEP)
    mods: dict[str, float] = {}
    for part in parts:
        name, eq, text = part.partition("=")
        name = name.strip()
        if name not in MODIFIERS:
            raise UnknownChoiceError("policy modifier", name, MODIFIERS)
        if not eq or not text.strip():
            raise InputError(f"policy {spec!r}: modifier {name!r} needs a value, as in {name}=0.5")
        if name in mods:
            raise InputError(f"policy {spec!r}: modifier {name!r} is given twice")
        _, must, ok = MODIFIERS[name]
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not ok(value):  # NaN fails every check
            raise InputError(f"policy {spec!r}: {name} must be {must}, got {text.strip()!r}")
        mods[name] = value
    if parts and not base:
        raise InputError(f"policy {spec!r}: modifiers need a policy before {SEP!r}, as in scripted:1{SEP}speed=0.5")
    return base, mods


class ModifiedPolicy:
    """`policy` with its actions slowed (`speed`), made sparse (`act`) and/or noisy (`noise`).

    Batched like the policy it wraps (`[N, ...]` in, `[N, A]` out; an inner policy that answers a single
    observation with `[A]` gets `[A]` back, and torch actions stay torch on their device). Attributes it does
    not have (`obs_mode`, `image_size`, `world`, ...) are the inner policy's.
    """

    def __init__(self, policy: Policy, speed: float = 1.0, act: float = 1.0, noise: float = 0.0,
                 seed: int | None = 0, name: str | None = None):
        for key, value in (("speed", speed), ("act", act), ("noise", noise)):
            _, must, ok = MODIFIERS[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not ok(
                    float(value)):
                raise InputError(f"{key} must be {must}, got {value!r}")
        self.policy = policy
        self.speed, self.act_share, self.noise = float(speed), float(act), float(noise)
        self.seed = seed
        # Not SeedSequence(seed) itself: the inner policy may spawn its streams from that same seed.
        act_seq, noise_seq = np.random.SeedSequence(None if seed is None else [seed, _STREAM]).spawn(2)
        self.act_rng = np.random.default_rng(act_seq)  # which steps are active
        self.noise_rng = np.random.default_rng(noise_seq)  # action noise
        self.name = name or getattr(policy, "name", type(policy).__name__) + "".join(
            f"{SEP}{k}={v:g}" for k, v in self.modifiers.items())

    @property
    def modifiers(self) -> dict[str, float]:
        """The modifiers that change something, in spec form."""
        values = {"speed": self.speed, "act": self.act_share, "noise": self.noise}
        return {k: v for k, v in values.items() if v != MODIFIERS[k][0]}

    def __getattr__(self, key: str) -> Any:
        if key == "policy":  # not set yet (during unpickling, say): no recursion
            raise AttributeError(key)
        return getattr(self.policy, key)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """The inner policy's per-env reset; the modifiers keep no per-episode memory."""
        self.policy.reset(mask)

    def act(self, obs: Obs) -> Any:
        a = self.policy.act(obs)
        if isinstance(a, np.ndarray) or not hasattr(a, "device"):
            a = np.asarray(a)
            single = a.ndim == 1
            out = self._modify(np.atleast_2d(a).astype(np.float64)).astype(np.float32)
            return out[0] if single else out
        return self._modify_torch(a)

    def _draws(self, shape: tuple[int, ...]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Noise [N, A] and the active-step mask [N] (None where the modifier is absent)."""
        noise = self.noise_rng.normal(size=shape) * self.noise if self.noise > 0 else None
        active = self.act_rng.random(shape[0]) < self.act_share if self.act_share < 1 else None
        return noise, active

    def _modify(self, a: np.ndarray) -> np.ndarray:
        noise, active = self._draws(a.shape)
        a = a * self.speed
        if noise is not None:
            a = a + noise
        a = np.clip(a, -1.0, 1.0)
        if active is not None:
            a = np.where(active[:, None], a, 0.0)
        return a

    def _modify_torch(self, a):
        import torch

        single = a.ndim == 1
        b = a[None] if single else a
        noise, active = self._draws(tuple(b.shape))
        b = b * self.speed
        if noise is not None:
            b = b + torch.as_tensor(noise, device=b.device, dtype=b.dtype)
        b = b.clamp(-1.0, 1.0)
        if active is not None:
            b = b * torch.as_tensor(active[:, None], device=b.device, dtype=b.dtype)
        return b[0] if single else b

    def __repr__(self) -> str:
        mods = ", ".join(f"{k}={v:g}" for k, v in self.modifiers.items())
        return f"ModifiedPolicy({self.policy!r}, {mods}, seed={self.seed!r})"


def modify(policy: Policy, modifiers: dict[str, float], seed: int | None = 0, name: str | None = None) -> Policy:
    """`policy` wrapped in its modifiers, or `policy` itself when there are none."""
    if not modifiers:
        return policy
    return ModifiedPolicy(policy, seed=seed, name=name, **modifiers)
