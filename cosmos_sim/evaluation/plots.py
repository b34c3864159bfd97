"""Report figures (matplotlib, Agg backend): metrics against horizon, and learned-vs-physics success."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

COLORS = {"world_model": "#d62728", "pybullet": "#1f77b4"}
LABELS = {"world_model": "learned vs MuJoCo", "pybullet": "PyBullet vs MuJoCo"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    import io

    from cosmos_sim.fileio import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


def plot_horizon(open_loop: dict, panels: list[tuple[str, str]], path: str | os.PathLike, title: str = "") -> Path:
    """One panel per (metric key, axis label); one line with a 95% CI band per compared backend."""
    plt = _plt()
    steps = np.asarray(open_loop["steps"])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for name, metrics in open_loop["pairs"].items():
            if key not in metrics:
                continue
            c = metrics[key]
            mean = np.array(c["mean"], dtype=float)
            lo, hi = np.array(c["lo"], dtype=float), np.array(c["hi"], dtype=float)
            color = COLORS.get(name)
            ax.plot(steps, mean, label=LABELS.get(name, name), color=color, lw=1.8)
            ax.fill_between(steps, lo, hi, color=color, alpha=0.2, lw=0)
        ax.set_xlabel("steps after the shared first frame")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_success_scatter(ranking_rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Success rate in MuJoCo (x) against the learned world and PyBullet (y), one point per policy."""
    from cosmos_sim.evaluation.report import short_name

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 100], [0, 100], color="0.6", lw=1, ls="--", label="perfect agreement")
    for backend in ("world_model", "pybullet"):
        pts = [(r["mujoco"], r[backend], short_name(r["policy"])) for r in ranking_rows
               if r.get(backend) is not None]
        if not pts:
            continue
        x, y, names = zip(*pts, strict=True)
        ax.scatter(x, y, color=COLORS[backend], label=LABELS[backend].replace(" vs MuJoCo", ""), s=36, zorder=3)
        if backend == "world_model":
            for xi, yi, n in pts:
                ax.annotate(n, (xi, yi), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("success rate in MuJoCo (%)")
    ax.set_ylabel("success rate in the other backend (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
