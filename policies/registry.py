"""Policies by name, so the CLI and datasets can say `--policy scripted` and a file can record it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.policies.base import Policy, RandomPolicy
from cosmos_sim.worlds import World, get_world


def _scripted(world: World, seed: int, skill: float) -> Policy:
    from cosmos_sim.policies.scripted import ScriptedPolicy

    return ScriptedPolicy(world, skill=skill, seed=seed)


def _random(world: World, seed: int, skill: float) -> Policy:
    return RandomPolicy(world.action_dim, seed=seed)


def _explore(world: World, seed: int, skill: float) -> Policy:
    from cosmos_sim.policies.explore import ContactExplorer

    return ContactExplorer(world, seed=seed)


POLICIES: dict[str, Callable[[World, int, float], Policy]] = {
    "scripted": _scripted,
    "random": _random,
    "explore": _explore,
}
# "mix" draws one of these per episode: experts of varied skill, contact-seeking exploration, noise.
MIX = (("scripted", 0.6), ("explore", 0.3), ("random", 0.1))


def policy_names() -> list[str]:
    return [*POLICIES, "mix"]


def make_policy(name: str, world: str | World, seed: int = 0, skill: float = 1.0) -> Policy:
    """A policy by registry name. `mix` picks one of MIX with the seed's own generator."""
    world = get_world(world)
    if name == "mix":
        names, weights = zip(*MIX, strict=True)
        name = str(np.random.default_rng([seed, 7]).choice(names, p=np.asarray(weights)))
    if name not in POLICIES:
        raise UnknownChoiceError("policy", name, policy_names())
    return POLICIES[name](world, seed, skill)
