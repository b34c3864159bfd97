"""Policies by name, so the CLI and datasets can say `--policy scripted` and a file can record it."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.policies.base import Policy, RandomPolicy, batch_size
from cosmos_sim.policies.modifiers import modify, split_modifiers
from cosmos_sim.worlds import World, get_world


def _scripted(world: World, seed: int, skill: float) -> Policy:
    from cosmos_sim.policies.scripted import ScriptedPolicy

    return ScriptedPolicy(world, skill=skill, seed=seed)


def _random(world: World, seed: int, skill: float) -> Policy:
    return RandomPolicy(world.action_dim, seed=seed)


def _explore(world: World, seed: int, skill: float) -> Policy:
    from cosmos_sim.policies.explore import ContactExplorer

    return ContactExplorer(world, seed=seed)


class ZeroPolicy:
    """All-zero actions: the world left to itself (passive physics in Drop)."""

    def __init__(self, action_dim: int):
        self.action_dim = int(action_dim)
        self.name = "zero"

    def act(self, obs) -> np.ndarray:
        return np.zeros((batch_size(obs), self.action_dim), np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        return None


def _zero(world: World, seed: int, skill: float) -> Policy:
    return ZeroPolicy(world.action_dim)


def _varied(world: World, seed: int, skill: float) -> Policy:
    """The expert at `skill`, slowed, acting on a share of steps and jittery by amounts drawn per episode:
    slow, hesitant and small motions in the data, which a learned world otherwise loses (log-uniform
    speed and share down to 2 %, noise up to 1.5; each applied in half of the episodes)."""
    from cosmos_sim.policies.modifiers import modify

    rng = np.random.default_rng([seed, 11])
    draws = {"speed": 10 ** rng.uniform(-1.7, 0.0), "act": 10 ** rng.uniform(-1.7, 0.0), "noise": rng.uniform(0, 1.5)}
    use = rng.random(3) < 0.5
    return modify(_scripted(world, seed, skill), {k: v for (k, v), u in zip(draws.items(), use, strict=True) if u},
                  seed=seed)


POLICIES: dict[str, Callable[[World, int, float], Policy]] = {
    "scripted": _scripted,
    "varied": _varied,
    "random": _random,
    "explore": _explore,
    "zero": _zero,
}
# "mix" draws one of these per episode: experts of varied skill (and speed, persistence, jitter),
# contact-seeking exploration, noise.
MIX = (("scripted", 0.45), ("varied", 0.2), ("explore", 0.25), ("random", 0.1))


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


# The default ranking ladder: random, then the scripted expert from hopeless to perfect.
LADDER = ("random", "scripted:0", "scripted:0.25", "scripted:0.5", "scripted:0.75", "scripted:1")
KEYWORDS = ("ladder", "off-ladder")


def off_ladder(world: str | World) -> tuple[str, ...]:
    """The world's off-ladder policies (`World.off_ladder`): its expert slowed, acting sparsely, noisy."""
    return tuple(get_world(world).off_ladder)


def parse_policy_spec(spec: str) -> tuple[str, float]:
    """"scripted:0.5" -> ("scripted", 0.5); "random" -> ("random", 1.0). Names are checked, and so are
    modifiers after '@' (policies/modifiers.py), which `policy_from_spec` applies."""
    base, _ = split_modifiers(spec)
    name, _, skill_text = base.partition(":")
    if name in KEYWORDS:
        raise ValueError(f"{name!r} names a group of policies (compare --policies takes it); give one policy here")
    if name not in policy_names():
        raise UnknownChoiceError("policy", name, [*policy_names(), *KEYWORDS])
    if not skill_text:
        return name, 1.0
    try:
        skill = float(skill_text)
    except ValueError:
        skill = math.nan
    if not 0.0 <= skill <= 1.0:
        raise ValueError(f"policy {spec!r}: the skill after ':' must be a number in [0, 1]")
    return name, skill


PLANNER = "planner"  # "planner" (CEM) or "planner:mppi": plans in the world model given to the evaluation


def check_policy_spec(spec: str) -> str:
    """Any policy the CLI accepts: a registry name with optional ':skill', 'planner[:cem|mppi][?horizon=12&...]', or a
    saved policy (a RUN directory or .safetensors file), each with optional '@name=value' modifiers."""
    from cosmos_sim.policies.saved import is_saved_policy

    spec = str(spec)
    if is_saved_policy(spec):
        return spec
    base, mods = split_modifiers(spec)
    if mods:
        check_policy_spec(base)
        return spec
    name, _, method = spec.partition(":")
    if name.partition("?")[0] == PLANNER:
        from cosmos_sim.policies.planning import PlannerConfig

        PlannerConfig.from_spec(spec)  # an unknown method or setting is named here
        return spec
    parse_policy_spec(spec)
    return spec


def expand_policy_specs(specs: str | list[str] | tuple[str, ...], world: str | World | None = None) -> list[str]:
    """"ladder", "off-ladder", "a,b" or a list of these -> checked specs, in order, without duplicates.

    "off-ladder" is the world's own family (`off_ladder`), so it needs `world`.
    """
    items = [specs] if isinstance(specs, str) else list(specs)
    out: list[str] = []
    for item in (part.strip() for s in items for part in str(s).split(",")):
        if item == "off-ladder" and world is None:
            raise ValueError("policies 'off-ladder' depend on the world: pass world= to expand_policy_specs")
        group = LADDER if item == "ladder" else off_ladder(world) if item == "off-ladder" else (item,)
        for spec in group:
            check_policy_spec(spec)
            if spec not in out:
                out.append(spec)
    if not out:
        raise ValueError("no policies given")
    return out


def policy_from_spec(spec: str, world: str | World, seed: int = 0, model=None) -> Policy:
    """A Policy from a spec (see `check_policy_spec`); planners need `model` (a WorldModel or its path)."""
    from cosmos_sim.policies.saved import is_saved_policy, load_policy

    world = get_world(world)
    check_policy_spec(spec)
    if is_saved_policy(spec):
        return load_policy(spec, world=world.name)
    base, mods = split_modifiers(spec)
    if mods:
        return modify(policy_from_spec(base, world, seed=seed, model=model), mods, seed=seed, name=str(spec))
    name, _, method = str(spec).partition(":")
    if name.partition("?")[0] == PLANNER:
        from cosmos_sim.policies.planning import Planner, PlannerConfig

        if model is None:
            raise ValueError("a planner needs a world model to plan in: pass --model RUN")
        planner = Planner(model, PlannerConfig.from_spec(spec, seed=seed))
        if planner.world.name != world.name:
            from cosmos_sim.errors import ConfigMismatchError

            raise ConfigMismatchError(f"planner: model has world {planner.world.name!r}, caller has {world.name!r}")
        return planner
    name, skill = parse_policy_spec(spec)
    policy = make_policy(name, world, seed=seed, skill=skill)
    policy.name = spec
    return policy
