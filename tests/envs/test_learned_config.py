"""One LearnedEnvConfig for every learned env (checked once, every error naming its field, JSON round trip), the
constructors that take it, and uncertainty shaping as wrappers: their output is the unshaped env's, transformed
by the documented formula, step by step (MOPO: reward - λ × uncertainty in float32; MOReL: truncated where
uncertainty > τ and the step did not terminate, the halted env starting over as the autoreset mode says)."""

import inspect
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import VectorWrapper

import cosmos_sim  # noqa: F401  (registers the ids)
from cosmos_sim.camera import orbit
from cosmos_sim.envs.learned_config import LearnedEnvConfig, UnknownKeywordError
from cosmos_sim.envs.learned_core import BatchedLearnedCore
from cosmos_sim.envs.learned_env import LearnedEnv, LearnedVectorEnv
from cosmos_sim.envs.registration import make_learned
from cosmos_sim.envs.shaping import (
    HaltOnUncertainty,
    UncertaintyPenalty,
    VectorHaltOnUncertainty,
    VectorUncertaintyPenalty,
)
from cosmos_sim.envs.world_model_env import WorldModelEnv, WorldModelVectorEnv
from cosmos_sim.errors import EpisodeOverError, InputError
from cosmos_sim.world_model import WorldModel

from dynamics.test_ensemble import with_ensemble

ID = "cosmos_sim/Push-v0"
LAM = 2.5
F32 = np.float32


@pytest.fixture(scope="module")
def ens(tiny_world_model):
    """The tiny Push model with a 3-member state model that disagrees (dynamics/test_ensemble.py)."""
    torch.manual_seed(0)
    return with_ensemble(WorldModel.load(tiny_world_model[0]))


@pytest.fixture(scope="module")
def tau(ens):
    """A threshold the disagreement passes now and then (its median over a short rollout)."""
    envs = gym.make_vec(ID, num_envs=6, backend="world_model", model=ens, obs_mode="state")
    envs.reset(seed=11)
    rng = np.random.default_rng(2)
    u = np.concatenate([envs.step(rng.uniform(-1, 1, (6, 2)).astype(F32))[4]["uncertainty"] for _ in range(30)])
    return float(np.median(u[u > 0]))


# --- the config -------------------------------------------------------------------------------------------
def test_config_round_trips_through_json(tmp_path):
    pose = orbit(100.0, -50.0, 1.2)
    c = LearnedEnvConfig(world="push", model="pretrained", obs_mode="both", image_size=32,
                         cameras=[pose, ("default", (32, 32))], reset_source=tmp_path, sampling={"steps": 4},
                         max_episode_steps=20, autoreset_mode="same_step", uncertainty_penalty=1,
                         halt_uncertainty=0.5)
    assert c.world == "Push" and c.image_size == (32, 32) and c.reset_source == str(tmp_path)
    d = json.loads(json.dumps(c.to_dict()))
    assert LearnedEnvConfig.from_dict(d) == c and d["cameras"][0] == pose.to_dict()
    assert LearnedEnvConfig(camera=pose.to_dict()).camera == pose


def test_objects_are_kept_and_written_as_labels(tiny_world_model):
    model = WorldModel.load(tiny_world_model[0])
    c = LearnedEnvConfig(world="push", model=model)
    assert c.model is model and c.to_dict()["model"] == "<WorldModel object>"
    d = json.loads(json.dumps(c.to_dict()))
    with pytest.raises(InputError, match="model <WorldModel object> stands for an object"):
        LearnedEnvConfig.from_dict(d)
    assert LearnedEnvConfig.from_dict(d, model=model) == c
    with pytest.raises(UnknownKeywordError, match="'obs_mod'.*did you mean 'obs_mode'"):
        LearnedEnvConfig.from_dict(d | {"obs_mod": "state"})


@pytest.mark.parametrize("field, value, match", [
    ("world", "nowhere", "unknown world 'nowhere'"),
    ("model", 42, "model must be a path or a WorldModel"),
    ("device", "gpu", "device must be"),
    ("obs_mode", "rgb", "unknown obs_mode 'rgb'"),
    ("image_size", 0, "image_size must be"),
    ("camera", "left", "camera must be None"),
    ("cameras", [], "cameras must hold 1 to 8 views"),
    ("cameras", "default", "cameras must be a list"),
    ("reset_source", 3, "reset_source must be"),
    ("reset_start", "middle", "unknown reset_start 'middle'"),
    ("reset_start", "any", "reset_start='any' needs reset_source=DATASET"),
    ("sampling", 4, "sampling must be a dict"),
    ("ensemble", "median", "unknown ensemble 'median'"),
    ("max_episode_steps", 0, "max_episode_steps must be a positive int"),
    ("autoreset_mode", "never", "unknown autoreset_mode 'never'"),
    ("array_type", "jax", "unknown array_type 'jax'"),
    ("uncertainty_penalty", -1.0, "uncertainty_penalty must be a finite number >= 0"),
    ("uncertainty_penalty", float("nan"), "uncertainty_penalty must be a finite number >= 0"),
    ("uncertainty_penalty", "high", "uncertainty_penalty must be a finite number >= 0"),
    ("halt_uncertainty", 0.0, "halt_uncertainty must be > 0"),
])
def test_every_error_names_its_field(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LearnedEnvConfig(**({"world": "push"} | {field: value}))


def test_fields_that_exclude_each_other():
    with pytest.raises(ValueError, match="camera= .* or cameras="):
        LearnedEnvConfig(world="push", camera="random", cameras=["default"])
    with pytest.raises(ValueError, match="ensemble='sample'"):
        LearnedEnvConfig(world="push", cameras=["default"], ensemble="sample")


def test_constructors_take_the_config(tiny_world_model):
    for cls in (WorldModelEnv, WorldModelVectorEnv, LearnedEnv, LearnedVectorEnv, BatchedLearnedCore):
        params = list(inspect.signature(cls).parameters)
        assert params[0] == "config" and len(params) <= 6, (cls, params)
    env = WorldModelEnv(LearnedEnvConfig(world="push", model=tiny_world_model[0], obs_mode="state"))
    assert env.config.obs_mode == "state" and env.observation_space.shape == (12,)
    with pytest.raises(InputError, match="uncertainty_penalty=1.0 is applied by the UncertaintyPenalty wrapper"):
        WorldModelEnv(LearnedEnvConfig(world="push", model=tiny_world_model[0], uncertainty_penalty=1.0))
    with pytest.raises(InputError, match="HaltOnUncertainty"):
        WorldModelVectorEnv(LearnedEnvConfig(world="push", model=tiny_world_model[0], halt_uncertainty=1.0))
    with pytest.raises(UnknownKeywordError, match="env='Reacher-v5' applies to cosmos_sim/Learned-v0 only"):
        WorldModelEnv(LearnedEnvConfig(world="push", model=tiny_world_model[0], env="Reacher-v5"))
    with pytest.raises(UnknownKeywordError, match="camera does not apply to cosmos_sim/Learned-v0"):
        LearnedEnv(LearnedEnvConfig(model=tiny_world_model[0], camera="random"))
    shaped = LearnedEnvConfig(world="push", model=tiny_world_model[0], obs_mode="state", uncertainty_penalty=1.0)
    single, vector = make_learned(shaped), make_learned(shaped, num_envs=2)  # the env inside its wrappers
    assert isinstance(single, UncertaintyPenalty) and isinstance(single.unwrapped, WorldModelEnv)
    assert isinstance(vector, VectorUncertaintyPenalty) and vector.num_envs == 2


def test_gym_make_builds_the_config_and_refuses_unknown_keywords(ens, tau):
    with pytest.raises(UnknownKeywordError, match="cosmos_sim/Push-v0 takes no keyword 'halt_uncertainity'"):
        gym.make(ID, backend="world_model", model=ens, halt_uncertainity=0.1)
    with pytest.raises(TypeError, match="'sampling_steps'"):
        gym.make_vec(ID, num_envs=2, backend="world_model", model=ens, sampling_steps=4)
    with pytest.raises(UnknownKeywordError, match="cosmos_sim/Learned-v0 takes no world="):
        gym.make("cosmos_sim/Learned-v0", model=ens, world="push")
    env = gym.make(ID, backend="world_model", model=ens, obs_mode="state", uncertainty_penalty=LAM,
                   halt_uncertainty=tau)
    assert isinstance(env.unwrapped, WorldModelEnv) and env.unwrapped.config.time_limit is False
    assert env.unwrapped.config.model is ens and not env.unwrapped.config.shaped
    plain = gym.make_vec(ID, num_envs=2, backend="world_model", model=ens, uncertainty_penalty=0.0)
    assert isinstance(plain, WorldModelVectorEnv)  # a zero penalty needs no wrapper
    envs = gym.make_vec(ID, num_envs=2, backend="world_model", model=ens, obs_mode="state", array_type="torch",
                        uncertainty_penalty=LAM, halt_uncertainty=tau)
    assert isinstance(envs, VectorUncertaintyPenalty) and isinstance(envs.env, VectorHaltOnUncertainty)
    assert envs.array_type == "torch" and envs.model is ens  # the env's attributes, through the wrappers
    assert isinstance(UncertaintyPenalty(envs.unwrapped, 1.0), VectorUncertaintyPenalty)  # one name, both kinds
    physics = UncertaintyPenalty(gym.make(ID, obs_mode="state"), 1.0)  # reports no uncertainty
    physics.reset(seed=0)
    with pytest.raises(InputError, match=r"UncertaintyPenalty needs info\['uncertainty'\]"):
        physics.step(np.zeros(2, F32))


# --- shaping: the wrapper's output is the unshaped env's, transformed by the formula ----------------------
def _as_np(x):
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def test_single_env_penalty_and_halting_follow_the_formula(ens, tau):
    kw = dict(backend="world_model", model=ens, obs_mode="state")
    plain = gym.make(ID, **kw)
    shaped = gym.make(ID, uncertainty_penalty=LAM, halt_uncertainty=tau, **kw)
    rng = np.random.default_rng(1)
    o_p, _ = plain.reset(seed=7)
    o_s, _ = shaped.reset(seed=7)
    halts = 0
    for _ in range(60):
        a = rng.uniform(-1, 1, 2).astype(F32)
        o_p, r_p, te_p, tr_p, i_p = plain.step(a)
        o_s, r_s, te_s, tr_s, i_s = shaped.step(a)
        u = i_p["uncertainty"]
        halted = bool(F32(u) > F32(tau)) and not te_p
        assert np.array_equal(o_s, o_p) and i_s["uncertainty"] == u and te_s == te_p
        assert r_s == float(F32(r_p) - F32(LAM) * F32(u))  # exactly, in the env's float32
        assert tr_s == (tr_p or halted) and i_s["halted"] is halted
        halts += halted
        if te_s or tr_s:
            plain.reset()
            shaped.reset()
    assert halts > 0


def _lockstep(plain, shaped, steps, rng, expected_final=False):
    """Step both vector envs alike; the plain one starts halted envs over as the autoreset mode says, so the
    two stay identical. Checks every output against the formula; returns how many envs halted."""
    mode = plain.metadata["autoreset_mode"]
    N, torch_out = plain.num_envs, plain.array_type == "torch"
    pending, halts = np.zeros(N, bool), 0
    for _ in range(steps):
        a = rng.uniform(-1, 1, (N, 2)).astype(F32)
        a = torch.as_tensor(a) if torch_out else a
        o_p, r_p, te_p, tr_p, i_p = (_as_np(x) if not isinstance(x, dict) else x for x in plain.step(a))
        o_s, r_s, te_s, tr_s, i_s = (_as_np(x) if not isinstance(x, dict) else x for x in shaped.step(a))
        if mode == gym.vector.AutoresetMode.NEXT_STEP and pending.any():  # halted envs start over now
            o_p, i_p = plain.reset(options={"reset_mask": pending})
            o_p = _as_np(o_p)
            r_p, te_p, tr_p = np.where(pending, 0, r_p).astype(r_p.dtype), te_p & ~pending, tr_p & ~pending
        finals = _as_np(i_p["_final_info"]) if "_final_info" in i_p else np.zeros(N, bool)
        u = np.array([_as_np(i_p["final_info"][i]["uncertainty"]) if finals[i] else _as_np(i_p["uncertainty"])[i]
                      for i in range(N)], F32)
        halted = (u > F32(shaped.env.threshold)) & ~te_p
        new = halted & ~(te_p | tr_p)
        if mode == gym.vector.AutoresetMode.SAME_STEP and new.any():  # they start over within the step
            final_p = o_p.copy()
            o_p, i_p = plain.reset(options={"reset_mask": new})
            o_p = _as_np(o_p)
            for i in np.flatnonzero(new):
                assert np.array_equal(_as_np(i_s["final_obs"][i]), final_p[i])
                assert bool(i_s["final_info"][i]["halted"])
        assert r_s.dtype == r_p.dtype and np.array_equal(r_s, r_p - F32(LAM) * u)
        assert np.array_equal(te_s, te_p) and np.array_equal(tr_s, tr_p | halted)
        assert np.array_equal(o_s, o_p) and np.array_equal(_as_np(i_s["uncertainty"]), _as_np(i_p["uncertainty"]))
        if mode != gym.vector.AutoresetMode.SAME_STEP:
            assert np.array_equal(_as_np(i_s["halted"]), halted)
        else:
            assert not _as_np(i_s["halted"]).any()
            assert np.array_equal(i_s.get("_final_info", np.zeros(N, bool)), finals | new)
        pending, halts = new, halts + int(halted.sum())
    return halts


@pytest.mark.parametrize("autoreset_mode, array_type", [("next_step", "numpy"), ("next_step", "torch"),
                                                        ("same_step", "numpy"), ("same_step", "torch")])
def test_vector_shaping_follows_the_formula(ens, tau, autoreset_mode, array_type):
    kw = dict(num_envs=6, backend="world_model", model=ens, obs_mode="state", max_episode_steps=9,
              autoreset_mode=autoreset_mode, array_type=array_type)
    plain = gym.make_vec(ID, **kw)
    shaped = gym.make_vec(ID, uncertainty_penalty=LAM, halt_uncertainty=tau, **kw)
    assert shaped.metadata["autoreset_mode"] == plain.metadata["autoreset_mode"]
    np.testing.assert_array_equal(_as_np(plain.reset(seed=3)[0]), _as_np(shaped.reset(seed=3)[0]))
    assert _lockstep(plain, shaped, 40, np.random.default_rng(4)) > 0


def test_halting_with_autoreset_disabled_refuses_the_halted_env(ens, tau):
    envs = gym.make_vec(ID, num_envs=4, backend="world_model", model=ens, obs_mode="state",
                        autoreset_mode="disabled", halt_uncertainty=tau / 100)
    envs.reset(seed=0)
    *_, trunc, info = envs.step(np.full((4, 2), 0.5, F32))
    assert trunc.all() and info["halted"].all()
    with pytest.raises(EpisodeOverError, match=r"envs \[0, 1, 2, 3\] have finished"):
        envs.step(np.zeros((4, 2), F32))
    _, info = envs.reset(options={"reset_mask": np.array([True, True, False, False])})
    assert info["halted"].tolist() == [False, False, True, True]
    with pytest.raises(EpisodeOverError, match=r"envs \[2, 3\]"):
        envs.step(np.zeros((4, 2), F32))


class Opaque(VectorWrapper):
    """A wrapper that hides the learned env's add_truncation: halting then works from outside."""


@pytest.mark.parametrize("autoreset_mode", ["next_step", "same_step", "disabled"])
def test_wrappers_by_hand_around_any_vector_env(ens, tau, autoreset_mode):
    """Around an env that cannot take a truncation rule the wrapper starts halted envs over itself; with
    state-only rollouts (no frames to encode) the outputs are those of the joined halting, bit for bit."""
    kw = dict(num_envs=5, backend="world_model", model=ens, obs_mode="state", max_episode_steps=7,
              autoreset_mode=autoreset_mode)
    joined = gym.make_vec(ID, uncertainty_penalty=LAM, halt_uncertainty=tau, **kw)
    outside = UncertaintyPenalty(HaltOnUncertainty(Opaque(gym.make_vec(ID, **kw)), tau), LAM)
    assert joined.env.joined and not outside.env.joined
    rng = np.random.default_rng(5)
    a_out, b_out = joined.reset(seed=1), outside.reset(seed=1)
    refusals = 0
    for _ in range(30):
        a = rng.uniform(-1, 1, (5, 2)).astype(F32)
        try:
            a_out = joined.step(a)
        except EpisodeOverError as e:  # disabled: both refuse the same envs, and start them over alike
            with pytest.raises(EpisodeOverError) as refused:
                outside.step(a)
            assert str(refused.value) == str(e)
            refusals += 1
            done = a_out[2] | a_out[3]
            a_out = joined.reset(options={"reset_mask": done})
            b_out = outside.reset(options={"reset_mask": done})
        else:
            b_out = outside.step(a)
        for x, y in zip(a_out, b_out, strict=True):
            if isinstance(x, dict):
                assert x.keys() == y.keys()
                for k in x:
                    if k.startswith("final") or k.startswith("_final"):
                        assert [None if v is None else str(v) for v in x[k]] == \
                            [None if v is None else str(v) for v in y[k]]
                    else:
                        np.testing.assert_array_equal(x[k], y[k])
            else:
                np.testing.assert_array_equal(x, y)
    assert refusals > 0 or autoreset_mode != "disabled"


def test_halt_at_the_held_out_disagreement_the_model_stores(ens, tau):
    """halt_uncertainty="data" halts where the state ensemble disagrees more than it did on held-out data (the
    threshold stored with the model at training, info["trust"]); a model without it, or one member, is refused."""
    from cosmos_sim.errors import ConfigMismatchError

    calibrated = ens.with_state_head(ens.state_head)
    calibrated.info = dict(ens.info) | {"trust": {"quantile": 0.99, "thresholds": {"state": tau}}}
    envs = gym.make_vec(ID, num_envs=2, backend="world_model", model=calibrated, obs_mode="state",
                        halt_uncertainty="data")
    assert isinstance(envs, VectorHaltOnUncertainty) and envs.threshold == pytest.approx(tau)
    assert LearnedEnvConfig(world="push", halt_uncertainty="data").halt_uncertainty == "data"
    uncalibrated = ens.with_state_head(ens.state_head)
    uncalibrated.info = {k: v for k, v in ens.info.items() if k != "trust"}
    with pytest.raises(ConfigMismatchError, match="halt_uncertainty='data' reads the held-out disagreement"):
        gym.make(ID, backend="world_model", model=uncalibrated, halt_uncertainty="data")
    with pytest.raises(ValueError, match="halt_uncertainty must be > 0, 'data'"):
        LearnedEnvConfig(world="push", halt_uncertainty="held-out")
