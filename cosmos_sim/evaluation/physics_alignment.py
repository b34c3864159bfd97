"""Physical alignment on passive drops: do objects fall, bounce, come to rest and collide as in MuJoCo?

The Cosmos paper judges a world model's physics on objects that fall, bounce, roll and collide. Here a
world's falling objects (`World.falling_objects`) are left to themselves (the zero action) from held-out
initial states. MuJoCo is the reference; PyBullet is the yardstick (how far a second engine lands from
the first); the learned world starts from MuJoCo's reset frame and true initial state and is fed the same
zero actions (`open_loop.record`, `replay`, `rollout_model`). Per object in play, per drop:

- height: the centre's z against time; error |z - z_MuJoCo| averaged over the steps;
- first bounce (`first_bounce`): the first step at which the object's vertical velocity lost less than
  `free_fall_fraction` of the g*dt that free fall loses in a step, i.e. the first sample after it touched
  anything (table, ramp, wall, another object), rebound or not; its height is the peak of z from that step
  until the vertical velocity stops being positive (the height at touchdown when it does not rebound);
- resting position: the centre at the last step; error in metres against MuJoCo's (3-D, xy and z);
- collisions: two objects in play collide when their centres come closer than the sum of their
  bounding-sphere radii (from the MJCF) plus `collision_tolerance` at some step.

Objects in play are those whose centre starts above `parked_below` in MuJoCo (Drop parks the others under
the table). The events are read in `drops.py`; `align` scores state arrays; `physics_alignment` runs the
rollouts, scores them and draws the height plot; `markdown` writes the report section.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError
from cosmos_sim.evaluation.drops import DropEvents, bounding_radius, events, falling_objects, first_bounce, gravity
from cosmos_sim.worlds import World, get_world

__all__ = ["AlignmentConfig", "DropEvents", "align", "bounding_radius", "events", "falling_objects", "first_bounce",
           "gravity", "markdown", "physics_alignment", "plot_heights", "rollouts", "targets"]  # the events: drops.py

SCHEMA = "cosmos_sim.physics_alignment/1"
BACKENDS = ("mujoco", "pybullet", "world_model")  # "mujoco" as a candidate is the self-check
NAMES = {"mujoco": "MuJoCo (itself)", "pybullet": "PyBullet", "world_model": "learned"}
COLORS = {"mujoco": "black", "pybullet": "#1f77b4", "world_model": "#d62728"}
ZOOM_MARGIN = 5  # steps the height plot shows past the last visible motion


@dataclass(frozen=True)
class AlignmentConfig:
    world: str = arg("Drop", "world name; it must declare falling_objects")
    episodes: int = arg(50, "passive drops; drop i starts from seed SEED+i in every backend")
    # MuJoCo's spheres roll on for seconds after they land: the world's whole episode lets them settle.
    steps: int | None = arg(None, "control steps per drop, enough to land and settle (none: the episode length)")
    seed: int = arg(1000, "first seed (outside the shipped models' collection seeds)")
    backends: tuple[str, ...] = arg(("pybullet", "world_model"), "backends compared with MuJoCo")
    camera: str | None = arg(None, "default or random camera (none: the mode the model was trained with)")
    image_size: int = arg(64, "frame size when no world model fixes it")
    parked_below: float = arg(-0.2, "m: objects whose centre starts lower are out of play")
    free_fall_fraction: float = arg(0.5, "a step is a touchdown when the object loses less than this share of "
                                         "the vertical speed free fall loses in a step (g*dt)")
    collision_tolerance: float = arg(0.005, "m added to the sum of two objects' bounding radii")
    rest_speed: float = arg(0.05, "m/s: an object slower than this at the last step is at rest")
    bounce_goal: float = arg(0.8, "target share of drops whose first bounce is within one step of MuJoCo's")
    resting_goal_ratio: float = arg(1.5, "target: learned resting error at most this many times PyBullet's")
    plot_drops: int = arg(4, "drops in the height plot, one panel each")
    device: str | None = arg(None, "device of the world model (none: cuda when available)")

    def __post_init__(self):
        world = get_world(self.world)
        object.__setattr__(self, "world", world.name)
        if self.steps is None:
            object.__setattr__(self, "steps", world.max_episode_steps)
        backends = (self.backends,) if isinstance(self.backends, str) else tuple(self.backends)
        object.__setattr__(self, "backends", backends)
        bad = [b for b in backends if b not in BACKENDS]
        if bad or not backends:
            raise InputError(f"backends must be a non-empty selection of {', '.join(BACKENDS)}; got {backends}")
        for name in ("episodes", "steps"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.steps <= world.max_episode_steps:
            raise InputError(f"steps must lie in 2..{world.max_episode_steps} (the world's episode length), "
                             f"got {self.steps}")
        if self.camera not in (None, "default", "random"):
            raise InputError(f"camera must be None, 'default' or 'random', got {self.camera!r}")
        if not 0.0 < self.free_fall_fraction < 1.0:
            raise InputError(f"free_fall_fraction must lie in (0, 1), got {self.free_fall_fraction}")
        for name in ("collision_tolerance", "rest_speed", "plot_drops"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        falling_objects(world)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


# --- scoring ----------------------------------------------------------------------------------------
def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _stats(values) -> dict:
    """Mean, median and 90th percentile of the finite values (None when there are none)."""
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": None, "median": None, "p90": None, "n": 0}
    return {"mean": _f(v.mean()), "median": _f(np.median(v)), "p90": _f(np.quantile(v, 0.9)), "n": int(len(v))}


def _share(flags) -> float | None:
    flags = np.asarray(flags, bool).reshape(-1)
    return _f(flags.mean()) if len(flags) else None


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _score(ref: DropEvents, other: DropEvents, active: np.ndarray, pair_active: np.ndarray, rest_speed: float
           ) -> dict:
    """One backend's events against MuJoCo's, over the objects (and pairs) in play."""
    E, on = active.shape[0], active
    dz = np.abs(other.z - ref.z)  # [E, T+1, K]
    height = dz.mean(1)
    curve = [_f(dz[:, t][on].mean()) if on.any() else None for t in range(dz.shape[1])]
    found_r, found_o = np.isfinite(ref.bounce_step), np.isfinite(other.bounce_step)
    both = found_r & found_o
    with np.errstate(invalid="ignore"):
        dstep = np.where(both, other.bounce_step - ref.bounce_step, np.nan)
    within = np.where(both, np.abs(np.nan_to_num(dstep)) <= 1, ~found_r & ~found_o)
    bounce_height = np.where(both, np.abs(other.bounce_height - ref.bounce_height), np.nan)
    d = other.rest - ref.rest
    rest3, rest_xy, rest_z = np.linalg.norm(d, axis=-1), np.linalg.norm(d[..., :2], axis=-1), np.abs(d[..., 2])
    tp = int((ref.collide & other.collide & pair_active).sum())
    fp = int((~ref.collide & other.collide & pair_active).sum())
    fn = int((ref.collide & ~other.collide & pair_active).sum())
    n_pairs = int(pair_active.sum())
    any_r = (ref.collide & pair_active).any(1)
    any_o = (other.collide & pair_active).any(1)

    def per_episode(v: np.ndarray) -> list:
        return [_f(v[e][active[e]].mean()) if active[e].any() else None for e in range(E)]

    drop_within = np.array([bool(within[e][active[e]].all()) for e in range(E)])
    return {
        "height": {"error_m": _stats(height[on]), "error_curve_m": curve},
        "bounce": {
            "episodes_within_one_step": _share(drop_within),
            "within_one_step": _share(within[on]),
            "found": _share(found_o[on]),
            "time_error_steps": _stats(np.abs(dstep[on])),
            "mean_signed_error_steps": _f(np.nanmean(dstep[on])) if both[on].any() else None,
            "height_error_m": _stats(bounce_height[on]),
        },
        "resting": {"error_m": _stats(rest3[on]), "xy_error_m": _stats(rest_xy[on]), "z_error_m": _stats(rest_z[on]),
                    "at_rest": _share(other.rest_speed[on] < rest_speed)},
        "collisions": {"pairs": n_pairs, "reference": tp + fn, "backend": tp + fp, "both": tp,
                       "agreement": _ratio(n_pairs - fp - fn, n_pairs), "precision": _ratio(tp, tp + fp),
                       "recall": _ratio(tp, tp + fn), "episode_agreement": _share(any_r == any_o)},
        "per_episode": {"bounce_within_one_step": [bool(x) for x in drop_within],
                        "height_error_m": per_episode(height), "resting_error_m": per_episode(rest3),
                        "collision_agrees": [bool(x) for x in any_r == any_o]},
    }


def align(world: str | World, ref: np.ndarray, others: dict[str, np.ndarray], config: AlignmentConfig,
          seeds: list[int] | None = None) -> dict:
    """Score each backend's states [E, T+1, S] in `others` against MuJoCo's `ref` (the same drops).

    Returns the JSON-ready result (without the plot's file name); see the module docstring for the metrics.
    """
    world = get_world(world)
    objects = falling_objects(world)
    ref = np.asarray(ref, np.float64)
    if ref.ndim != 3 or ref.shape[-1] != world.state_dim or ref.shape[1] < 2:
        raise InputError(f"reference states must be [E, T+1 >= 2, {world.state_dim}], got shape {ref.shape}")
    for name, s in others.items():
        if np.shape(s) != ref.shape:
            raise InputError(f"{name} states have shape {np.shape(s)}; the reference has {ref.shape}")
    radii = np.array([bounding_radius(world, o) for o in objects])
    L = world.state_layout
    active = np.stack([L.get(ref[:, 0], f"{o}_pos")[:, 2] > config.parked_below for o in objects], 1)  # [E, K]
    pairs = list(combinations(range(len(objects)), 2))
    pair_active = np.zeros((len(ref), len(pairs)), bool)
    for p, (i, j) in enumerate(pairs):
        pair_active[:, p] = active[:, i] & active[:, j]
    r = events(world, ref, radii, config)
    counts = active.sum(1)
    out: dict[str, Any] = {
        "schema": SCHEMA, "config": config.to_dict(), "world": world.name, "objects": list(objects),
        "bounding_radii_m": {o: float(x) for o, x in zip(objects, radii, strict=True)},
        "control_dt": world.control_dt, "episodes": int(len(ref)), "steps": int(ref.shape[1] - 1),
        "seeds": None if seeds is None else [int(s) for s in seeds],
        "reference": {
            "objects_in_play": int(active.sum()),
            "drops_by_objects_in_play": {str(n): int((counts == n).sum()) for n in range(1, len(objects) + 1)},
            "bounce_found": _share(np.isfinite(r.bounce_step)[active]),
            "rebound": _share(r.rebound[active]),
            "bounce_step": _stats(r.bounce_step[active]),
            "at_rest": _share(r.rest_speed[active] < config.rest_speed),
            "colliding_pairs": int((r.collide & pair_active).sum()),
            "drops_with_collision": int((r.collide & pair_active).any(1).sum()),
        },
        "backends": {},
    }
    for name, states in others.items():
        out["backends"][name] = _score(r, events(world, states, radii, config), active, pair_active, config.rest_speed)
    out["targets"] = targets(out, config)
    return out


def targets(result: dict, config: AlignmentConfig) -> dict:
    """The issue's goals for the learned world: first-bounce timing, and resting error against PyBullet's."""
    b = result["backends"]
    if "world_model" not in b:
        return {}
    share = b["world_model"]["bounce"]["episodes_within_one_step"]
    out = {"bounce_within_one_step": {"goal": config.bounce_goal, "value": share,
                                      "met": share is not None and share >= config.bounce_goal}}
    if "pybullet" in b:
        learned = b["world_model"]["resting"]["error_m"]["mean"]
        yard = b["pybullet"]["resting"]["error_m"]["mean"]
        ratio = None if learned is None or not yard else learned / yard
        met = ratio is not None and ratio <= config.resting_goal_ratio
        if learned is not None and yard == 0:
            met = learned == 0
        out["resting_error_ratio"] = {"goal": config.resting_goal_ratio, "value": ratio, "met": bool(met)}
    return out


# --- the rollouts -----------------------------------------------------------------------------------
def rollouts(config: AlignmentConfig, model: Any = None):
    """MuJoCo's passive drops (`Trajectories`) and each compared backend's run of the same drops.

    `model`: a WorldModel or its path ("pretrained": the world's shipped model), needed for "world_model".
    """
    from cosmos_sim.evaluation import open_loop as ol

    world = get_world(config.world)
    wm = None
    if "world_model" in config.backends:
        if model is None:
            raise InputError("backend 'world_model' needs a model (a path, 'pretrained' or a WorldModel)")
        from cosmos_sim.envs.world_model_env import resolve_device, resolve_model

        wm = resolve_model(model, world, None, resolve_device(config.device))
    camera = config.camera
    if camera is None and wm is not None and wm.info.get("camera") in ("random", "moving"):
        camera = "random"
    camera = None if camera == "default" else camera
    size = wm.image_size if wm is not None else config.image_size
    seeds = list(range(config.seed, config.seed + config.episodes))
    ref = ol.record(world, seeds, config.steps, "zero", camera, size)
    others = {}
    for name in config.backends:
        if name == "world_model":
            others[name] = ol.rollout_model(wm, ref, start="reset", seed=config.seed)
        else:
            others[name] = ol.replay(world, name, ref, camera)
    return ref, others


def physics_alignment(config: AlignmentConfig, model: Any = None, out: str | os.PathLike | None = None,
                      plot_name: str | None = None) -> dict:
    """Run the passive drops in every backend and score them against MuJoCo; with `out`, also write the
    height plot there (`plot_name`, by default `<world>_alignment_heights.png`; in result["files"])."""
    ref, others = rollouts(config, model)
    result = align(config.world, ref.states, {k: v.states for k, v in others.items()}, config, seeds=ref.seeds)
    result["files"] = {}
    if out is not None and config.plot_drops > 0:
        name = plot_name or f"{config.world.lower()}_alignment_heights.png"
        plot_heights(config.world, ref, others, Path(out) / name, drops=config.plot_drops, config=config)
        result["files"]["heights_plot"] = name
    return result


# --- plot and report --------------------------------------------------------------------------------
def plot_heights(world: str | World, ref, others: dict, path: str | os.PathLike, drops: int = 4,
                 config: AlignmentConfig | None = None) -> Path:
    """Height against time for the first `drops` drops, one panel each: MuJoCo and every compared backend,
    one line style per object in play, a dot at each first bounce."""
    from matplotlib.lines import Line2D

    from cosmos_sim.evaluation.plots import _plt, _save

    world = get_world(world)
    config = config or AlignmentConfig(world=world.name)
    objects = falling_objects(world)
    radii = np.array([bounding_radius(world, o) for o in objects])
    runs = {"mujoco": ref, **{k: v for k, v in others.items() if k != "mujoco"}}
    ev = {k: events(world, v.states, radii, config) for k, v in runs.items()}
    n = max(1, min(int(drops), ref.episodes))
    active = ev["mujoco"].z[:, 0] > config.parked_below  # [E, K]
    time = np.arange(ref.steps + 1) * world.control_dt
    # zoom to the motion: up to a few steps after the last plotted height change over a millimetre
    moving = [np.abs(np.diff(evs.z[:n], axis=1)).max((0, 2)) > 1e-3 for evs in ev.values()]
    last = int(np.flatnonzero(np.any(moving, 0)).max(initial=0)) + 1
    shown = min(ref.steps, last + ZOOM_MARGIN) + 1
    styles = ("-", "--", ":", "-.")
    plt = _plt()
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False, sharey=True)
    for e, ax in enumerate(axes[0]):
        for name, evs in ev.items():
            for k in np.flatnonzero(active[e]):
                ax.plot(time[:shown], evs.z[e, :shown, k], color=COLORS.get(name), ls=styles[k % len(styles)], lw=1.5)
                t = evs.bounce_step[e, k]
                if np.isfinite(t) and t < shown:
                    ax.plot(t * world.control_dt, evs.z[e, int(t), k], "o", color=COLORS.get(name), ms=4)
        seed = ref.seeds[e] if ref.seeds is not None else e
        ax.set_title(f"seed {seed}", fontsize=9)
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("centre height z (m)")
    handles = [Line2D([], [], color=COLORS.get(k), label="MuJoCo" if k == "mujoco" else NAMES.get(k, k))
               for k in runs]
    handles += [Line2D([], [], color="0.4", ls=styles[k % len(styles)], label=o) for k, o in enumerate(objects)]
    handles.append(Line2D([], [], color="0.4", marker="o", ls="", label="first bounce"))
    axes[0][-1].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(f"{world.name}: passive drops, height against time", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _cm(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _num(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(result: dict) -> list[str]:
    """The report section: a table per metric with PyBullet (the yardstick) beside the learned world."""
    cfg, ref, b = result["config"], result["reference"], result["backends"]
    names = list(b)
    hz = 1.0 / result["control_dt"]
    seeds = result.get("seeds") or []
    span = f", seeds {seeds[0]}..{seeds[-1]}" if seeds else ""
    lines = [f"## Physical alignment: passive drops ({result['world']})", "",
             f"{result['episodes']} drops, {ref['objects_in_play']} objects in play, {result['steps']} steps "
             f"({result['steps'] / hz:.1f} s at {hz:.0f} Hz) with zero action{span}. MuJoCo is the reference; "
             f"in MuJoCo {_num(ref['bounce_found'])} of the objects touched down, {_num(ref['rebound'])} rebounded, "
             f"{_num(ref['at_rest'])} were at rest at the end; colliding pairs: {ref['colliding_pairs']} "
             f"(in {ref['drops_with_collision']} of the drops).", "",
             "| vs MuJoCo | " + " | ".join(NAMES.get(n, n) for n in names) + " |",
             "|---|" + "---:|" * len(names)]

    def row(label: str, fn) -> None:
        lines.append(f"| {label} | " + " | ".join(fn(b[n]) for n in names) + " |")

    row("first bounce within one step, share of drops", lambda s: _num(s["bounce"]["episodes_within_one_step"]))
    row("first bounce within one step, share of objects", lambda s: _num(s["bounce"]["within_one_step"]))
    row("first-bounce time error, steps (mean / p90)", lambda s: f"{_num(s['bounce']['time_error_steps']['mean'])} / "
        f"{_num(s['bounce']['time_error_steps']['p90'])}")
    row("first-bounce height error, cm (mean)", lambda s: _cm(s["bounce"]["height_error_m"]["mean"]))
    row("height error over time, cm (mean)", lambda s: _cm(s["height"]["error_m"]["mean"]))
    row("resting-position error, cm (mean / median / p90)", lambda s: " / ".join(
        _cm(s["resting"]["error_m"][k]) for k in ("mean", "median", "p90")))
    row("resting xy error, cm (mean)", lambda s: _cm(s["resting"]["xy_error_m"]["mean"]))
    row("objects at rest at the end (share)", lambda s: _num(s["resting"]["at_rest"]))
    row("collision flag agrees, share of drops", lambda s: _num(s["collisions"]["episode_agreement"]))
    row("colliding pairs: precision / recall", lambda s: f"{_num(s['collisions']['precision'])} / "
        f"{_num(s['collisions']['recall'])}")
    lines.append("")
    t = result.get("targets") or {}
    goals = []
    if "bounce_within_one_step" in t:
        g = t["bounce_within_one_step"]
        goals.append(f"first bounce within one step in at least {100 * g['goal']:.0f} % of drops: "
                     f"{_num(None if g['value'] is None else 100 * g['value'], 0)} % "
                     f"({'met' if g['met'] else 'not met'})")
    if "resting_error_ratio" in t:
        g = t["resting_error_ratio"]
        goals.append(f"resting error at most {g['goal']:g}x PyBullet's: {_num(g['value'])}x "
                     f"({'met' if g['met'] else 'not met'})")
    if goals:
        lines += ["Targets for the learned world: " + "; ".join(goals) + ".", ""]
    plot = (result.get("files") or {}).get("heights_plot")
    if plot:
        lines += [f"![height against time]({plot})", ""]
    lines += [
        "- First bounce: the first step at which an object's vertical velocity lost less than "
        f"{cfg['free_fall_fraction']:g} of what free fall loses in a step (it touched the table, the ramp, a wall "
        "or another object); a drop agrees when each of its objects does so within one step of MuJoCo (or "
        "neither touches down). Bounce height: the peak after that step.",
        "- Resting position: the centre at the last step; error in cm against MuJoCo's.",
        "- Collisions: two objects in play whose centres came closer than the sum of their bounding-sphere radii "
        f"(from the MJCF) plus {100 * cfg['collision_tolerance']:g} cm; precision and recall over pairs, "
        "MuJoCo's as the truth.",
        "- PyBullet is the yardstick: a learned world near or under its errors is as close a twin of MuJoCo as "
        "a second physics engine.", ""]
    return lines
