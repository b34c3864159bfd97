"""The sections of a world's comparison report (`compare.compare`), in report order: open loop, closed loop,
ranking, trust, pixel policies' frames, the file index, physical alignment (worlds whose objects fall), cameras
(models trained on many poses). Each runs its measure, draws its figures and gives its part of report.json and report.md
(the protocol: `evaluation/report.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cosmos_sim.evaluation import open_loop as ol
from cosmos_sim.evaluation.closed_loop import evaluate_policies, per_policy, sees_pixels
from cosmos_sim.evaluation.report import BACKEND_NAMES as NAMES
from cosmos_sim.evaluation.report import Context, Trust, ci, fmt, short_name
from cosmos_sim.evaluation.stats import correlations, mean_abs_error

# report.json's "files", in this order; the sections fill in the videos and add what they draw
FILES = {"report": "report.md", "horizon_plot": "horizon.png", "ranking_plot": "ranking.png", "videos": []}


@dataclass
class CompareContext(Context):
    camera: str | None = None  # the camera mode every backend uses (None: the world's default camera)
    image_size: int = 64


class OpenLoop:
    """MuJoCo's actions replayed from the same initial states in PyBullet and the learned world; every step
    scored against MuJoCo. Draws the metrics against the horizon and the side-by-side videos."""

    key, timing = "open_loop", "open_loop_s"

    def applies(self, ctx: CompareContext) -> bool:
        return True

    def run(self, ctx: CompareContext) -> dict:
        from tqdm import tqdm

        from cosmos_sim.evaluation.plots import plot_horizon

        c, world = ctx.config, ctx.world
        seeds = list(range(c.seed, c.seed + c.open_loop_episodes))
        bar = tqdm(total=len(c.backends), desc="open loop", disable=not ctx.progress)
        ref = ol.record(world, seeds, c.horizon, c.open_loop_policy, ctx.camera, ctx.image_size)
        bar.update()
        others: dict[str, ol.Trajectories] = {}
        if "pybullet" in c.backends:
            others["pybullet"] = ol.replay(world, "pybullet", ref, ctx.camera)
            bar.update()
        scored = ol.open_loop(world, ref, ctx.model, start="reset", others=others, seed=c.seed)
        if "world_model" in c.backends:
            for part in ("metrics", "trajectories"):
                scored[part]["world_model"] = scored[part].pop("model")
            bar.update()
        bar.close()
        entry = world.object_entries[0] if world.object_entries else None
        result = {"steps": scored["steps"], "episodes": ref.episodes, "seeds": seeds, "policy": c.open_loop_policy,
                  "camera": ctx.camera or "default", "position_entry": entry, "pairs": ol.curves(scored, seed=c.seed)}
        panels = [("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("psnr_objects", "PSNR on object pixels (dB)")]
        if entry is not None:
            panels.append((f"state_error/{entry}", f"{entry} error"))
        plot_horizon(result, panels, ctx.out / ctx.files["horizon_plot"],
                     title=f"{world.name}: open loop against MuJoCo")
        for e in range(min(c.videos, ref.episodes)):
            name = f"episode{e}_seed{seeds[e]}.mp4"
            side_by_side_video(ctx.out / name, ref, scored["trajectories"], e, fps=round(1.0 / world.control_dt))
            ctx.files["videos"].append(name)
        return result

    def markdown(self, ol: dict, report: dict) -> str:
        steps = ol["steps"]
        show = [s for s in (1, 2, 4, 8, 16, 32, 64) if s <= steps[-1]]
        entry = f"state_error/{ol['position_entry']}" if ol.get("position_entry") else None
        metrics = [("psnr", "PSNR dB", 2), ("ssim", "SSIM", 3), ("psnr_objects", "object PSNR dB", 2)]
        lines = ["## Open loop", "",
                 f"{ol['episodes']} episodes: `{ol['policy']}` acts in MuJoCo, its actions are replayed from the same "
                 f"initial states in each backend; every frame and state is compared with MuJoCo's "
                 f"(mean over episodes at each step after the shared first frame; camera: {ol['camera']}).", ""]
        header = "| backend | metric | " + " | ".join(f"t={s}" for s in show) + " |"
        lines += [header, "|" + "---|" * (len(show) + 2)]
        for name, pair in ol["pairs"].items():
            rows = metrics + ([(entry, entry.split("/", 1)[1] + " error", 3)] if entry else []) + \
                [("reward_abs_error", "reward abs error", 3), ("success_agreement", "success agreement", 2)]
            for key, label, d in rows:
                if key in pair:
                    vals = [fmt(pair[key]["mean"][s - 1], d) for s in show]
                    lines.append(f"| {NAMES.get(name, name)} | {label} | " + " | ".join(vals) + " |")
        lines += ["", "![metrics against horizon](horizon.png)", ""]
        return "\n".join(lines)


def side_by_side_video(path: Path, ref: ol.Trajectories, others: dict[str, ol.Trajectories], episode: int,
                       fps: float) -> Path:
    from cosmos_sim.video import tile, write_mp4

    names = {"pybullet": "PyBullet", "world_model": "learned"}
    frames = []
    for t in range(ref.pixels.shape[1]):
        row = [ref.pixels[episode, t]]
        labels = ["MuJoCo"]
        for name, o in others.items():
            row.append(o.pixels[episode, t])
            labels.append(names.get(name, name))
        if "world_model" in others:
            diff = np.abs(others["world_model"].pixels[episode, t].astype(np.int16)
                          - ref.pixels[episode, t]).astype(np.uint8)
            row.append(diff)
            labels.append("|learned-MuJoCo|")
        frames.append(tile(row, labels=[f"{lab} t={t}" if i == 0 else lab for i, lab in enumerate(labels)],
                           scale=4))
    return write_mp4(path, frames, fps=fps)


class ClosedLoop:
    """Every policy in every backend from the same seeds: success rate, return and length with 95% CIs."""

    key, timing = "closed_loop", "closed_loop_s"

    def applies(self, ctx: CompareContext) -> bool:
        return True

    def run(self, ctx: CompareContext) -> dict:
        from tqdm import tqdm

        c = ctx.config
        closed: dict[str, dict] = {}
        bar = tqdm(c.backends, desc="closed loop", disable=not ctx.progress)
        for backend in bar:
            bar.set_postfix_str(backend)
            res = evaluate_policies(ctx.world.name, backend, list(c.policies), episodes=c.episodes, seed=c.seed,
                                    model=ctx.model if backend == "world_model" else None, device=c.device,
                                    camera=ctx.camera)
            closed[backend] = per_policy(res)
        bar.close()
        return closed

    def markdown(self, cl: dict, report: dict) -> str:
        cfg = report["config"]
        lines = ["## Closed loop", "",
                 "Success rate in % and return, mean [95% bootstrap CI] over "
                 f"{cfg['episodes']} episodes per cell (seeds {cfg['seed']}..{cfg['seed'] + cfg['episodes'] - 1}).",
                 ""]
        backends = list(cl)
        group = {r["policy"]: r.get("group", "") for r in report["ranking"]["rows"]}
        lines += ["| policy | group | " + " | ".join(f"{NAMES.get(b, b)} success" for b in backends) + " | "
                  + " | ".join(f"{NAMES.get(b, b)} return" for b in backends) + " |",
                  "|" + "---|" * (2 + 2 * len(backends))]
        for spec in cfg["policies"]:
            lines.append(f"| `{short_name(spec)}` | {group.get(spec, '')} | "
                         + " | ".join(ci(cl[b][spec]["success_rate"], 100, 0) for b in backends)
                         + " | " + " | ".join(ci(cl[b][spec]["return"], 1, 1) for b in backends) + " |")
        return "\n".join([*lines, ""])


class Ranking:
    """How each backend ranks the policies as MuJoCo does (from the closed loop); draws the success scatter."""

    key, timing = "ranking", None

    def applies(self, ctx: CompareContext) -> bool:
        return "closed_loop" in ctx.report

    def run(self, ctx: CompareContext) -> dict:
        from cosmos_sim.evaluation.plots import plot_success_scatter

        c = ctx.config
        result = rank(ctx.report["closed_loop"], c.policies, c.backends, ctx.world)
        plot_success_scatter(result["rows"], ctx.out / ctx.files["ranking_plot"],
                             title=f"{ctx.world.name}: success rate per policy")
        return result

    def markdown(self, rk: dict, report: dict) -> str:
        lines = ["## Ranking", "",
                 "How well each backend ranks the policies as MuJoCo does: correlations of the success rates over "
                 "the policies (all, then each group: the world's ladder of expert skills, and off-ladder policies "
                 "-- the expert slowed, acting on a share of steps, noisy), the mean absolute success-rate error and "
                 "the largest single-policy error, in points.", "",
                 "| backend vs MuJoCo | policies | Spearman ρ | Kendall τ | Pearson r | success MAE | largest error |",
                 "|---|---|---|---|---|---|---|"]
        for b, p in rk["pairs"].items():
            for label, g in [("all", p), *((k, v) for k, v in p.get("groups", {}).items() if len(p["groups"]) > 1)]:
                c = g["success"] or {}
                lines.append(f"| {NAMES.get(b, b)} | {label} ({g.get('policies', len(rk['rows']))}) | "
                             f"{fmt(c.get('spearman'))} | {fmt(c.get('kendall'))} | {fmt(c.get('pearson'))} | "
                             f"{fmt(g['success_mae_points'], 1)} | {fmt(g.get('max_abs_error_points'), 1)} |")
        lines += ["", "![success rates](ranking.png)", ""]
        return "\n".join(lines)


class PixelFrames:
    """The policies that see pixels, in MuJoCo again on frames the model's tokenizer redraws (the oracle: a
    perfect dynamics model's frames) and on frames frozen at the episode's first (envs/frame_filters.py): the
    video model's share of the learned world's error, and whether the policies use what moves."""

    key, timing = "pixel_frames", "pixel_frames_s"
    SOURCES = ("world_model", "oracle", "frozen")

    @staticmethod
    def _pixel(ctx: CompareContext) -> list[str]:
        mujoco = ctx.report.get("closed_loop", {}).get("mujoco", {})
        return [s for s in ctx.config.policies if sees_pixels(mujoco.get(s, {}))]

    def applies(self, ctx: CompareContext) -> bool:
        return ctx.model is not None and "world_model" in ctx.report.get("closed_loop", {}) and bool(self._pixel(ctx))

    def run(self, ctx: CompareContext) -> dict:
        from tqdm import tqdm

        from cosmos_sim.envs.frame_filters import FRAME_FILTERS

        c, pixel, closed = ctx.config, self._pixel(ctx), ctx.report["closed_loop"]
        runs = {kind: per_policy(evaluate_policies(ctx.world.name, "mujoco", pixel, episodes=c.episodes, seed=c.seed,
                                                   model=ctx.model, device=c.device, camera=ctx.camera, frames=kind))
                for kind in tqdm(FRAME_FILTERS, desc="pixel policies: oracle, frozen frames",
                                 disable=not ctx.progress)}
        rate = {"mujoco": closed["mujoco"], "world_model": closed["world_model"], **runs}
        success = {src: {p: 100.0 * rate[src][p]["success_rate"]["mean"] for p in pixel} for src in rate}
        ref = [success["mujoco"][p] for p in pixel]
        pairs = {src: agreement(ref, [success[src][p] for p in pixel]) for src in self.SOURCES}
        return {"policies": pixel, "success": success, "pairs": pairs, "closed_loop": runs}

    def markdown(self, pf: dict, report: dict) -> str:
        names = {"mujoco": "MuJoCo", "world_model": "learned world", "oracle": "oracle frames",
                 "frozen": "frozen frames"}
        lines = ["## Pixel policies: what the frames do", "",
                 "Success in % of the policies that see pixels. Oracle frames: MuJoCo, the policy seeing each true "
                 "frame encoded and decoded by the model's tokenizer (what a perfect dynamics model would draw); "
                 "learned world minus oracle is the dynamics' share of the error, oracle minus MuJoCo the video "
                 "model's. Frozen frames: MuJoCo, the policy seeing its episode's first frame throughout (a policy "
                 "that keeps its success there does not use what moves).", "",
                 "| policy | " + " | ".join(names.values()) + " |", "|---|" + "---:|" * len(names)]
        for p in pf["policies"]:
            lines.append(f"| `{short_name(p)}` | " + " | ".join(fmt(pf["success"][src][p], 0) for src in names)
                         + " |")
        lines += ["", "| vs MuJoCo | Spearman ρ | success MAE | largest error |", "|---|---:|---:|---:|"]
        for src, g in pf["pairs"].items():
            lines.append(f"| {names[src]} | {fmt((g['success'] or {}).get('spearman'))} | "
                         f"{fmt(g['success_mae_points'], 1)} | {fmt(g['max_abs_error_points'], 1)} |")
        return "\n".join([*lines, ""])


def agreement(ref: Sequence[float], got: Sequence[float]) -> dict[str, Any]:
    """How success rates `got` (in points) agree with the reference's over the same policies: correlations, the
    mean and the largest absolute error."""
    return {"policies": len(ref), "success": correlations(ref, got) if len(ref) > 1 else None,
            "success_mae_points": mean_abs_error(ref, got),
            "max_abs_error_points": max(abs(x - y) for x, y in zip(ref, got, strict=True))}


def rank(closed: dict, policies: Sequence[str], backends: Sequence[str], world) -> dict[str, Any]:
    """How each backend ranks the policies as MuJoCo does: over all of them, and over each group
    (the world's ladder, its off-ladder policies, policies that see pixels, others) with the largest
    single-policy error."""
    from cosmos_sim.policies.registry import LADDER

    pixels = {s for s in policies if sees_pixels(closed["mujoco"][s])}
    rows = [{"policy": spec, "group": "pixel" if spec in pixels else "ladder" if spec in LADDER else
             "off-ladder" if spec in world.off_ladder else "other",
             **{b: 100.0 * closed[b][spec]["success_rate"]["mean"] for b in backends}} for spec in policies]
    out: dict[str, Any] = {"rows": rows, "pairs": {}}

    for b in backends:
        if b == "mujoco":
            continue
        out["pairs"][b] = {
            **agreement([r["mujoco"] for r in rows], [r[b] for r in rows]),
            "return": correlations([closed["mujoco"][p]["return"]["mean"] for p in policies],
                                   [closed[b][p]["return"]["mean"] for p in policies]),
            "groups": {g: agreement([r["mujoco"] for r in rows if r["group"] == g],
                                    [r[b] for r in rows if r["group"] == g]) for g in dict.fromkeys(
                r["group"] for r in rows)},
        }
    return out


class Files:
    """The index of the report's files (report.json keeps it after the ranking); in report.md it closes the
    report: how to read it, and the videos."""

    key, timing = "files", None

    def applies(self, ctx: CompareContext) -> bool:
        return True

    def run(self, ctx: CompareContext) -> dict:
        return ctx.files  # the sections after it still add theirs

    def markdown(self, files: dict, report: dict) -> str:
        lines = ["## How to read this", "",
                 "- The PyBullet rows are the yardstick: a second physics engine simulating the same scene. A "
                 "learned world that stays above the PyBullet line on PSNR (and below it on state error) is a closer "
                 "twin of MuJoCo than another engine is.",
                 "- Open-loop errors grow with the horizon because nothing corrects the rollout; the step where a "
                 "curve crosses the yardstick is how far ahead the learned world can be trusted.",
                 "- Ranking: ρ near 1 means policies rank as in MuJoCo, so the learned world can pick the better "
                 "policy; the MAE says whether the absolute success rates can be trusted too.", ""]
        if files["videos"]:
            lines += ["Videos (MuJoCo | PyBullet | learned | |learned − MuJoCo|): "
                      + ", ".join(f"[{v}]({v})" for v in files["videos"]), ""]
        return "\n".join(lines)


class PhysicsAlignment:
    """Passive drops in worlds whose objects fall: bounces, resting positions and collisions against MuJoCo."""

    key, timing = "physics_alignment", "alignment_s"

    def applies(self, ctx: CompareContext) -> bool:
        return bool(ctx.world.falling_objects) and ctx.config.alignment_episodes > 0

    def run(self, ctx: CompareContext) -> dict:
        from cosmos_sim.evaluation.physics_alignment import AlignmentConfig, physics_alignment

        c = ctx.config
        acfg = AlignmentConfig(world=ctx.world.name, episodes=c.alignment_episodes, camera=ctx.camera or "default",
                               backends=tuple(b for b in c.backends if b != "mujoco"), device=c.device)
        return physics_alignment(acfg, model=ctx.model, out=ctx.out, plot_name="alignment_heights.png")

    def markdown(self, result: dict, report: dict) -> str:
        from cosmos_sim.evaluation.physics_alignment import markdown

        return "\n".join([*markdown(result), ""])


class Cameras:
    """A model trained on many poses: does it obey them? Novel views and camera following (`views.py`)."""

    key, timing = "cameras", "cameras_s"

    def applies(self, ctx: CompareContext) -> bool:
        return ctx.model is not None and ctx.model.camera_coverage(ctx.world).range is not None

    def run(self, ctx: CompareContext) -> dict:
        from cosmos_sim.evaluation.views import ViewConfig, camera_following, novel_view, novel_view_grid
        from cosmos_sim.video import save_png

        c, wm, world = ctx.config, ctx.model, ctx.world
        H = min(16, c.horizon)
        vc = ViewConfig(episodes=c.open_loop_episodes, horizon=H, horizons=tuple(h for h in (1, 4, 16) if h <= H),
                        seed=c.seed + 5000)
        examples: list = []
        result = {"novel_view": novel_view(wm, world, vc, examples=examples),
                  "camera_following": camera_following(wm, world, vc)}
        save_png(ctx.out / "novel_views.png", novel_view_grid(examples))
        ctx.files["novel_views"] = "novel_views.png"
        return result

    def markdown(self, cams: dict, report: dict) -> str:
        nv, fo = cams["novel_view"], cams["camera_following"]
        hs = [h for h in ("1", "4", "16") if h in nv["same"]]
        lines = ["## Cameras", "",
                 f"Trained cameras: {nv['coverage']}. PSNR (dB) against MuJoCo rendered at pose B, "
                 f"{nv['same']['episodes']} held-out episodes (`evaluation/views.py`): same pose = context frame "
                 "at B; novel view = context frame at another pose A, the rollout told B; camera following = "
                 "the learned env and MuJoCo along one smooth random camera path (`camera_control`).", "",
                 "| | " + " | ".join(f"h={h}" for h in hs) + " |", "|---|" + "---:|" * len(hs)]
        for label, row in (("same pose", nv["same"]), ("novel view", nv["novel"]),
                           ("camera following", fo["following"])):
            lines.append(f"| {label} | " + " | ".join(fmt(row[h]) for h in hs) + " |")
        lines += ["", "Novel views (per row: the context frame at A, then MuJoCo and the learned world at B, at h = 1 "
                  "and at the last step):", "", "![novel views](novel_views.png)", ""]
        return "\n".join(lines)


# run in this order, report.json in this order; report.md puts the file index (how to read, videos) last
SECTIONS = (OpenLoop(), ClosedLoop(), Ranking(), Trust("mujoco", "success"), PixelFrames(), Files(),
            PhysicsAlignment(), Cameras())
