"""Policies by name, so the CLI and datasets can say `--policy scripted` and a file can record it."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from cosmos_sim.errors import InputError, UnknownChoiceError
from cosmos_sim.policies.base import Policy, RandomPolicy, batch_size, obs_dict
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
    if name in ("mix", "scripted", "varied") and not world.has_expert():
        raise InputError(f"policy {name!r} needs a scripted expert, and {world.name} has none: use random, "
                         "explore, a saved policy (RUN) or module:callable")
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
        raise InputError(f"{name!r} names a group of policies (compare --policies takes it); give one policy here")
    if name not in policy_names():
        raise UnknownChoiceError("policy", name, [*policy_names(), *KEYWORDS])
    if not skill_text:
        return name, 1.0
    try:
        skill = float(skill_text)
    except ValueError:
        skill = math.nan
    if not 0.0 <= skill <= 1.0:
        raise InputError(f"policy {spec!r}: the skill after ':' must be a number in [0, 1]")
    return name, skill


PLANNER = "planner"  # "planner" (CEM) or "planner:mppi": plans in the world model given to the evaluation


def check_policy_spec(spec: str) -> str:
    """Any policy the CLI accepts: a registry name with optional ':skill', 'planner[:cem|mppi][?horizon=12&...]', or a
    saved policy (a RUN directory or .safetensors file), each with optional '@name=value' modifiers."""
    from cosmos_sim.policies.saved import is_saved_policy

    spec = str(spec)
    if is_saved_policy(spec):
        return spec
    if is_callable_spec(spec):  # module:function, for a Gymnasium env's world
        load_callable(spec)
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
            raise InputError("policies 'off-ladder' depend on the world: pass world= to expand_policy_specs")
        group = LADDER if item == "ladder" else off_ladder(world) if item == "off-ladder" else (item,)
        for spec in group:
            check_policy_spec(spec)
            if spec not in out:
                out.append(spec)
    if not out:
        raise InputError("no policies given")
    return out


def policy_from_spec(spec: str, world: str | World, seed: int = 0, model=None) -> Policy:
    """A Policy from a spec (see `check_policy_spec`); planners need `model` (a WorldModel or its path)."""
    from cosmos_sim.policies.saved import is_saved_policy, load_policy

    world = get_world(world)
    check_policy_spec(spec)
    if is_saved_policy(spec):
        return load_policy(spec, world=world.name)
    if is_callable_spec(spec):
        if not hasattr(world, "state_to_obs"):
            raise InputError(f"policy {spec!r}: module:callable policies act in a Gymnasium env's own spaces; "
                             f"{world.name} is a cosmos_sim world")
        return CallablePolicy(load_callable(spec), world, spec)
    base, mods = split_modifiers(spec)
    if mods:
        return modify(policy_from_spec(base, world, seed=seed, model=model), mods, seed=seed, name=str(spec))
    name, _, method = str(spec).partition(":")
    if name.partition("?")[0] == PLANNER:
        from cosmos_sim.policies.planning import Planner, PlannerConfig

        if model is None:
            raise InputError("a planner needs a world model to plan in: pass --model RUN")
        planner = Planner(model, PlannerConfig.from_spec(spec, seed=seed))
        if planner.world.name != world.name:
            from cosmos_sim.errors import ConfigMismatchError

            raise ConfigMismatchError(f"planner: model has world {planner.world.name!r}, caller has {world.name!r}")
        return planner
    name, skill = parse_policy_spec(spec)
    policy = make_policy(name, world, seed=seed, skill=skill)
    policy.name = spec
    return policy


class CallablePolicy:
    """A function written for the source env (`f(observation) -> action` in its own spaces) as a Policy of an
    env world: each state row becomes the env's observation, and the action is normalized to [-1, 1]."""

    def __init__(self, fn: Callable, world: World, name: str):
        self.fn, self.world, self.name = fn, world, name

    def act(self, obs) -> np.ndarray:
        states = np.asarray(obs_dict(obs)["state"])
        return np.stack([self.world.from_source_action(self.fn(self.world.state_to_obs(s))) for s in states])

    def reset(self, mask: np.ndarray | None = None) -> None:
        return None


def is_callable_spec(spec: str) -> bool:
    """"package.module:function": a module path, a colon, a Python name (not "scripted:0.5")."""
    import re

    name = r"[A-Za-z_][\w.]*"
    reserved = (*policy_names(), PLANNER)
    return re.fullmatch(f"{name}:{name}", spec) is not None and spec.split(":")[0] not in reserved


def load_callable(spec: str) -> Callable:
    import importlib

    module, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise InputError(f"policy {spec!r}: cannot import module {module!r} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"policy {spec!r}: {module} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"policy {spec!r} is not callable")
    return obj


def collection_specs(policy: str, world: str | World) -> list[str]:
    """`collect --policy`: one spec or several separated by ',' (one drawn per episode), each a registry name,
    a saved policy RUN or, for a Gymnasium env's world, module:callable (any of them with @modifiers)."""
    world = get_world(world)
    specs = [p.strip() for p in str(policy).split(",") if p.strip()]
    if not specs:
        raise InputError("no collection policy given")
    for spec in specs:
        base, _ = split_modifiers(spec)
        if is_callable_spec(base):
            if not hasattr(world, "state_to_obs"):
                raise InputError(f"policy {spec!r}: module:callable policies act in a Gymnasium env's own spaces; "
                                 f"{world.name} is a cosmos_sim world (use a registry name or a saved policy)")
            load_callable(base)
            continue
        from cosmos_sim.policies.saved import is_saved_policy

        if not is_saved_policy(base) and base not in policy_names():
            raise UnknownChoiceError("collection policy", spec,
                                     [*policy_names(), "RUN (a saved policy)", "module:callable"])
        if base in ("mix", "scripted", "varied") and not world.has_expert():
            make_policy(base, world)  # names the problem
    return specs


def collection_policy(policy: str, world: str | World, seed: int, skill: float = 1.0) -> Policy:
    """The policy of episode `seed` (see `collection_specs`): drawn per episode from the seed when several."""
    world = get_world(world)
    specs = collection_specs(policy, world)
    spec = specs[int(np.random.default_rng([seed, 13]).integers(len(specs)))] if len(specs) > 1 else specs[0]
    base, mods = split_modifiers(spec)
    from cosmos_sim.policies.saved import is_saved_policy, load_policy

    p: Policy = (CallablePolicy(load_callable(base), world, base) if is_callable_spec(base)
                 else load_policy(base, world=world.name) if is_saved_policy(base)
                 else make_policy(base, world, seed=seed, skill=skill))
    return modify(p, mods, seed=seed, name=spec) if mods else p
