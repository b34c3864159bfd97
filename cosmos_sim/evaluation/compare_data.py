"""Compare a world model with a dataset's recorded episodes, open loop: `cosmos-sim compare --model RUN --data DIR`.

For worlds with no simulator (a recorded dataset's world, `worlds/dataset.py`, e.g. an imported LeRobot dataset
of a real robot) this is the whole comparison there can be; it works for any world model and dataset of one
world. The model starts from each episode's first frame, the true state and the recorded camera, then is fed
the recorded actions and cameras; every step is scored against the recording: PSNR, state error (RMS over the
entries, each in units of its spread in the training data) and, where the data has rewards, the reward's
absolute error (the model's learned reward head, or the world's reward code). Copying the first frame and state
is scored beside it, as the floor to beat. Episodes: the model's held-out ones when DIR is the data it was
trained on, else DIR's episodes; with several views, each view is rolled out on its own.

Closed loop -- policies acting, success rates, returns, rankings -- needs something to act in: for a world with
no simulator the report says so and has no closed-loop section; for our worlds and Gymnasium envs
`cosmos-sim compare --world W` / `--env ID` runs it.

The report's measures are sections (`SECTIONS`, the protocol in `report.py`): the open loop, the task heads, the
file index. The closed loop is no section: nothing runs, and the report says why (closed_loop null, and
closed_loop_note), in report.json between the task heads and the files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cosmos_sim.config import arg
from cosmos_sim.errors import DatasetMismatchError, InputError
from cosmos_sim.evaluation.compare_env import open_loop_metrics
from cosmos_sim.evaluation.model import load_checked_model, model_summary
from cosmos_sim.evaluation.report import (
    Context,
    FileIndex,
    TaskHeads,
    na,
    render,
    report_dir,
    run_sections,
    write_report,
)

SCHEMA = "cosmos_sim.data_report/1"
HORIZONS = (1, 4, 8, 16, 32)


@dataclass(frozen=True)
class DataCompareConfig:
    open_loop_episodes: int = arg(16, "recorded episodes to replay open loop")
    horizon: int = arg(32, "open-loop steps (fewer where an episode ends first)")
    seed: int = arg(0, "seed of the model's sampling")
    videos: int = arg(2, "side-by-side videos to write")
    device: str | None = arg(None, "device of the world model (none: cuda when available)")

    def __post_init__(self):
        for name in ("open_loop_episodes", "horizon"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.videos) < 0:
            raise InputError(f"videos must be >= 0, got {self.videos}")

    @classmethod
    def from_compare_flags(cls, flags: Mapping[str, Any]) -> DataCompareConfig:
        """The config of `cosmos-sim compare --data`, from the compare command's flags (the open-loop ones)."""
        return cls(open_loop_episodes=flags["open_loop_episodes"], horizon=flags["horizon"], seed=flags["seed"],
                   videos=flags["videos"], device=flags["device"])


def world_label(world) -> str:
    """A world's name for people: a dataset's world without its spec."""
    return getattr(world, "short_name", world.name)


def closed_loop_note(world) -> str:
    if not world.simulator:
        return (f"not run: {world_label(world)} is a recorded dataset with no simulator, and closed-loop evaluation "
                "(policies acting in the world: success rates, returns, rankings) needs one")
    how = "--env ID" if world.learned_task else f"--world {world.name.lower()}"
    return f"not run here: closed loop acts in physics (cosmos-sim compare {how} --model RUN)"


def _episodes(wm, ds, data: Path, n: int) -> tuple[list[int], str]:
    """The model's held-out episodes when `data` is its training data, else the dataset's; at most n."""
    trained_on = wm.info.get("data")
    held = [int(i) for i in wm.info.get("held_out_episodes") or [] if int(i) < len(ds)]
    if trained_on is not None and Path(trained_on).resolve() == data.resolve() and held:
        return held[:n], "held out from training"
    if trained_on is not None and Path(trained_on).resolve() == data.resolve():
        return list(range(min(n, len(ds)))), "training episodes (the model held none out)"
    return list(range(min(n, len(ds)))), "recorded episodes"


@torch.no_grad()
def _rollout(wm, world, ep: dict, view: int | None, horizon: int, generator: torch.Generator) -> dict:
    """One episode (one view of it) replayed in the model: frames, states and rewards beside the recording's."""
    T = min(horizon, len(ep["actions"]))
    dev = wm.device

    def pick(a):
        return a if view is None else a[:, view]

    px = pick(ep["pixels"][:T + 1])
    ext = torch.from_numpy(pick(ep["extrinsics"][:T + 1]).copy()).to(dev)
    fov = torch.from_numpy(pick(ep["fovy"][:T + 1]).copy()).to(dev)
    st = ep["states"][:T + 1]
    a = torch.from_numpy(ep["actions"][:T]).float().to(dev)
    state = wm.start(torch.from_numpy(px[:1].copy())[None].to(dev), ext[None, :1], fov[None, :1],
                     states=torch.from_numpy(st[:1].copy()).to(dev))
    frames, states, rewards = [px[0]], [st[0]], []
    prev = torch.from_numpy(st[:1].copy()).float().to(dev)
    for t in range(T):
        f, s = wm.step(state, a[t:t + 1], ext[t + 1:t + 2], fov[t + 1:t + 2], generator=generator)
        r = wm.task(prev, a[t:t + 1], s)[0] if wm.task_head is not None else world.reward(s, a[t:t + 1])
        frames.append(f[0].cpu().numpy())
        states.append(s[0].cpu().numpy())
        rewards.append(float(r[0]))
        prev = s
    return {"T": T, "pixels": px, "states": st, "rewards": ep["rewards"][:T], "twin_pixels": np.stack(frames),
            "twin_states": np.stack(states), "twin_rewards": np.asarray(rewards)}


def compare_data(config: DataCompareConfig, model: Any, data: str | os.PathLike, out: str | os.PathLike,
                 progress: bool = True) -> dict:
    """Open loop of `model` against the episodes of the dataset `data`; writes report.json, report.md, a plot
    and videos into `out`; returns the report."""
    from cosmos_sim.data import EpisodeDataset
    from cosmos_sim.data.merge import dataset_directory
    from cosmos_sim.worlds import get_world

    data = dataset_directory(data)
    ds = EpisodeDataset(data)
    world = get_world(ds.world)
    wm = load_checked_model(model, world.name, config.device)  # another world fails here, naming both
    if (wm.image_size, wm.image_size) != tuple(ds.spec.image_size):
        raise DatasetMismatchError(f"the world model draws {wm.image_size}x{wm.image_size} frames; {data} holds "
                                   f"{ds.spec.image_size[0]}x{ds.spec.image_size[1]}")
    eps, which = _episodes(wm, ds, data, config.open_loop_episodes)
    ctx = Context(config, world, wm, Path(out), progress, shared={"dataset": ds},
                  files={"report": "report.md", "horizon_plot": "horizon.png", "videos": []})
    ctx.report |= {"schema": SCHEMA, "config": asdict(config), "world": world.name, "world_label": world_label(world),
                   "simulator": bool(world.simulator), "data": str(data), "episodes": eps, "episodes_from": which,
                   "views": ds.spec.views, "model": model_summary(wm, model)}
    run_sections(ctx, SECTIONS[:2])
    ctx.report |= {"closed_loop": None, "closed_loop_note": closed_loop_note(world)}
    run_sections(ctx, SECTIONS[2:])
    write_report(ctx, markdown(ctx.report), timing=False)
    return ctx.report


class OpenLoop:
    """Each episode (each view) replayed in the model from its first frame and true state, scored per step
    against the recording, beside the first frame held; draws the horizon plot and the videos."""

    key, timing = "open_loop", None

    def applies(self, ctx: Context) -> bool:
        return True

    def run(self, ctx: Context) -> dict:
        from tqdm.auto import tqdm

        wm, world, ds, views = ctx.model, ctx.world, ctx.shared["dataset"], ctx.report["views"]
        has_reward = ds.manifest.get("source", {}).get("has_reward", True) is not False
        g = torch.Generator(device=wm.device).manual_seed(ctx.config.seed)
        rows = []
        for i in tqdm(ctx.report["episodes"], desc="open loop", disable=not ctx.progress, unit="ep"):
            ep = ds[i]
            for v in range(views):
                rows.append(_rollout(wm, world, ep, v if views > 1 else None, ctx.config.horizon, g)
                            | {"episode": i, "view": v})
        ds.close()
        state_std = wm.state_std.cpu().numpy()
        learned = open_loop_metrics(rows, state_std)
        still = [r | {"twin_pixels": np.repeat(r["pixels"][:1], r["T"] + 1, 0),
                      "twin_states": np.repeat(r["states"][:1], r["T"] + 1, 0), "twin_rewards": np.zeros(r["T"])}
                 for r in rows]
        copy = open_loop_metrics(still, state_std)
        if not has_reward:  # the recording has no rewards: an error against zeros would say nothing
            learned["curves"].pop("reward_abs_error")
            learned["reward_mae_per_step"] = None
        report_dir(ctx.out)  # only now: a model or dataset that fails leaves no report directory behind
        _plot(learned, copy["curves"], ctx.out / ctx.files["horizon_plot"], world_label(world))
        for r in rows[:ctx.config.videos]:
            name = f"episode{r['episode']}_view{r['view']}.mp4"
            _video(ctx.out / name, r, fps=round(1.0 / world.control_dt))
            ctx.files["videos"].append(name)
        return {"steps": learned["steps"], "curves": learned["curves"],
                "reward_mae_per_step": learned["reward_mae_per_step"],
                "copy_first": {k: copy["curves"][k] for k in ("psnr", "state_error")}}

    def markdown(self, ol: dict, report: dict) -> str:
        c, cp = ol["curves"], ol["copy_first"]
        lines = ["## Open loop", "",
                 "| step | PSNR dB | first frame held | state error (spreads) | held | reward abs. error |",
                 "|---:|---:|---:|---:|---:|---:|"]
        for h in sorted({*(x for x in HORIZONS if x <= len(ol["steps"])), len(ol["steps"])}):
            rerr = c.get("reward_abs_error")
            lines.append(f"| {h} | {na(_at(c['psnr'], h))} | {na(_at(cp['psnr'], h))} | "
                         f"{na(_at(c['state_error'], h), 3)} | {na(_at(cp['state_error'], h), 3)} | "
                         f"{na(_at(rerr, h), 4) if rerr else 'no rewards'} |")
        lines += ["", f"Reward MAE per step: {na(ol['reward_mae_per_step'], 4)}.", ""]
        return "\n".join(lines)


SECTIONS = (OpenLoop(), TaskHeads(), FileIndex())


def _plot(learned: dict, copy: dict, path: Path, title: str) -> None:
    from cosmos_sim.evaluation.plots import _plt, _save

    plt = _plt()
    panels = [("psnr", "PSNR (dB)"), ("state_error", "state error (spreads)")]
    if "reward_abs_error" in learned["curves"]:
        panels.append(("reward_abs_error", "|reward error|"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        nan = [np.nan if v is None else v for v in learned["curves"][key]]
        ax.plot(learned["steps"], nan, label="learned")
        if key in copy:
            ax.plot(learned["steps"], [np.nan if v is None else v for v in copy[key]], "--", label="first frame held")
        ax.set_xlabel("open-loop step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title}: the world model against the recording, open loop", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _video(path: Path, row: dict, fps: float) -> None:
    from cosmos_sim.video import tile, write_mp4

    frames = []
    for t in range(row["T"] + 1):
        a, b = row["pixels"][t], row["twin_pixels"][t]
        diff = np.abs(b.astype(np.int16) - a).astype(np.uint8)
        frames.append(tile([a, b, diff], labels=[f"data t={t}", "learned", "|learned-data|"], scale=4))
    write_mp4(path, frames, fps=fps)


def _at(curve: list, h: int) -> float | None:
    return curve[h - 1] if h <= len(curve) else None


def summary_lines(report: dict, out: str | os.PathLike) -> list[str]:
    """What `cosmos-sim compare --data` prints: the open-loop figures at a few horizons, and the closed loop's fate."""
    ol = report["open_loop"]
    hs = [h for h in HORIZONS if h <= len(ol["steps"])] or [len(ol["steps"])]
    c, cp = ol["curves"], ol["copy_first"]

    def row(curve, d=2):
        return " / ".join(na(_at(curve, h), d) for h in hs)

    h = "/".join(str(x) for x in hs)
    lines = [f"open loop, {report['world_label']}: {len(report['episodes'])} {report['episodes_from']} x "
             f"{report['views']} view(s) of {report['data']}",
             f"  PSNR h={h}: {row(c['psnr'])} dB (first frame held: {row(cp['psnr'])})",
             f"  state error h={h}: {row(c['state_error'], 3)} spreads (held: {row(cp['state_error'], 3)})"]
    if ol["reward_mae_per_step"] is not None:
        lines.append(f"  reward MAE per step: {ol['reward_mae_per_step']:.4f}")
    lines += [f"closed loop: {report['closed_loop_note']}", f"report: {Path(out) / 'report.md'}"]
    return lines


def markdown(report: dict) -> str:
    m = report["model"] or {}
    note = report["closed_loop_note"]
    head = [f"# {report['world_label']}: world model against its recorded episodes", "",
            f"Model: `{m.get('path')}` ({m.get('family')}, {m.get('image_size')} px). Data: `{report['data']}`, "
            f"{len(report['episodes'])} {report['episodes_from']} ({report['views']} view(s), each rolled out on "
            "its own), from the first frame and the true state, fed the recorded actions and cameras.", ""]
    closed = "\n".join(["## Closed loop", "", note[0].upper() + note[1:] + ".", ""])
    return "\n".join([render(report, SECTIONS[:2], head="\n".join(head)), closed, render(report, SECTIONS[2:])])


# --- `cosmos-sim compare --data` -------------------------------------------------------------------------
def run_command(model: str, data: str | os.PathLike, flags: Mapping[str, Any], out: str | os.PathLike, *,
                physics_only: bool = False, env: str | None = None, progress: bool = True) -> list[str]:
    """`cosmos-sim compare --model RUN --data DIR`: the model against the dataset's recorded episodes, open loop
    (all a world with no simulator allows); `flags` are the compare command's; returns the lines to print."""
    from cosmos_sim.device import resolve_device

    if model == "pretrained" or physics_only or env is not None:
        raise InputError("compare --data DIR needs --model RUN and neither --env nor --physics-only")
    resolve_device(flags["device"])
    cfg = DataCompareConfig.from_compare_flags(flags)
    return summary_lines(compare_data(cfg, model, data, out, progress), out)
