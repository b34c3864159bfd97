"""Statistics for reports: bootstrap confidence intervals and rank/linear correlations.

Everything is seeded, so a report computed twice from the same rollouts is identical.
"""

from __future__ import annotations

import math

import numpy as np

from cosmos_sim.errors import InputError

DEFAULT_RESAMPLES = 2000


def bootstrap_ci(values, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its percentile-bootstrap interval: values [E, ...] -> (mean, lo, hi) of shape [...].

    NaNs are ignored per column (an episode without object pixels at some step contributes nothing there).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0 or v.shape[0] == 0:
        raise InputError(f"bootstrap_ci needs a non-empty [E, ...] array, got shape {v.shape}")
    if not 0 < level < 1:
        raise InputError(f"level must lie in (0, 1), got {level}")
    with np.errstate(invalid="ignore"), _quiet_nanmean():
        mean = np.nanmean(v, axis=0)
        E = v.shape[0]
        if E == 1:
            return mean, mean.copy(), mean.copy()
        idx = np.random.default_rng(seed).integers(0, E, size=(resamples, E))
        boot = np.nanmean(v[idx], axis=1)  # [R, ...]
        alpha = (1 - level) / 2
        lo = np.nanquantile(boot, alpha, axis=0)
        hi = np.nanquantile(boot, 1 - alpha, axis=0)
    return mean, lo, hi


def summary(values, level: float = 0.95, seed: int = 0) -> dict:
    """{"mean", "lo", "hi", "n"} of a 1-D sample (floats, JSON-ready)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    mean, lo, hi = bootstrap_ci(v, level=level, seed=seed)
    return {"mean": _f(mean), "lo": _f(lo), "hi": _f(hi), "n": int(np.isfinite(v).sum())}


def proportion(successes, level: float = 0.95) -> dict:
    """{"mean", "lo", "hi", "n"} of a success rate with its Wilson score interval (scipy's binomtest): unlike a
    bootstrap, 0/50 gets an upper bound above 0 (0.071) and 50/50 a lower bound below 1."""
    from scipy.stats import binomtest

    v = np.asarray(successes, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        raise InputError("a success rate needs at least one episode")
    if not np.isin(v, (0.0, 1.0)).all():
        raise InputError("successes must be 0/1 (or booleans)")
    k, n = int(v.sum()), len(v)
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return {"mean": k / n, "lo": float(ci.low), "hi": float(ci.high), "n": n}


def curve(values, level: float = 0.95, seed: int = 0) -> dict:
    """Per-step {"mean", "lo", "hi"} lists of a [E, T] array."""
    mean, lo, hi = bootstrap_ci(values, level=level, seed=seed)
    return {"mean": [_f(x) for x in mean], "lo": [_f(x) for x in lo], "hi": [_f(x) for x in hi]}


def correlations(x, y) -> dict:
    """Spearman, Kendall and Pearson correlation (scipy.stats) of paired samples, with p-values.

    A constant input has no defined correlation: those entries are None rather than NaN.
    """
    from scipy import stats

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"correlations need two 1-D samples of one length, got {a.shape} and {b.shape}")
    out: dict = {"n": int(len(a))}
    constant = len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0
    for name, fn in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau), ("pearson", stats.pearsonr)):
        if constant or (name == "pearson" and len(a) < 3):
            out[name], out[f"{name}_p"] = None, None
            continue
        res = fn(a, b)
        out[name], out[f"{name}_p"] = _f(res[0]), _f(res[1])
    return out


def mean_abs_error(x, y) -> float:
    return float(np.mean(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))


def _f(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


class _quiet_nanmean:
    """Silence numpy's 'Mean of empty slice' for all-NaN columns (their result is NaN, which we keep)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
