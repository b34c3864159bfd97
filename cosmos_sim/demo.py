"""`cosmos-sim demo`: the whole loop on one command — collect, train a world model, compare, report.

    collect Push episodes in MuJoCo (experts of mixed skill, contact-seeking exploration, noise)
      -> train the tokenizer, then the dynamics + state head (time-boxed)
      -> compare learned vs MuJoCo vs PyBullet: open loop, closed loop over a policy ladder, ranking
      -> DIR/report/report.md (+ report.json, plots, videos)

Each stage skips itself when its output is already there and resumes when it was cut short, so
re-running after an interruption continues. The "cpu" preset fits about 20 minutes on a 2-core
machine; "gpu" trains longer and bigger on a CUDA device.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cosmos_sim.errors import UnknownChoiceError


@dataclass(frozen=True)
class DemoConfig:
    world: str = "Push"
    episodes: int = 240  # collected episodes
    camera: str = "fixed"  # the demo model spends its few CPU minutes on dynamics, not on camera variation
    tokenizer_preset: str = "cv8"
    tokenizer_steps: int = 1250  # sized so the cosine schedule ends near the time box on a 2-core CPU
    tokenizer_minutes: float = 5.0
    tokenizer_batch: int = 16
    tokenizer_lr: float = 3e-3
    model: str = "deterministic"
    dynamics_preset: str = "small"
    dynamics_steps: int = 700
    dynamics_minutes: float = 6.0
    dynamics_batch: int = 32
    dynamics_lr: float = 1e-3
    compare_episodes: int = 50
    open_loop_episodes: int = 16
    horizon: int = 32
    policies: str = "ladder"
    seed: int = 0
    workers: int = 2
    device: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "cpu": DemoConfig(),
    "gpu": DemoConfig(episodes=1000, tokenizer_steps=20000, tokenizer_minutes=15.0, tokenizer_batch=64,
                      dynamics_steps=20000, dynamics_minutes=20.0, dynamics_batch=128, compare_episodes=100,
                      device="cuda"),
    "smoke": DemoConfig(episodes=8, tokenizer_preset="tiny", tokenizer_steps=10, dynamics_preset="tiny",
                        dynamics_steps=10, compare_episodes=3, open_loop_episodes=2, horizon=4,
                        policies="random,scripted:1", workers=1),
}


def demo_config(preset: str, **overrides) -> DemoConfig:
    if preset not in PRESETS:
        raise UnknownChoiceError("demo preset", preset, PRESETS)
    return DemoConfig(**{**PRESETS[preset].to_dict(), **{k: v for k, v in overrides.items() if v is not None}})


def run_demo(config: DemoConfig, out: str | Path, progress: bool = True, log=print) -> dict:
    from cosmos_sim.data import CollectConfig, collect
    from cosmos_sim.dynamics.train import train_dynamics
    from cosmos_sim.evaluation.compare import CompareConfig, compare
    from cosmos_sim.tokenizer import preset
    from cosmos_sim.tokenizer.train import train_tokenizer
    from cosmos_sim.training import TrainConfig
    from cosmos_sim.world_model import FILE
    from cosmos_sim.worlds import get_world

    out = Path(out)
    world = get_world(config.world)
    compare_cfg = CompareConfig(world=world.name, policies=(config.policies,), episodes=config.compare_episodes,
                                seed=config.seed, open_loop_episodes=config.open_loop_episodes,
                                horizon=config.horizon, device=config.device)  # checked before any work
    preset(config.tokenizer_preset)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n")
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    log(f"[1/4] collecting {config.episodes} {world.name} episodes (MuJoCo, mixed-skill experts) -> {out / 'data'}")
    collect(CollectConfig(world=world.name, policy="mix", skill=(0.3, 1.0), episodes=config.episodes,
                          base_seed=10_000 + config.seed, camera=config.camera, workers=config.workers),
            out / "data", progress=progress)
    times["collect_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tok_dir = out / "tokenizer"
    if not (tok_dir / "result.json").is_file():
        log(f"[2/4] training the {config.tokenizer_preset} tokenizer for up to {config.tokenizer_minutes:g} min")
        steps = config.tokenizer_steps
        tc = TrainConfig(steps=steps, batch_size=config.tokenizer_batch, lr=config.tokenizer_lr,
                         warmup_steps=min(200, steps // 10), time_limit_s=config.tokenizer_minutes * 60,
                         checkpoint_every=max(10, steps // 8), ema_decay=0.995, log_every=50, seed=config.seed)
        train_tokenizer(out / "data", tok_dir, preset(config.tokenizer_preset), tc, progress=progress,
                        resume=(tok_dir / "checkpoints").is_dir(), device=config.device)
    else:
        log("[2/4] tokenizer already trained")
    times["tokenizer_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dyn_dir = out / "dynamics"
    if not (out / FILE).is_file():
        log(f"[3/4] training {config.model} dynamics ({config.dynamics_preset}) + state head for up to "
            f"{config.dynamics_minutes:g} min")
        steps = config.dynamics_steps
        tc = TrainConfig(steps=steps, batch_size=config.dynamics_batch, lr=config.dynamics_lr,
                         warmup_steps=min(200, steps // 10), time_limit_s=config.dynamics_minutes * 60,
                         checkpoint_every=max(10, steps // 8), log_every=50, seed=config.seed)
        r = train_dynamics(out / "data", tok_dir, dyn_dir, config.model, config.dynamics_preset, tc,
                           progress=progress, resume=(dyn_dir / "checkpoints").is_dir(), device=config.device)
        shutil.copyfile(r["world_model"], out / FILE)
    else:
        log("[3/4] world model already trained")
    times["dynamics_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"[4/4] comparing learned vs MuJoCo vs PyBullet ({len(compare_cfg.policies)} policies x "
        f"{config.compare_episodes} episodes per backend) -> {out / 'report'}")
    report = compare(compare_cfg, out / FILE, out / "report", progress=progress)
    times["compare_s"] = time.perf_counter() - t0
    (out / "demo_timing.json").write_text(json.dumps(times, indent=1) + "\n")
    return {"report": report, "times": times, "out": str(out)}


def summary_lines(result: dict) -> list[str]:
    """The few numbers a reader wants first, and where the files are."""
    rep, out = result["report"], Path(result["out"])
    ol, rk = rep["open_loop"], rep["ranking"]
    lines = []
    steps = [s for s in (1, 4, 16, 32) if s <= ol["steps"][-1]]
    entry = ol.get("position_entry")
    for name, label in (("world_model", "learned "), ("pybullet", "PyBullet")):
        if name not in ol["pairs"]:
            continue
        p = ol["pairs"][name]
        txt = "  ".join(f"t={s}: {p['psnr']['mean'][s - 1]:.1f} dB" for s in steps)
        if entry:
            txt += "  | " + entry + " error " + " ".join(f"{p[f'state_error/{entry}']['mean'][s - 1] * 100:.1f}cm"
                                                      for s in steps)
        lines.append(f"  open loop vs MuJoCo, {label}: {txt}")
    for name, label in (("world_model", "learned "), ("pybullet", "PyBullet")):
        if name in rk["pairs"]:
            p = rk["pairs"][name]
            rho = p["success"]["spearman"]
            lines.append(f"  ranking vs MuJoCo, {label}: Spearman rho {rho if rho is None else round(rho, 3)}, "
                         f"success-rate MAE {p['success_mae_points']:.1f} points")
    nan = float("nan")
    lines.append("  policy success rates (MuJoCo / PyBullet / learned): " + ", ".join(
        f"{r['policy']} {r['mujoco']:.0f}/{r.get('pybullet', nan):.0f}/{r.get('world_model', nan):.0f}"
        for r in rk["rows"]))
    t = result["times"]
    lines.append(f"  time: collect {t['collect_s']:.0f}s, tokenizer {t['tokenizer_s']:.0f}s, dynamics "
                 f"{t['dynamics_s']:.0f}s, compare {t['compare_s']:.0f}s")
    lines.append(f"Report: {out / 'report' / 'report.md'} (plots horizon.png, ranking.png; videos "
                 f"{', '.join(rep['files']['videos'])})")
    world = rep["config"]["world"]
    lines.append(f"World model: {out / 'world_model.safetensors'} -> gym.make('cosmos_sim/{world}-v0', "
                 f"backend='world_model', model='{out}')")
    return lines
