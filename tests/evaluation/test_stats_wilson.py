"""Success rates get Wilson score intervals: 0/50 is not reported as [0, 0]."""

import numpy as np
import pytest

from cosmos_sim.evaluation.closed_loop import summarize_episodes
from cosmos_sim.evaluation.stats import proportion


def test_wilson_bounds_at_the_edges_and_the_middle():
    none, half, every = proportion(np.zeros(50)), proportion([1, 0] * 25), proportion(np.ones(50, bool))
    assert none["mean"] == 0 and none["lo"] == pytest.approx(0.0, abs=1e-12)
    assert none["hi"] == pytest.approx(0.0714, abs=1e-3)
    assert half["lo"] == pytest.approx(0.3664, abs=1e-3) and half["hi"] == pytest.approx(0.6336, abs=1e-3)
    assert every["lo"] == pytest.approx(0.9286, abs=1e-3) and every["hi"] == pytest.approx(1.0)
    assert none["n"] == 50


def test_closed_loop_success_rates_use_it():
    eps = {"return": np.zeros(50), "success": np.zeros(50, bool), "length": np.ones(50)}
    assert summarize_episodes(eps)["success_rate"]["hi"] > 0.07


def test_bad_samples():
    with pytest.raises(ValueError):
        proportion([])
    with pytest.raises(ValueError):
        proportion([0.5, 1.0])
