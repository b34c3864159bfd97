"""Ensemble state models: members trained on bootstrapped batches disagree off the data, and the learned
env turns their disagreement into info["uncertainty"], a reward penalty (MOPO) and halting (MOReL)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import cosmos_sim  # noqa: F401  (registers the ids)
from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.world_model import StateHead, WorldModel

from dynamics.toy_states import pusher_block, pusher_start, toy_cache
from margins import above, below


def toy_windows():
    """The pusher-block system with x0 kept in [-1, 1.5]: states stay in [-1, 1.5] x [-0.5, 1.5]."""
    from cosmos_sim.dynamics.train import state_windows

    cache = toy_cache(pusher_start, lambda s, a: pusher_block(s, a, x_max=1.5), 60, 12, seed=1)
    return state_windows(cache, list(range(60)), horizon=4)


@pytest.mark.slow  # trains
def test_members_differ_and_disagree_more_off_the_data():
    from cosmos_sim.dynamics.train import fit_state_model

    w = toy_windows()
    torch.manual_seed(0)
    head = StateHead(4, 2, 2, 2, width=4, hidden=64, members=5)
    head.delta_scale.fill_(0.3)
    fit_state_model(head, w, steps=600, batch_size=64, lr=3e-3, progress=False)
    with torch.no_grad():
        on = head.forward_members(w["start"], w["actions"][:, 0])  # [K, B, S]
        off_start = torch.tensor([[6.0, -5.0], [-6.0, 5.0], [8.0, 8.0]]).repeat(50, 1)
        off = head.forward_members(off_start, torch.ones(150, 2))
        mean_err = ((head(w["start"], w["actions"][:, 0]) - w["next"][:, 0]) ** 2).mean()
    assert not torch.allclose(head.ensemble.weights[0][0], head.ensemble.weights[0][1])
    assert on.std(0).mean() > 0  # members differ
    above("disagreement off / on the data", off.std(0).mean() / on.std(0).mean(), 5)  # far more with no data
    below("mean's error", mean_err, 0.01)  # the mean still fits the data


def test_ensemble_save_load_and_single_member_files(tiny_world_model, tmp_path):
    from cosmos_sim.zoo import pretrained_path

    assert WorldModel.load(tiny_world_model[0]).state_head.members == 5  # new MLP state models: five members
    m = WorldModel.load(pretrained_path("push"))  # one member, saved as before ensembles existed
    assert m.state_head.members == 1 and "members" not in m.state_head.config
    ens = with_ensemble(m)
    path = ens.save(tmp_path / "ens.safetensors")
    back = WorldModel.load(path)
    assert back.state_head.members == 3
    x, a = torch.randn(4, m.state_dim), torch.randn(4, m.action_dim)
    assert torch.allclose(back.state_head.forward_members(x, a), ens.state_head.forward_members(x, a))
    with pytest.raises(ValueError, match="members must be >= 1"):
        StateHead(4, 2, 2, 2, members=0)


def with_ensemble(model: WorldModel, members: int = 3) -> WorldModel:
    """The model with a 3-member state model whose members differ (random last layers)."""
    c = model.state_head.config
    head = StateHead(c["latent_channels"], c["latent_size"], c["state_dim"], c["action_dim"], width=c["width"],
                     hidden=c["hidden"], members=members)
    head.trunk.load_state_dict(model.state_head.trunk.state_dict())
    head.out.load_state_dict(model.state_head.out.state_dict())
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        head.ensemble.weights[-1].copy_(0.05 * torch.randn(head.ensemble.weights[-1].shape, generator=g))
    return model.with_state_head(head)


def rollout(env, steps=4, seed=0):
    obs, info = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(np.full(env.action_space.shape, 0.5, np.float32))
        out.append((r, info["uncertainty"], trunc, info["halted"], obs["state"] if isinstance(obs, dict) else obs))
    return out


def test_uncertainty_penalty_halting_and_sampling(tiny_world_model):
    ens = with_ensemble(WorldModel.load(tiny_world_model[0]))
    plain = rollout(gym.make("cosmos_sim/Push-v0", backend="world_model", model=ens, obs_mode="state"))
    lam = 2.5
    pen = rollout(gym.make("cosmos_sim/Push-v0", backend="world_model", model=ens, obs_mode="state",
                           uncertainty_penalty=lam))
    for (r0, u0, *_), (r1, u1, *_) in zip(plain, pen, strict=True):
        assert u0 == u1 > 0 and r1 == pytest.approx(r0 - lam * u1, abs=1e-5)  # exactly lambda x uncertainty
    assert not any(p[3] for p in plain)
    tau = plain[0][1] / 2  # below the first step's disagreement: halts at once
    halted = rollout(gym.make("cosmos_sim/Push-v0", backend="world_model", model=ens, obs_mode="state",
                              halt_uncertainty=tau), steps=1)
    assert halted[0][2] and halted[0][3]
    vec = gym.make_vec("cosmos_sim/Push-v0", num_envs=4, backend="world_model", model=ens, obs_mode="state",
                       halt_uncertainty=1e9, ensemble="sample")
    vec.reset(seed=0)
    _, _, _, trunc, infos = vec.step(np.zeros((4, 2), np.float32))
    assert infos["uncertainty"].shape == (4,) and not infos["halted"].any() and not trunc.any()
    vec.close()
    a = rollout(gym.make("cosmos_sim/Push-v0", backend="world_model", model=ens, obs_mode="state", ensemble="sample"))
    b = rollout(gym.make("cosmos_sim/Push-v0", backend="world_model", model=ens, obs_mode="state", ensemble="sample"))
    assert all(np.array_equal(x[4], y[4]) for x, y in zip(a, b, strict=True))  # same seed => same states
    assert not np.array_equal(a[-1][4], plain[-1][4])  # a drawn member is not the members' mean


def test_bad_ensemble_settings(tiny_world_model):
    run = tiny_world_model[0]
    for kw, err, match in (({"uncertainty_penalty": -1.0}, ValueError, "uncertainty_penalty must be"),
                           ({"uncertainty_penalty": float("nan")}, ValueError, "uncertainty_penalty must be"),
                           ({"halt_uncertainty": 0.0}, ValueError, "halt_uncertainty must be > 0"),
                           ({"ensemble": "median"}, UnknownChoiceError, "unknown ensemble 'median'")):
        with pytest.raises(err, match=match):
            gym.make("cosmos_sim/Push-v0", backend="world_model", model=run, **kw)


@pytest.mark.slow  # trains a tiny world model
def test_train_dynamics_with_an_ensemble_state_model(tiny_world_model, tiny_tokenizer, tmp_path):
    from cosmos_sim.cli import main

    _, data = tiny_world_model
    assert main(["train", "dynamics", "--data", str(data), "--tokenizer", str(tiny_tokenizer), "--out",
                 str(tmp_path / "dyn"), "--preset", "tiny", "--steps", "4", "--batch-size", "4", "--warmup-steps",
                 "1", "--state-steps", "20", "--state-members", "3"]) == 0
    m = WorldModel.load(tmp_path / "dyn")
    assert m.state_head.members == 3
    env = gym.make("cosmos_sim/Push-v0", backend="world_model", model=m)
    env.reset(seed=0)
    assert env.step(np.zeros(2, np.float32))[4]["uncertainty"] > 0


def test_shaping_a_one_member_model_raises_and_says_how_to_get_an_ensemble():
    """The shipped models have one state-model member: a penalty, a halting threshold or stepping with one member
    at a time would silently do nothing."""
    from cosmos_sim.errors import ConfigMismatchError
    from cosmos_sim.shipped import pretrained_path
    from cosmos_sim.worlds import get_world

    assert WorldModel.load(pretrained_path(get_world("push"))).state_head.members == 1
    for kw in ({"halt_uncertainty": 1e-6}, {"uncertainty_penalty": 1.0}, {"ensemble": "sample"},
               {"ensemble": "member"}):
        with pytest.raises(ConfigMismatchError, match="--state-members"):
            gym.make("cosmos_sim/Push-v0", backend="world_model", obs_mode="state", **kw)
        with pytest.raises(ConfigMismatchError, match="one member"):
            gym.make_vec("cosmos_sim/Push-v0", num_envs=2, backend="world_model", obs_mode="state", **kw)
