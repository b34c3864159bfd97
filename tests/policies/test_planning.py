"""Planners: the optimizers find known optima; the world-model planner is a deterministic Policy."""

import numpy as np
import pytest
import torch

from cosmos_sim.policies.planning import Planner, PlannerConfig, cem, mppi

pytestmark = pytest.mark.slow  # plans in the trained tiny world model


@pytest.mark.parametrize("optimizer,method", [(cem, "cem"), (mppi, "mppi")])
def test_optimizer_finds_quadratic_optimum(optimizer, method):
    target = torch.tensor([[0.3, -0.6], [0.1, 0.8], [-0.5, 0.0]])  # [H, A]

    def score(a):  # [B, P, H, A] -> [B, P]
        return -((a - target) ** 2).sum((-1, -2))

    cfg = PlannerConfig(method=method, horizon=3, population=128, iterations=12, elites=16, init_std=0.8,
                        smoothing=0.0)
    g = torch.Generator().manual_seed(0)
    best, R = optimizer(score, torch.zeros(2, 3, 2), cfg, g)
    assert best.shape == (2, 3, 2)
    assert torch.allclose(best, target.expand(2, -1, -1), atol=0.05), best
    assert torch.all(R > -0.01)


def test_config_errors():
    with pytest.raises(ValueError):
        PlannerConfig(method="random-shooting")
    with pytest.raises(ValueError):
        PlannerConfig(population=4, elites=8)


def test_planner_settings_from_the_spec():
    from cosmos_sim.errors import UnknownChoiceError
    from cosmos_sim.policies.registry import check_policy_spec

    assert PlannerConfig.from_spec("planner") == PlannerConfig()
    cfg = PlannerConfig.from_spec("planner:mppi?horizon=8&population=64&temperature=0.25", seed=3)
    assert (cfg.method, cfg.horizon, cfg.population, cfg.temperature, cfg.seed) == ("mppi", 8, 64, 0.25, 3)
    assert check_policy_spec("planner?iterations=2@speed=0.5") == "planner?iterations=2@speed=0.5"
    with pytest.raises(UnknownChoiceError, match="unknown planner setting 'horizn=8'.*horizon"):
        check_policy_spec("planner?horizn=8")
    with pytest.raises(ValueError, match="population='many': expected int"):
        PlannerConfig.from_spec("planner?population=many")
    with pytest.raises(ValueError, match="elites <= population"):
        PlannerConfig.from_spec("planner?population=4")


def test_planner_acts_deterministically_in_physics(tiny_world_model):
    import gymnasium as gym

    import cosmos_sim  # noqa: F401

    cfg = PlannerConfig(horizon=3, population=8, iterations=2, elites=2)

    def run():
        env = gym.make("cosmos_sim/Push-v0", backend="mujoco", image_size=32, obs_mode="both")
        planner = Planner(tiny_world_model[0], cfg)
        obs, _ = env.reset(seed=0)
        acts = []
        for _ in range(3):
            a = planner.act({k: v[None] for k, v in obs.items()})
            assert a.shape == (1, 2) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
            acts.append(a)
            obs, *_ = env.step(a[0])
        planner.reset(np.array([True]))
        acts.append(planner.act({k: v[None] for k, v in obs.items()}))
        return np.concatenate(acts)

    assert np.array_equal(run(), run())


def test_cli_evaluates_planner_acting_in_mujoco(tiny_world_model, capsys):
    from cosmos_sim.cli import main

    code = main(["evaluate", "--backend", "mujoco", "--policy", "planner:mppi", "--model",
                 str(tiny_world_model[0]), "--episodes", "1"])
    assert code == 0 and "planner:mppi" in capsys.readouterr().out
    assert main(["evaluate", "--policy", "planner", "--model", "no/such/run"]) == 1  # nothing to plan in
    assert "world model 'no/such/run' does not exist" in capsys.readouterr().err


def test_planner_on_states_matches_planner_on_both(tiny_world_model):
    """With the state observed, pixels add nothing to the plan: obs_mode 'state' and 'both' agree."""
    import gymnasium as gym

    import cosmos_sim  # noqa: F401

    cfg = PlannerConfig(horizon=3, population=8, iterations=2, elites=2)
    env = gym.make("cosmos_sim/Push-v0", backend="mujoco", image_size=32, obs_mode="both")
    obs, _ = env.reset(seed=1)
    a_both = Planner(tiny_world_model[0], cfg).act({k: v[None] for k, v in obs.items()})
    a_state = Planner(tiny_world_model[0], cfg, obs_mode="state").act(obs["state"][None])
    assert np.array_equal(a_both, a_state)
    with pytest.raises(ValueError, match=r"states \[N, 12\]"):
        Planner(tiny_world_model[0], cfg, obs_mode="state").act(np.zeros((1, 3), np.float32))
