"""Compare the learned twin of a Gymnasium env with the env itself: what `cosmos-sim compare --env ID` writes.

The same sections as a world's report, with the source env as the reference and returns where a world
would use success: open loop (the env's actions replayed in the twin from the env's first frame and
state: PSNR, state error and the reward head's error per step), closed loop (each policy's mean return,
success where the env reports it, and length, over the same seeds in both), the ranking of the policies
by return (Spearman and Pearson), the reward MAE per step beside the return spread of the policies, the
task head's held-out accuracy from training, plots and side-by-side videos.

A policy ladder for any env: `--policies random,RUN/checkpoints` expands a directory of PPO checkpoints
(`cosmos-sim train-policy --save-every N`) into one policy per checkpoint, in training order.

The report is a list of sections (`SECTIONS`, the protocol in `report.py`); report.md shows the policies
first (`MARKDOWN`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError
from cosmos_sim.evaluation.closed_loop import evaluate_policies, per_policy
from cosmos_sim.evaluation.report import (
    Context,
    FileIndex,
    TaskHeads,
    Trust,
    json_safe,
    na,
    render,
    report_dir,
    run_sections,
    short_name,
    trust_line,
    write_report,
)
from cosmos_sim.evaluation.stats import correlations

SCHEMA = "cosmos_sim.env_report/1"
CHECKPOINT_GLOB = "step_*"


class EnvConfigMixin:
    """What a config naming a Gymnasium env (`env`, `env_kwargs`) shares: its world's name, its JSON."""

    @property
    def world_name(self) -> str:
        from cosmos_sim.envs.source_env import canonical_kwargs, world_name

        return world_name(self.env, json.loads(canonical_kwargs(self.env_kwargs)))

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class EnvCompareConfig(EnvConfigMixin):
    env: str = arg("Reacher-v5", "the Gymnasium env id the model was trained on")
    env_kwargs: str = arg("{}", "the env's kwargs as JSON (as collected)")
    policies: tuple[str, ...] = arg(("random",), "policies: random, explore, a saved policy RUN, module:callable, "
                                                 "or a directory of PPO checkpoints (RUN/checkpoints: each one)")
    episodes: int = arg(30, "closed-loop episodes per policy and backend")
    seed: int = arg(0, "episode i uses seed SEED+i in both")
    open_loop_episodes: int = arg(8, "open-loop episodes")
    horizon: int = arg(32, "open-loop steps (fewer where the env's episode ends first)")
    open_loop_policy: str = arg("random", "the policy whose env actions are replayed open loop")
    videos: int = arg(2, "side-by-side videos to write")
    device: str | None = arg(None, "device of the world model (none: cuda when available)")
    object_entries: str | None = arg(None, "state entries of the object a policy moves, e.g. 4:7 (Meta-World's "
                                           "object position): its displacement in the env and the twin")
    displacement_steps: tuple[int, ...] = arg((50, 150), "steps at which the object's displacement is compared")
    displacement_policy: str | None = arg(None, "the policy that moves it (none: the open-loop policy)")

    def __post_init__(self):
        object.__setattr__(self, "policies", tuple(expand_env_policies(self.policies)))
        object.__setattr__(self, "displacement_steps", tuple(int(h) for h in self.displacement_steps))
        if any(h < 1 for h in self.displacement_steps):
            raise InputError(f"displacement_steps must be >= 1, got {self.displacement_steps}")
        if self.object_entries is not None:
            object_indices(self.object_entries, None)  # the syntax, here; the range against the world, later
        for name in ("episodes", "open_loop_episodes", "horizon"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")


    @classmethod
    def from_compare_flags(cls, env: str, env_kwargs: str | None, flags: Mapping[str, Any]) -> EnvCompareConfig:
        """The config `cosmos-sim compare --env ID` means: its flags are a world's (CompareConfig's), and a
        world's defaults -- the ladder of experts, an expert's actions open loop -- mean random here: an env
        has no expert."""
        policies = ("random",) if list(flags["policies"]) == ["ladder"] else flags["policies"]
        return cls(env=env, env_kwargs=env_kwargs or "{}", policies=policies, episodes=flags["episodes"],
                   seed=flags["seed"], open_loop_episodes=flags["open_loop_episodes"], horizon=flags["horizon"],
                   videos=flags["videos"], device=flags["device"],
                   open_loop_policy="random" if flags["open_loop_policy"] == "scripted:0.75"
                   else flags["open_loop_policy"], object_entries=flags.get("object_entries"))


def expand_env_policies(specs: str | tuple[str, ...] | list[str]) -> list[str]:
    """Comma-separated specs; a directory of `step_*` checkpoint directories becomes each checkpoint."""
    items = [specs] if isinstance(specs, str) else list(specs)
    out: list[str] = []
    for item in (p.strip() for s in items for p in str(s).split(",") if p.strip()):
        d = Path(item)
        steps = sorted(d.glob(CHECKPOINT_GLOB)) if d.is_dir() and not (d / "policy.safetensors").is_file() else []
        for spec in ([str(s) for s in steps] if steps else [item]):
            if spec not in out:
                out.append(spec)
    if not out:
        raise InputError("no policies given")
    return out


def object_indices(entries: str, state_dim: int | None) -> list[int]:
    """"4:7" or "4,5,6" -> state indices, checked against `state_dim` when given."""
    try:
        if ":" in entries:
            a, b = (int(x) for x in entries.split(":"))
            idx = list(range(a, b))
        else:
            idx = [int(x) for x in entries.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"object_entries must look like 4:7 or 4,5,6, got {entries!r}") from None
    if not idx or (state_dim is not None and (min(idx) < 0 or max(idx) >= state_dim)):
        raise InputError(f"object_entries {entries!r} must name entries of the {state_dim}-d state")
    return idx


# --- open loop -----------------------------------------------------------------------------------------
@torch.no_grad()
def open_loop_env(world, model, seeds: list[int], horizon: int, policy_spec: str) -> dict:
    """The env's own episodes (frames, states, rewards) and the twin's replay of their actions."""
    from cosmos_sim.envs.source_env import SourceEnv
    from cosmos_sim.policies.registry import collection_policy
    from cosmos_sim.policies.rollout import run_episode

    env = SourceEnv(world, obs_mode="both", image_size=model.image_size)
    rows = []
    try:
        for seed in seeds:
            ep = run_episode(env, collection_policy(policy_spec, world, seed=seed), seed)
            T = min(horizon, ep.length)
            px, st = ep.observations["pixels"][:T + 1], ep.observations["state"][:T + 1]
            a = torch.from_numpy(ep.actions[:T]).float().to(model.device)
            cam = world.default_camera
            ext = torch.from_numpy(cam.extrinsics().astype(np.float32))[None, None].to(model.device)
            fov = torch.tensor([[cam.fovy]], dtype=torch.float32, device=model.device)
            state = model.start(torch.from_numpy(px[:1])[None].to(model.device), ext, fov,
                                states=torch.from_numpy(st[0])[None].to(model.device))
            rays = model.rays(ext[:, 0], fov[:, 0])
            frames, states, rewards = [px[0]], [st[0]], []
            prev = torch.from_numpy(st[0])[None].float().to(model.device)
            for t in range(T):
                f, s = model.step(state, a[t:t + 1], rays=rays)
                r, _, _ = model.task(prev, a[t:t + 1], s)
                frames.append(f[0].cpu().numpy())
                states.append(s[0].cpu().numpy())
                rewards.append(float(r[0]))
                prev = s
            rows.append({"seed": seed, "T": T, "pixels": px, "states": st, "rewards": ep.rewards[:T],
                         "twin_pixels": np.stack(frames), "twin_states": np.stack(states),
                         "twin_rewards": np.asarray(rewards)})
    finally:
        env.close()
    return {"episodes": rows}


def open_loop_metrics(rows: list[dict], state_std: np.ndarray) -> dict:
    """Per step h = 1..H: PSNR, state error (RMS over entries, each in units of its spread in the training
    data) and the reward's absolute error, averaged over the episodes that last that long."""
    from cosmos_sim.evaluation.metrics import psnr

    H = max(r["T"] for r in rows)
    per: dict[str, list[list[float]]] = {"psnr": [[] for _ in range(H)], "state_error": [[] for _ in range(H)],
                                         "reward_abs_error": [[] for _ in range(H)]}
    for r in rows:
        a = torch.from_numpy(r["pixels"][1:r["T"] + 1]).float().permute(0, 3, 1, 2) / 255
        b = torch.from_numpy(r["twin_pixels"][1:r["T"] + 1]).float().permute(0, 3, 1, 2) / 255
        p = psnr(a, b).numpy()
        err = np.sqrt((((r["twin_states"][1:] - r["states"][1:r["T"] + 1]) / state_std) ** 2).mean(-1))
        rerr = np.abs(r["twin_rewards"] - r["rewards"])
        for h in range(r["T"]):
            per["psnr"][h].append(float(p[h]))
            per["state_error"][h].append(float(err[h]))
            per["reward_abs_error"][h].append(float(rerr[h]))
    steps = [h + 1 for h in range(H)]
    curves = {k: [float(np.mean(v)) if v else None for v in vals] for k, vals in per.items()}
    all_r = np.concatenate([np.abs(r["twin_rewards"] - r["rewards"]) for r in rows])
    return {"steps": steps, "curves": curves, "reward_mae_per_step": float(all_r.mean())}


# --- the report ----------------------------------------------------------------------------------------
def compare_env(config: EnvCompareConfig, model: Any, out: str | os.PathLike, progress: bool = True) -> dict:
    from cosmos_sim.envs.learned_env import load_twin_model
    from cosmos_sim.envs.world_model_env import resolve_device

    dev = resolve_device(config.device)
    wm, world = load_twin_model(model, dev, config.world_name)  # another env or kwargs fails here, first
    if config.object_entries is not None:
        object_indices(config.object_entries, world.state_dim)  # and entries outside the state, before any work
    ctx = Context(config, world, wm, report_dir(out), progress,
                  files={"report": "report.md", "horizon_plot": "horizon.png", "ranking_plot": "ranking.png",
                         "videos": []})
    ctx.report |= {"schema": SCHEMA, "config": config.to_dict(), "world": world.name,
                   "source": {"env_id": world.env_id, "env_kwargs": world.env_kwargs,
                              "observation_space": str(world.observation_source),
                              "action_space": str(world.action_source)},
                   "model": {"path": wm.source, "family": wm.family, "image_size": wm.image_size,
                             "info": json_safe(wm.info)}}
    run_sections(ctx, SECTIONS)
    write_report(ctx, markdown(ctx.report))
    return ctx.report


class OpenLoop:
    """The env's actions replayed in the twin from the env's first frame and state; draws the horizon plot and
    the side-by-side videos."""

    key, timing = "open_loop", "open_loop_s"

    def applies(self, ctx: Context) -> bool:
        return True

    def run(self, ctx: Context) -> dict:
        c, world = ctx.config, ctx.world
        seeds = list(range(c.seed, c.seed + c.open_loop_episodes))
        rows = open_loop_env(world, ctx.model, seeds, c.horizon, c.open_loop_policy)["episodes"]
        result = open_loop_metrics(rows, ctx.model.state_std.cpu().numpy())
        _plot_horizon(result, ctx.out / ctx.files["horizon_plot"], world.name)
        for e in range(min(c.videos, len(rows))):
            name = f"episode{e}_seed{seeds[e]}.mp4"
            _video(ctx.out / name, rows[e], fps=round(1.0 / world.control_dt))
            ctx.files["videos"].append(name)
        return result

    def markdown(self, ol: dict, report: dict) -> str:
        lines = ["## Open loop", "", "| step | PSNR dB | state error | reward abs. error |", "|---:|---:|---:|---:|"]
        for h in sorted({1, 4, 8, 16, 32, len(ol["steps"])}):
            if h <= len(ol["steps"]):
                cv = ol["curves"]
                lines.append(f"| {h} | {na(cv['psnr'][h - 1])} | {na(cv['state_error'][h - 1], 3)} | "
                             f"{na(cv['reward_abs_error'][h - 1], 4)} |")
        return "\n".join([*lines, ""])


class ClosedLoop:
    """Each policy in the env and in the twin over the same seeds: return, success, length."""

    key, timing = "closed_loop", "closed_loop_s"

    def applies(self, ctx: Context) -> bool:
        return True

    def run(self, ctx: Context) -> dict:
        from tqdm.auto import tqdm

        c, closed = ctx.config, {}
        for backend in tqdm(("env", "world_model"), desc="closed loop", disable=not ctx.progress):
            res = evaluate_policies(ctx.world.name, backend, list(c.policies), episodes=c.episodes, seed=c.seed,
                                    model=ctx.model if backend == "world_model" else None, device=c.device)
            closed[backend] = per_policy(res)
        return closed

    def markdown(self, closed: dict, report: dict) -> str:
        lines = ["## Policies (closed loop, same seeds in both)", "",
                 "| policy | env return | learned return | env success % | learned success % | env length | "
                 "learned length | length error (per episode) | twin ends earlier % |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in report["ranking"]["rows"]:
            lines.append(f"| {r['name']} | {r['env_return']:.1f} | {r['learned_return']:.1f} | "
                         f"{r['env_success']:.0f} | {r['learned_success']:.0f} | {r['env_length']:.0f} | "
                         f"{r['learned_length']:.0f} | {r['length_abs_error']:.1f} | "
                         f"{100 * r['learned_ends_earlier']:.0f} |")
        return "\n".join([*lines, ""])


class Ranking:
    """The policies ranked by mean return in the env and in the twin; draws the return scatter."""

    key, timing = "ranking", None

    def applies(self, ctx: Context) -> bool:
        return "closed_loop" in ctx.report

    def run(self, ctx: Context) -> dict:
        closed, policies = ctx.report["closed_loop"], ctx.config.policies
        ref = [closed["env"][p]["return"]["mean"] for p in policies]
        got = [closed["world_model"][p]["return"]["mean"] for p in policies]
        rows = [{"policy": p, "name": short_name(p), "env_return": a, "learned_return": b,
                 "env_success": 100 * closed["env"][p]["success_rate"]["mean"],
                 "learned_success": 100 * closed["world_model"][p]["success_rate"]["mean"],
                 "env_length": closed["env"][p]["length"]["mean"],
                 "learned_length": closed["world_model"][p]["length"]["mean"],
                 **length_error(closed["env"][p]["per_episode"]["length"],
                                closed["world_model"][p]["per_episode"]["length"])}
                for p, a, b in zip(policies, ref, got, strict=True)]
        _plot_returns(rows, ctx.out / ctx.files["ranking_plot"], ctx.world.name)
        return {"rows": rows, "return": correlations(ref, got) if len(ref) > 1 else None,
                "return_spread": float(max(ref) - min(ref)),
                "return_mae": float(np.mean(np.abs(np.asarray(ref) - np.asarray(got))))}

    def markdown(self, rk: dict, report: dict) -> str:
        c = rk["return"] or {}
        return "\n".join([
            f"Ranking by mean return: Spearman ρ = {na(c.get('spearman'))}, Pearson r = {na(c.get('pearson'))} "
            f"over {len(rk['rows'])} policies.",
            f"Return spread of the policies (env): {rk['return_spread']:.1f}; mean |return error|: "
            f"{rk['return_mae']:.1f}; reward MAE per step (open loop): "
            f"{report['open_loop']['reward_mae_per_step']:.4f}.", ""])


class ObjectDisplacement:
    """The object a policy moves (config.object_entries): how far it has moved from its start after each of
    `displacement_steps` steps, in the env and in the twin, one policy acting in each over the same seeds."""

    key, timing = "object_displacement", "object_displacement_s"

    def applies(self, ctx: Context) -> bool:
        return ctx.config.object_entries is not None

    def run(self, ctx: Context) -> dict:
        from cosmos_sim.evaluation.closed_loop import make_vector_env
        from cosmos_sim.policies.registry import policy_from_spec
        from cosmos_sim.policies.rollout import run_episodes

        c, world = ctx.config, ctx.world
        idx = object_indices(c.object_entries, world.state_dim)
        spec = c.displacement_policy or c.open_loop_policy
        seeds = list(range(c.seed, c.seed + c.open_loop_episodes))
        tracks = {}
        for backend in ("env", "world_model"):
            env = make_vector_env(world.name, backend, len(seeds), model=ctx.model if backend == "world_model"
                                  else None, device=c.device)
            try:
                eps = run_episodes(env, policy_from_spec(spec, world, seed=c.seed), seeds)
            finally:
                env.close()
            tracks[backend] = [e.observations["state"][:, idx] for e in eps]
        rows = []
        for h in c.displacement_steps:
            def at(x: np.ndarray, h: int = h) -> np.ndarray:  # an episode that ended earlier: the object stays
                return x[min(h, len(x) - 1)]

            d_env = [float(np.linalg.norm(at(x) - x[0])) for x in tracks["env"]]
            d_twin = [float(np.linalg.norm(at(x) - x[0])) for x in tracks["world_model"]]
            gap = [float(np.linalg.norm(at(a) - at(b))) for a, b in zip(tracks["env"], tracks["world_model"],
                                                                         strict=True)]
            rows.append({"step": h, "env_displacement": float(np.mean(d_env)),
                         "twin_displacement": float(np.mean(d_twin)),
                         "displacement_error": float(np.mean(np.abs(np.subtract(d_env, d_twin)))),
                         "position_error": float(np.mean(gap))})
        return {"policy": spec, "entries": idx, "episodes": len(seeds), "rows": rows}

    def markdown(self, od: dict, report: dict) -> str:
        lines = [f"## Object displacement (`{od['policy']}`, state entries {od['entries']}, {od['episodes']} "
                 "episodes)", "", "| step | env displacement | twin displacement | abs. error | position error |",
                 "|---:|---:|---:|---:|---:|"]
        for r in od["rows"]:
            lines.append(f"| {r['step']} | {r['env_displacement']:.4f} | {r['twin_displacement']:.4f} | "
                         f"{r['displacement_error']:.4f} | {r['position_error']:.4f} |")
        return "\n".join([*lines, ""])


def length_error(env_lengths: list[int], learned_lengths: list[int]) -> dict:
    """Episode lengths of one policy, the same seeds in both: the mean |learned - env| per episode, its share of the
    env's mean length, and the share of episodes the twin ends earlier / later (false or missed terminations)."""
    a, b = np.asarray(env_lengths, float), np.asarray(learned_lengths, float)
    d = b - a
    return {"length_abs_error": float(np.abs(d).mean()),
            "length_relative_error": float(np.abs(d).mean() / max(a.mean(), 1.0)),
            "learned_ends_earlier": float((d < 0).mean()), "learned_ends_later": float((d > 0).mean())}


# run, and report.json, in this order
SECTIONS = (TaskHeads(), OpenLoop(), ClosedLoop(), Ranking(), Trust("env", "return"), ObjectDisplacement(),
            FileIndex(("horizon", "ranking")))
MARKDOWN = (SECTIONS[2], SECTIONS[3], SECTIONS[4], SECTIONS[5], SECTIONS[0], SECTIONS[1], SECTIONS[6])  # policies first


def markdown(report: dict) -> str:
    m = report["model"]
    return render(report, MARKDOWN, head="\n".join([
        f"# {report['world']}: learned twin against the env", "",
        f"Model: `{m['path']}` ({m['family']}, {m['image_size']} px).", ""]))


def _plot_horizon(open_loop: dict, path: Path, title: str) -> None:
    from cosmos_sim.evaluation.plots import _plt, _save

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, (key, label) in zip(axes, [("psnr", "PSNR (dB)"), ("state_error", "state error (spreads)"),
                                       ("reward_abs_error", "|reward error|")], strict=True):
        ax.plot(open_loop["steps"], [np.nan if v is None else v for v in open_loop["curves"][key]])
        ax.set_xlabel("open-loop step")
        ax.set_title(label)
    fig.suptitle(f"{title}: the twin against the env, open loop")
    fig.tight_layout()
    _save(fig, path)


def _plot_returns(rows: list[dict], path: Path, title: str) -> None:
    from cosmos_sim.evaluation.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    x, y = [r["env_return"] for r in rows], [r["learned_return"] for r in rows]
    ax.scatter(x, y)
    for r in rows:
        ax.annotate(r["name"], (r["env_return"], r["learned_return"]), fontsize=6)
    lo, hi = min(x + y), max(x + y)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("env mean return")
    ax.set_ylabel("learned twin mean return")
    ax.set_title(f"{title}: return per policy", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _video(path: Path, row: dict, fps: float) -> None:
    from cosmos_sim.video import tile, write_mp4

    frames = []
    for t in range(row["T"] + 1):
        a, b = row["pixels"][t], row["twin_pixels"][t]
        diff = np.abs(b.astype(np.int16) - a).astype(np.uint8)
        frames.append(tile([a, b, diff], labels=[f"env t={t}", "learned", "|learned-env|"], scale=4))
    write_mp4(path, frames, fps=fps)


# --- `cosmos-sim compare --env` --------------------------------------------------------------------------
def run_command(env: str, env_kwargs: str | None, model: str, flags: Mapping[str, Any], out: str | os.PathLike, *,
                physics_only: bool = False, progress: bool = True) -> list[str]:
    """`cosmos-sim compare --env ID [--env-kwargs JSON] --model RUN`: the env and its kwargs are checked, then the
    model; `flags` are the world flags (`EnvCompareConfig.from_compare_flags`); returns the lines to print."""
    from cosmos_sim.device import resolve_device
    from cosmos_sim.envs.source_env import canonical_kwargs, env_world

    env_world(env, json.loads(canonical_kwargs(env_kwargs)))  # an unknown id or bad kwargs fail here, first
    if model == "pretrained" or physics_only:
        raise InputError("compare --env needs --model RUN (a world model trained on the env's data)")
    resolve_device(flags["device"])
    cfg = EnvCompareConfig.from_compare_flags(env, env_kwargs, flags)
    return summary_lines(compare_env(cfg, model, out, progress=progress), out)


def summary_lines(report: dict, out: str | os.PathLike) -> list[str]:
    """What `cosmos-sim compare --env` prints: each policy's return in the env and in the twin, the ranking."""
    rk = report["ranking"]
    c = rk["return"] or {}
    lines = [f"{row['name']:>28}  env return {row['env_return']:9.2f}  learned {row['learned_return']:9.2f}"
             for row in rk["rows"]]
    rho = c.get("spearman")
    lines.append(f"ranking by return: Spearman {'n/a' if rho is None else f'{rho:.2f}'} over {len(rk['rows'])} "
                 f"policies; return spread {rk['return_spread']:.1f}; reward MAE/step "
                 f"{report['open_loop']['reward_mae_per_step']:.4f}")
    lines.append(trust_line(report.get("trust")))
    lines.append(f"report: {Path(out) / 'report.md'}")
    return lines
