"""Report statistics against independent computations and a known distribution."""

import itertools

import numpy as np
import pytest

from cosmos_sim.evaluation.stats import bootstrap_ci, correlations, curve, mean_abs_error, summary


def _ranks(x):
    r = np.empty(len(x))
    r[np.argsort(x)] = np.arange(len(x))
    return r


def _kendall(x, y):
    c = d = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        s = np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
        c += s > 0
        d += s < 0
    return (c - d) / (len(x) * (len(x) - 1) / 2)


def test_correlations_match_direct_formulas():
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(size=12)
        y = 0.6 * x + rng.normal(size=12)
        c = correlations(x, y)
        assert c["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
        assert c["spearman"] == pytest.approx(np.corrcoef(_ranks(x), _ranks(y))[0, 1], abs=1e-12)
        assert c["kendall"] == pytest.approx(_kendall(x, y), abs=1e-12)
    perfect = correlations([0, 10, 20, 30, 100], [1, 2, 3, 4, 5])
    assert perfect["spearman"] == pytest.approx(1.0) and perfect["kendall"] == pytest.approx(1.0)


def test_correlations_of_constant_input_are_none():
    c = correlations([0, 0, 0, 0], [1, 2, 3, 4])
    assert c["spearman"] is None and c["pearson"] is None
    with pytest.raises(ValueError, match="one length"):
        correlations([1, 2], [1, 2, 3])


def test_bootstrap_ci_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(1)
    trials, hits = 300, 0
    for k in range(trials):
        sample = rng.exponential(2.0, size=60)  # skewed; true mean 2
        _, lo, hi = bootstrap_ci(sample, resamples=1000, seed=k)
        hits += lo <= 2.0 <= hi
    assert 0.89 <= hits / trials <= 0.99


def test_bootstrap_shapes_nan_and_determinism():
    v = np.arange(20, dtype=float).reshape(10, 2)
    v[3, 1] = np.nan
    mean, lo, hi = bootstrap_ci(v)
    assert mean.shape == (2,) and np.all(lo <= mean) and np.all(mean <= hi)
    assert mean[1] == pytest.approx(np.nanmean(v[:, 1]))
    assert curve(v) == curve(v)
    s = summary([1.0, 1.0, 1.0])
    assert s == {"mean": 1.0, "lo": 1.0, "hi": 1.0, "n": 3}
    assert mean_abs_error([0, 50], [10, 40]) == 10.0
    with pytest.raises(ValueError):
        bootstrap_ci([])
