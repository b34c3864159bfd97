"""Modified policies (policies/modifiers.py): the grammar, exact and deterministic actions, the off-ladder family."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import cosmos_sim
from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.evaluation.closed_loop import EvalConfig, evaluate_policies
from cosmos_sim.policies import ModifiedPolicy, Policy
from cosmos_sim.policies.modifiers import split_modifiers
from cosmos_sim.policies.registry import (
    LADDER,
    check_policy_spec,
    expand_policy_specs,
    off_ladder,
    parse_policy_spec,
    policy_from_spec,
)

WORLDS = [name.lower() for name in cosmos_sim.WORLDS]


def states(world: str, n: int) -> np.ndarray:
    env = gym.make(f"cosmos_sim/{cosmos_sim.get_world(world).name}-v0", obs_mode="state")
    try:
        return np.stack([env.reset(seed=s)[0] for s in range(n)])
    finally:
        env.close()


class Constant:
    """A fixed action for every env, recording the reset masks it is given."""

    def __init__(self, action, obs_mode: str = "state"):
        self.action, self.obs_mode, self.name, self.resets = np.asarray(action, np.float32), obs_mode, "const", []

    def act(self, obs):
        return np.tile(self.action, (len(obs["state"]), 1))

    def reset(self, mask=None):
        self.resets.append(None if mask is None else np.asarray(mask).copy())


# --- grammar ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, base, mods", [
    ("scripted:1@speed=0.25", "scripted:1", {"speed": 0.25}),
    ("scripted:0.75@act=0.5@noise=0.2", "scripted:0.75", {"act": 0.5, "noise": 0.2}),
    ("random@noise=0", "random", {"noise": 0.0}),
    ("scripted", "scripted", {}),
])
def test_split_modifiers(spec, base, mods):
    assert split_modifiers(spec) == (base, mods)
    assert check_policy_spec(spec) == spec
    assert parse_policy_spec(spec) == parse_policy_spec(base)


def test_existing_specs_unchanged():
    for spec in (*LADDER, "scripted", "explore", "mix", "planner", "planner:mppi"):
        assert check_policy_spec(spec) == spec
    assert parse_policy_spec("scripted:0.5") == ("scripted", 0.5)
    assert expand_policy_specs("ladder") == list(LADDER)
    policy = policy_from_spec("scripted:0.5", "push")
    assert not isinstance(policy, ModifiedPolicy) and policy.name == "scripted:0.5"


@pytest.mark.parametrize("spec, error, match", [
    ("scripted:1@fast=2", UnknownChoiceError, "unknown policy modifier 'fast'; valid choices: act, noise, speed"),
    ("scripted:1@", UnknownChoiceError, "unknown policy modifier ''"),
    ("scripted:1@speed", ValueError, "modifier 'speed' needs a value"),
    ("scripted:1@speed=", ValueError, "modifier 'speed' needs a value"),
    ("scripted:1@speed=0", ValueError, r"speed must be a number in \(0, 1\], got '0'"),
    ("scripted:1@speed=1.5", ValueError, r"speed must be a number in \(0, 1\]"),
    ("scripted:1@act=abc", ValueError, r"act must be a number in \(0, 1\], got 'abc'"),
    ("scripted:1@noise=-0.1", ValueError, "noise must be a finite number >= 0"),
    ("scripted:1@noise=nan", ValueError, "noise must be a finite number >= 0"),
    ("scripted:1@noise=inf", ValueError, "noise must be a finite number >= 0"),
    ("scripted:1@speed=0.5@speed=0.2", ValueError, "modifier 'speed' is given twice"),
    ("@speed=0.5", ValueError, "modifiers need a policy before '@'"),
    ("expert@speed=0.5", UnknownChoiceError, "unknown policy 'expert'"),
    ("scripted:2@speed=0.5", ValueError, "skill after ':' must be a number in"),
    ("planner:foo@speed=0.5", UnknownChoiceError, "unknown planner method 'foo'"),
    ("off-ladder", ValueError, "names a group of policies"),
])
def test_bad_specs_fail_in_one_clear_line(spec, error, match):
    for check in (check_policy_spec, lambda s: policy_from_spec(s, "push")):
        with pytest.raises(error, match=match) as info:
            check(spec)
        assert "\n" not in str(info.value)
    with pytest.raises(error, match=match):
        EvalConfig(policy=spec)


def test_constructor_checks_values():
    with pytest.raises(ValueError, match=r"act must be a number in \(0, 1\]"):
        ModifiedPolicy(Constant([0.5, 0.5]), act=0.0)
    with pytest.raises(ValueError, match="speed must be"):
        ModifiedPolicy(Constant([0.5, 0.5]), speed=True)


# --- actions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("world", WORLDS)
def test_speed_scales_actions_exactly(world):
    s = states(world, 6)
    base = policy_from_spec("scripted:0.5", world, seed=3)  # sloppy: the inner policy's noise must be untouched
    slow = policy_from_spec("scripted:0.5@speed=0.25", world, seed=3)
    assert isinstance(slow, Policy) and slow.name == "scripted:0.5@speed=0.25"
    for _ in range(3):
        a, b = base.act({"state": s}), slow.act({"state": s})
        assert b.shape == (6, cosmos_sim.get_world(world).action_dim) and b.dtype == np.float32
        np.testing.assert_array_equal(b, a * np.float32(0.25))
    one = slow.act({"state": s[0]})
    assert one.shape == (cosmos_sim.get_world(world).action_dim,) and one.dtype == np.float32


def test_act_share_idles_with_zero_actions_and_nests():
    n, steps = 500, 20
    obs = {"state": np.zeros((n, 3))}
    base = policy_from_spec("random", "push", seed=5)
    sparse = {p: policy_from_spec(f"random@act={p}", "push", seed=5) for p in (0.25, 0.5)}
    active = {p: [] for p in sparse}
    for _ in range(steps):
        a = base.act(obs)
        for p, policy in sparse.items():
            b = policy.act(obs)
            on = np.any(b != 0, axis=1)
            np.testing.assert_array_equal(b[on], a[on])  # an active step is the inner policy's action
            np.testing.assert_array_equal(b[~on], 0.0)
            active[p].append(on)
    share = {p: np.mean(v) for p, v in active.items()}
    assert abs(share[0.25] - 0.25) < 0.02 and abs(share[0.5] - 0.5) < 0.02, share
    assert not np.any(np.asarray(active[0.25]) & ~np.asarray(active[0.5]))  # act=0.25's steps are act=0.5's too


def test_noise_std_and_clipping():
    obs = {"state": np.zeros((4000, 3))}
    a = ModifiedPolicy(Constant([0.0, 0.5]), noise=0.1, seed=1).act(obs)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a.mean(0), [0.0, 0.5], atol=0.01)
    np.testing.assert_allclose(a.std(0), [0.1, 0.1], rtol=0.05)
    wild = ModifiedPolicy(Constant([0.0, 0.5]), noise=3.0, seed=1).act(obs)
    assert np.abs(wild).max() <= 1.0 and np.mean(np.abs(wild) == 1.0) > 0.5


def test_modifiers_apply_in_a_fixed_order():
    obs = {"state": np.zeros((8, 3))}
    a = policy_from_spec("random@noise=0.3@speed=0.5@act=0.5", "push", seed=2).act(obs)
    b = policy_from_spec("random@act=0.5@speed=0.5@noise=0.3", "push", seed=2).act(obs)
    np.testing.assert_array_equal(a, b)
    clipped = ModifiedPolicy(Constant([1.0, -1.0]), speed=0.5, noise=0.0).act(obs)
    np.testing.assert_array_equal(clipped, np.tile([0.5, -0.5], (8, 1)))


@pytest.mark.parametrize("spec", ["scripted:0.5@act=0.5@noise=0.2", "scripted:1@speed=0.3", "random@act=0.3"])
def test_same_seed_same_actions(spec):
    s = states("push", 5)
    runs = []
    for seed in (4, 4, 5):
        policy = policy_from_spec(spec, "push", seed=seed)
        runs.append(np.stack([policy.act({"state": s}) for _ in range(6)]))
    np.testing.assert_array_equal(runs[0], runs[1])
    if "speed=0.3" not in spec:  # the full expert is deterministic: only noisy specs differ by seed
        assert not np.array_equal(runs[0], runs[2])


def test_reset_is_the_inner_policys_per_env_reset():
    s = states("push", 6)
    base = policy_from_spec("scripted:0", "push", seed=7)  # skill 0: a mistaken aim redrawn by each reset
    slow = policy_from_spec("scripted:0@speed=0.5", "push", seed=7)
    mask = np.array([True, False, True, False, False, True])
    for step in range(4):
        if step == 2:
            base.reset(mask)
            slow.reset(mask)
        np.testing.assert_array_equal(slow.act({"state": s}), base.act({"state": s}) * np.float32(0.5))
    with pytest.raises(ValueError, match="reset mask has 2 entries"):
        slow.reset(np.array([True, False]))
    inner = Constant([0.1, 0.2])
    wrapped = ModifiedPolicy(inner, act=0.5)
    wrapped.reset()
    wrapped.reset(mask)
    assert inner.resets[0] is None and np.array_equal(inner.resets[1], mask)


def test_torch_actions_stay_torch():
    class TorchConstant(Constant):
        def act(self, obs):
            return torch.full((len(obs["state"]), 2), 0.8, dtype=torch.float32)

    out = ModifiedPolicy(TorchConstant([0, 0]), speed=0.5, act=0.5, noise=0.0, seed=0).act({"state": np.zeros((64, 3))})
    assert isinstance(out, torch.Tensor) and out.shape == (64, 2) and out.dtype == torch.float32
    on = out[:, 0] != 0
    assert torch.equal(out[on], torch.full((int(on.sum()), 2), 0.4)) and not out[~on].any() and 0 < int(on.sum()) < 64


def test_wrapper_shows_the_inner_policys_attributes():
    policy = ModifiedPolicy(Constant([0.0, 0.0], obs_mode="pixels"), speed=0.5, noise=0.1, seed=3)
    assert policy.obs_mode == "pixels" and policy.name == "const@speed=0.5@noise=0.1"
    assert repr(policy) == "ModifiedPolicy(" + repr(policy.policy) + ", speed=0.5, noise=0.1, seed=3)"
    with pytest.raises(AttributeError):
        _ = policy.no_such_attribute


# --- the off-ladder family ----------------------------------------------------------------------------------


@pytest.mark.parametrize("world", WORLDS)
def test_off_ladder_family(world):
    family = off_ladder(world)
    assert 6 <= len(family) <= 8 and len(set(family)) == len(family)
    assert not set(family) & set(LADDER)
    assert family == cosmos_sim.get_world(world).off_ladder
    assert expand_policy_specs("off-ladder", world=world) == list(family)
    assert expand_policy_specs(["ladder", "off-ladder,scripted:1"], world=world) == [*LADDER, *family]
    for spec in family:
        assert isinstance(policy_from_spec(spec, world), ModifiedPolicy)
    for kind in ("speed", "act", "noise"):  # each way off the ladder is in the family
        assert any(f"@{kind}=" in spec for spec in family)


def test_off_ladder_needs_a_world():
    with pytest.raises(ValueError, match="'off-ladder' depend on the world: pass world="):
        expand_policy_specs("ladder,off-ladder")
    for spec in cosmos_sim.World.off_ladder:
        check_policy_spec(spec)


def test_slowed_expert_succeeds_less_often_in_mujoco():
    specs = ["scripted:1", "scripted:1@speed=0.2"]
    result = evaluate_policies("push", "mujoco", specs, episodes=6)
    full, slow = (result[s]["success_rate"]["mean"] for s in specs)
    assert full == 1.0 and slow < 0.5, (full, slow)
    assert result[specs[1]]["policy"] == "scripted:1@speed=0.2"


@pytest.mark.slow
@pytest.mark.parametrize("world", WORLDS)
def test_off_ladder_rates_spread_in_mujoco(world):
    family = list(off_ladder(world))
    result = evaluate_policies(world, "mujoco", family, episodes=20)
    rates = [result[s]["success_rate"]["mean"] for s in family]
    assert max(rates) - min(rates) >= 0.3, dict(zip(family, rates, strict=True))
    assert sum(0.05 <= r <= 0.95 for r in rates) >= len(family) - 1, dict(zip(family, rates, strict=True))
