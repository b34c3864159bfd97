"""The learned termination head on rare events: trained on point-mass steps of which about 1 % terminate, its
threshold calibrated on one held-out half, judged on the other (cosmos_sim.task_head)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cosmos_sim.task_head import (
    TaskHead,
    calibrate_task_head,
    calibration_split,
    f1_threshold,
    fit_task_head,
    task_metrics,
)

from margins import above
from twins import pointmass


def point_mass_steps(n: int, seed: int) -> dict[str, torch.Tensor]:
    """n steps of the point-mass env from states spread over its square (positions anywhere, small velocities)
    under random actions: a step terminates where it lands within GOAL_RADIUS of the origin (about 1 %)."""
    env = pointmass.PointMass()
    rng = np.random.default_rng(seed)
    prev, acts, nxt, rew, term = [], [], [], [], []
    for _ in range(n):
        env.pos, env.vel = rng.uniform(-1, 1, 2), rng.uniform(-0.15, 0.15, 2)
        s = env._obs()
        a = rng.uniform(-2, 2, 2).astype(np.float32)
        o, r, done, _, _ = env.step(a)
        prev.append(s)
        acts.append(a)
        nxt.append(o)
        rew.append(r)
        term.append(done)
    t = {"prev": torch.tensor(np.array(prev), dtype=torch.float32), "actions": torch.tensor(np.array(acts)),
         "next": torch.tensor(np.array(nxt), dtype=torch.float32), "rewards": torch.tensor(rew, dtype=torch.float32),
         "terminated": torch.tensor(term, dtype=torch.float32)}
    t["success"] = t["terminated"].clone()
    return t


def normalized(steps: dict, mean: torch.Tensor, std: torch.Tensor) -> dict:
    return steps | {"prev": (steps["prev"] - mean) / std, "next": (steps["next"] - mean) / std}


@pytest.mark.slow
def test_termination_head_on_one_percent_positives_reaches_precision_and_recall():
    torch.manual_seed(0)
    train = point_mass_steps(60_000, seed=1)
    held = point_mass_steps(40_000, seed=2)
    rate = float(train["terminated"].mean())
    assert 0.005 < rate < 0.02  # about 1 % of the steps terminate
    mean, std = train["prev"].mean(0), train["prev"].std(0)
    train, held = normalized(train, mean, std), normalized(held, mean, std)
    head = TaskHead(4, 2, hidden=128, has_success=False, members=3)
    fit_task_head(head, train, steps=2500, batch_size=512, progress=False)
    # calibrate on one half of the held-out steps, measure on the other
    half = len(held["rewards"]) // 2
    cal = {k: v[:half] for k, v in held.items()}
    ev = {k: v[half:] for k, v in held.items()}
    record = calibrate_task_head(head, cal)
    assert record["termination_calibration"].startswith("best F1")
    m = task_metrics(head, ev, float(train["rewards"].mean()), record)
    above("termination head precision (1% positives, held out)", m["termination_precision"], 0.9)
    above("termination head recall (1% positives, held out)", m["termination_recall"], 0.9)
    assert m["termination_threshold"] == head.config["termination_threshold"]


def test_f1_threshold_picks_the_gap_of_best_f1():
    logits = torch.tensor([-3.0, -2.0, -1.0, 0.5, 1.0, 2.0])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    t, f1 = f1_threshold(logits, labels)
    assert -1.0 < t < 0.5 and f1 == pytest.approx(1.0)
    t, f1 = f1_threshold(logits, torch.tensor([0, 0, 0, 0, 1, 1]))
    assert 0.5 < t < 1.0 and f1 == pytest.approx(1.0)


def test_calibration_keeps_zero_without_enough_events_and_splits_by_episode():
    head = TaskHead(4, 2, hidden=16)
    data = {"prev": torch.zeros(10, 4), "actions": torch.zeros(10, 2), "next": torch.zeros(10, 4),
            "rewards": torch.zeros(10), "terminated": torch.zeros(10), "success": torch.zeros(10)}
    record = calibrate_task_head(head, data)
    assert head.config["termination_threshold"] == 0.0 and record["termination_calibration"].startswith("kept 0.0")
    assert calibrate_task_head(head, None)["termination_calibration"].startswith("kept 0.0: no calibration")
    cal, ev = calibration_split(range(10), seed=3)
    assert len(cal) == 5 and sorted(cal + ev) == list(range(10)) and not set(cal) & set(ev)
    assert calibration_split([7]) == ([], [7])
    # no terminations in the evaluation half: precision and recall are undefined (None), not 0 or NaN
    m = task_metrics(head, data, 0.0, record)
    assert m["termination_rate"] == 0.0 and m["termination_recall"] is None


def test_a_head_saved_before_members_loads_as_one_member():
    legacy = torch.nn.Sequential(torch.nn.Linear(14, 8), torch.nn.SiLU(), torch.nn.Linear(8, 8), torch.nn.SiLU(),
                                 torch.nn.Linear(8, 8), torch.nn.SiLU(), torch.nn.Linear(8, 3))
    sd = {f"net.{k}": v for k, v in legacy.state_dict().items()} | {"reward_mean": torch.tensor(1.0),
                                                                     "reward_std": torch.tensor(2.0)}
    head = TaskHead(4, 2, hidden=8)
    head.load_state_dict(sd)
    x = torch.randn(5, 4), torch.randn(5, 2), torch.randn(5, 4)
    expect = legacy(torch.cat([x[0], x[1], x[2], x[2] - x[0]], -1))
    assert torch.allclose(head(*x), expect, atol=1e-6)
    assert head.spread(*x) == {}
