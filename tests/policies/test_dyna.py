"""The Dyna loop: rounds of real steps, a refit ensemble state model and PPO in imagination; a log, a plot,
resumption after a kill, and the CLI's checks."""

import json

import numpy as np
import pytest

from cosmos_sim.errors import ConfigMismatchError
from cosmos_sim.policies import dyna
from cosmos_sim.policies.dyna import DynaConfig, RecordedStates, run_dyna

TINY = dict(world="push", rounds=2, real_steps=150, imagined_steps=1024, num_envs=8, state_steps=20,
            eval_episodes=2, halt_uncertainty="data", branch=True)


@pytest.mark.slow  # trains
def test_two_rounds_run_log_plot_and_resume_after_a_kill(tiny_world_model, tmp_path, monkeypatch):
    run, _ = tiny_world_model
    cfg = DynaConfig(**TINY)
    # an uninterrupted run, for reference
    ref = run_dyna(cfg, run, tmp_path / "ref", device="cpu", progress=False, log=lambda m: None)
    assert [r["round"] for r in ref["rounds"]] == [0, 1]
    assert (tmp_path / "ref" / "dyna.png").stat().st_size > 1000
    assert (tmp_path / "ref" / "policy.safetensors").is_file()
    log = json.loads((tmp_path / "ref" / "dyna_log.json").read_text())
    r0, r1 = log["rounds"]
    assert r0["collected_by"] == "mix" and r1["collected_by"].startswith("ppo")
    assert r1["real_steps_total"] == r0["real_steps"] + r1["real_steps"] >= 2 * TINY["real_steps"]
    assert r1["imagined_steps_total"] == 2 * r0["imagined_steps"]
    for r in (r0, r1):
        assert set(r) >= {"mujoco", "world_model", "exploitation_gap", "seconds", "data_disagreement"}
        assert 0 < r["data_disagreement"]["median"] <= r["data_disagreement"]["max"] == r["halt_uncertainty"]
        assert r["exploitation_gap"]["mean"] == pytest.approx(
            100 * (r["world_model"]["success_rate"]["mean"] - r["mujoco"]["success_rate"]["mean"]))

    # killed during round 1's evaluation; the re-run collects round 0 once and ends where the reference did
    calls = {"collect": 0}
    real_collect = dyna.collect_real

    def counting_collect(*a, **k):
        calls["collect"] += 1
        return real_collect(*a, **k)

    real_eval = dyna._evaluate

    def killed(config, model, path, device):
        if path.parent.name == "round_1":
            raise KeyboardInterrupt
        return real_eval(config, model, path, device)

    monkeypatch.setattr(dyna, "collect_real", counting_collect)
    monkeypatch.setattr(dyna, "_evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        run_dyna(cfg, run, tmp_path / "run", device="cpu", progress=False, log=lambda m: None)
    assert len(json.loads((tmp_path / "run" / "dyna_log.json").read_text())["rounds"]) == 1
    monkeypatch.setattr(dyna, "_evaluate", real_eval)
    calls["collect"] = 0
    out = run_dyna(cfg, run, tmp_path / "run", device="cpu", progress=False, log=lambda m: None)
    assert calls["collect"] == 1  # round 1 only: round 0's real steps were kept, not collected again
    assert len(out["rounds"]) == 2
    for a, b in zip(out["rounds"], ref["rounds"], strict=True):
        assert a["real_steps_total"] == b["real_steps_total"]
        assert a["mujoco"]["return"]["mean"] == pytest.approx(b["mujoco"]["return"]["mean"], abs=1e-4)
    # another config in the same directory is refused
    with pytest.raises(ConfigMismatchError, match="another config"):
        run_dyna(DynaConfig(**{**TINY, "real_steps": 300}), run, tmp_path / "run", device="cpu", progress=False)


def test_real_steps_keep_episode_boundaries_and_branch_starts_come_from_them():
    from cosmos_sim.policies.registry import make_policy
    from cosmos_sim.worlds import get_world

    real = dyna.collect_real("push", make_policy("random", "push", seed=0), 150, seed=7)
    E = len(real["offsets"]) - 1
    assert E == 2 and len(real["actions"]) == real["offsets"][-1] == 200  # whole 100-step episodes
    assert len(real["states"]) == len(real["actions"]) + E
    from cosmos_sim.dynamics.train import step_frames
    from cosmos_sim.world_model import WorldModel
    from cosmos_sim.zoo import pretrained_path

    cache = dyna.real_cache([real, real], WorldModel.load(pretrained_path("push")))
    steps = step_frames(cache, list(range(2 * E)))  # the states an action follows, two rounds in a row
    assert len(steps) == 2 * len(real["actions"]) and len(cache["states"]) == 2 * len(real["states"])
    last = cache["frame_offsets"][1:] - 1  # each episode's final state is followed by no action
    assert not set(steps.tolist()) & set(last.tolist())
    src = RecordedStates(real["states"], get_world("push"), 16)
    rng = np.random.default_rng(0)
    picks = np.stack([src.sample(rng, None)[1] for _ in range(50)])
    assert all(any(np.array_equal(p, s) for s in real["states"]) for p in picks)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="uncertainty_penalty"):
        DynaConfig(uncertainty_penalty=-1.0)
    with pytest.raises(ValueError, match="halt_uncertainty"):
        DynaConfig(halt_uncertainty=0.0)
    with pytest.raises(ValueError, match="halt_uncertainty"):
        DynaConfig(halt_uncertainty="max")
    assert DynaConfig(halt_uncertainty="data").halt_uncertainty == "data"
    with pytest.raises(ValueError, match="rounds"):
        DynaConfig(rounds=0)


def test_cli_refuses_dyna_rounds_with_a_physics_backend(capsys, tmp_path):
    from cosmos_sim.cli import main

    rc = main(["train-policy", "--algo", "ppo", "--backend", "mujoco", "--dyna-rounds", "2", "--out",
               str(tmp_path / "p")])
    assert rc == 1
    assert "--dyna-rounds" in capsys.readouterr().err


def test_a_reset_source_object_serves_state_only_envs(tiny_world_model):
    import gymnasium as gym

    import cosmos_sim  # noqa: F401
    from cosmos_sim.world_model import WorldModel
    from cosmos_sim.worlds import get_world

    model = WorldModel.load(tiny_world_model[0])
    states = np.random.default_rng(0).uniform(-0.2, 0.2, (3, get_world("push").state_dim)).astype(np.float32)
    src = RecordedStates(states, get_world("push"), model.image_size)
    env = gym.make_vec("cosmos_sim/Push-v0", num_envs=4, backend="world_model", model=model, obs_mode="state",
                       reset_source=src, max_episode_steps=5)
    obs, _ = env.reset(seed=0)
    assert all(any(np.allclose(o, s) for s in states) for o in obs)
    env.close()
    with pytest.raises(ValueError, match="obs_mode='state'"):
        gym.make_vec("cosmos_sim/Push-v0", num_envs=2, backend="world_model", model=model, obs_mode="both",
                     reset_source=src)
