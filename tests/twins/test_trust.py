"""Per-step trust from every ensemble part (cosmos_sim.trust): calibrated at training, reported by the learned envs,
counted per policy by closed-loop evaluation, a section of `compare --env` and `compare --world`. Nothing here
trains: the point-mass twin asset carries its calibration; the Push asset is calibrated in the test."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from cosmos_sim.errors import InputError
from cosmos_sim.evaluation.closed_loop import evaluate_policies
from cosmos_sim.trust import FLAG_SHARE, calibrate_trust, policy_trust, trust_score

from margins import above, below
from twins import pointmass

ID = "cosmos_test/PointMass-v0"
WORLD = f"env:{ID}"
OFF = "twins.pointmass:full_throttle"


@pytest.fixture(autouse=True)
def _registered():
    pointmass.register()


@pytest.fixture(scope="module")
def twin_model():
    from cosmos_sim.world_model import WorldModel

    from assets.build import POINTMASS_TWIN

    pointmass.register()
    return WorldModel.load(POINTMASS_TWIN)


def test_the_twin_is_calibrated_on_every_ensemble_part(twin_model):
    t = twin_model.trust
    assert t["quantile"] == 0.99 and t["held_out_steps"] > 0
    assert set(t["thresholds"]) == {"state", "reward", "termination", "success"}
    assert twin_model.task_head.members > 1 and twin_model.state_head.members > 1


def test_a_policy_driven_off_the_data_is_flagged_and_one_on_it_is_not(twin_model):
    res = evaluate_policies(WORLD, "world_model", ["random", OFF], episodes=12, model=twin_model)
    on, off = res["random"]["trust"], res[OFF]["trust"]
    below("random policy's off-data share (on the data)", on["off_data_share"], FLAG_SHARE)
    above("full-throttle policy's off-data share (off the data)", off["off_data_share"], FLAG_SHARE)
    assert not on["flagged"] and off["flagged"]
    # physics backends count nothing
    assert "trust" not in evaluate_policies(WORLD, "env", ["random"], episodes=2)["random"]


def test_learned_envs_report_trust_per_step(twin_model):
    env = gym.make("cosmos_sim/Learned-v0", model=twin_model, env=ID)
    _, info = env.reset(seed=0)
    assert info["trust_score"] == 0.0 and info["off_data"] is False
    scores = []
    for _ in range(10):
        _, _, term, trunc, info = env.step(np.array([2.0, 2.0], np.float32))
        scores.append(info["trust_score"])
        assert info["off_data"] == (info["trust_score"] > 1)
        if term or trunc:
            break
    env.close()
    assert max(scores) > 1  # full throttle leaves the data within a few steps
    vec = gym.make_vec("cosmos_sim/Learned-v0", num_envs=3, model=twin_model, env=ID)
    vec.reset(seed=[0, 1, 2])
    _, _, _, _, info = vec.step(np.zeros((3, 2), np.float32))
    assert info["trust_score"].shape == (3,) and info["off_data"].dtype == bool
    vec.close()


def test_each_member_rolls_out_its_own_world(twin_model):
    """ensemble="member": rollout b steps with member b mod K throughout; closed-loop trust gets each member's
    return for the same seeds (the members' return disagreement)."""
    K = twin_model.state_head.members
    s0 = torch.zeros(2 * K, twin_model.state_dim)
    a = torch.linspace(-1, 1, 2 * K * 2).reshape(2 * K, 2)
    r = twin_model.start_states(s0)
    _, nxt = twin_model.step(r, a, latents=False, ensemble="member")
    m = twin_model.state_head.forward_members(twin_model.normalize_state(s0), a)  # [K, 2K, S]
    want = twin_model.denormalize_state(m[torch.arange(2 * K) % K, torch.arange(2 * K)])
    torch.testing.assert_close(nxt, want)
    t = evaluate_policies(WORLD, "world_model", ["random"], episodes=4, model=twin_model)["random"]["trust"]
    assert len(t["member_returns"]) == K and t["member_return_std"] >= 0
    assert t["member_return_std"] == pytest.approx(float(np.std(t["member_returns"], ddof=1)), rel=1e-6)


def test_trust_score_is_the_largest_ratio_and_policy_trust_counts_steps():
    cal = {"thresholds": {"state": 0.1, "reward": 2.0}}
    s = trust_score(cal, {"state": torch.tensor([0.05, 0.3]), "reward": torch.tensor([3.0, 1.0])})
    assert torch.allclose(s, torch.tensor([1.5, 3.0]))
    assert trust_score(cal, {"termination": torch.ones(2)}) is None
    t = policy_trust([0, 5, 0], [10, 10, 20])
    assert t["off_data_share"] == pytest.approx(5 / 40) and t["episodes_off_data"] == pytest.approx(1 / 3)
    assert t["flagged"] == (FLAG_SHARE < 5 / 40)


def test_compare_env_reports_trust_and_episode_lengths(twin_model, tmp_path):
    from cosmos_sim.evaluation.compare_env import EnvCompareConfig, compare_env

    path = twin_model.save(tmp_path / "twin.safetensors")
    cfg = EnvCompareConfig(env=ID, policies=("random", "twins.pointmass:to_goal", OFF), episodes=6,
                           open_loop_episodes=1, horizon=4, videos=0, device="cpu")
    r = compare_env(cfg, path, tmp_path / "report", progress=False)
    tr = r["trust"]
    assert tr["available"] and tr["flagged"] == [OFF] and tr["trusted_policies"] == 2
    assert tr["ranking_all"]["n"] == 3 and tr["ranking_trusted"]["n"] == 2
    rows = {row["policy"]: row for row in r["ranking"]["rows"]}
    goal = rows["twins.pointmass:to_goal"]
    assert goal["env_length"] < 40 and 0 <= goal["learned_ends_earlier"] <= 1 and goal["length_abs_error"] >= 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Trust" in text and "| **yes** |" in text and "twin ends earlier %" in text
    assert "Termination: n/a (no termination in the held-out evaluation steps" in text  # its data never ends one
    from cosmos_sim.evaluation.compare_env import summary_lines

    line = summary_lines(r, tmp_path / "report")[-2]  # what the CLI prints
    assert line.startswith("trust: flagged") and OFF in line and "over the 2 trusted" in line


def test_a_model_without_an_ensemble_says_trust_is_na():
    from types import SimpleNamespace

    from cosmos_sim.evaluation.report import Trust

    section = Trust("env", "return")
    one = SimpleNamespace(trust=None, info={}, state_head=SimpleNamespace(members=1), task_head=None)
    ctx = SimpleNamespace(model=one, report={"closed_loop": {"env": {}, "world_model": {}}})
    assert section.applies(ctx)
    r = section.run(ctx)
    assert r["available"] is False and "--state-members" in r["why"]
    assert "n/a: the model has no ensemble part" in section.markdown(r, {})
    five = SimpleNamespace(trust=None, info={}, state_head=SimpleNamespace(members=5), task_head=None)
    assert "trained before trust calibration" in section.run(SimpleNamespace(model=five, report=ctx.report))["why"]


def test_compare_world_has_a_trust_section(tiny_world_model, tmp_path):
    from cosmos_sim.data.dataset import EpisodeDataset
    from cosmos_sim.evaluation.compare import CompareConfig, compare
    from cosmos_sim.world_model import WorldModel

    run, data = tiny_world_model
    wm = WorldModel.load(run)
    ds = EpisodeDataset(data)
    episodes = []
    for i in range(len(ds)):
        reader, e = ds.locate(i)
        small = reader.small_arrays(e)
        episodes.append((torch.tensor(small["states"]), torch.tensor(small["actions"])))
    wm.info["trust"] = calibrate_trust(wm, episodes)
    assert set(wm.trust["thresholds"]) == {"state"}  # Push's task is code: only the state model is learned
    # one part: the held-out steps off the data are those above its own quantile (1 - quantile of them, give or
    # take the one step the interpolated quantile falls beside)
    assert 0.0 <= wm.trust["held_out_share"] <= 1 - wm.trust["quantile"] + 1 / wm.trust["held_out_steps"]
    cfg = CompareConfig(world="push", policies=("random", "scripted:1"), backends=("mujoco", "world_model"),
                        episodes=2, open_loop_episodes=1, horizon=3, videos=0)
    rep = compare(cfg, wm, tmp_path, progress=False)
    assert rep["trust"]["available"] and rep["trust"]["metric"] == "success"
    assert {r["policy"] for r in rep["trust"]["rows"]} == {"random", "scripted:1"}
    assert "## Trust" in (tmp_path / "report.md").read_text()
    assert "held-out episodes spend" in (tmp_path / "report.md").read_text()


def test_compare_env_measures_the_object_a_policy_moves(twin_model, tmp_path, capsys):
    """The point's position stands in for an object (Meta-World's puck, PushT's T): its displacement after 5 and
    20 steps of a policy, in the env and in the twin."""
    from cosmos_sim.cli import main
    from cosmos_sim.evaluation.compare_env import EnvCompareConfig, compare_env

    path = twin_model.save(tmp_path / "twin.safetensors")
    cfg = EnvCompareConfig(env=ID, policies=("random",), episodes=2, open_loop_episodes=3, horizon=2, videos=0,
                           device="cpu", object_entries="0:2", displacement_steps=(5, 20),
                           displacement_policy="twins.pointmass:to_goal")
    od = compare_env(cfg, path, tmp_path / "r", progress=False)["object_displacement"]
    assert od["entries"] == [0, 1] and [r["step"] for r in od["rows"]] == [5, 20]
    for r in od["rows"]:
        assert r["env_displacement"] > 0.05 and r["displacement_error"] >= 0 and r["position_error"] >= 0
    assert "## Object displacement" in (tmp_path / "r" / "report.md").read_text()
    with pytest.raises(InputError, match="4:7 or 4,5,6"):
        EnvCompareConfig(env=ID, object_entries="a-b")
    with pytest.raises(InputError, match="4-d state"):
        compare_env(EnvCompareConfig(env=ID, object_entries="3:9", episodes=1, open_loop_episodes=1, horizon=2,
                                     videos=0, device="cpu"), path, tmp_path / "bad", progress=False)
    # the CLI flag goes with --env only
    assert main(["compare", "--world", "push", "--object-entries", "0:2", "--out", str(tmp_path / "w")]) == 1
    assert "goes with --env" in capsys.readouterr().err
