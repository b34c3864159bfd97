"""The model zoo: a learned twin of every world, shipped with the package and rebuilt from nothing.

A `Recipe` says how a world's twin is made: the episodes collected (policy mix, skill range, random
in-range cameras, so any in-range pose works), the tokenizer and dynamics presets and their steps.
`build(world)` runs it seeded and writes `cosmos_sim/models/<world>.safetensors` in half precision;
the file's metadata records the recipe, the dataset's command line and manifest hash, the steps,
the device, the package version and the world's definition hash, so a changed world is caught
(`check_shipped`) and the model rebuilt. `backend="world_model"` without `model=` loads it.

Steps are fixed rather than time-boxed, so a rebuild with the same seed trains the same schedule
on any machine (CPU and GPU differ only by floating-point rounding).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cosmos_sim.camera import CameraCoverage
from cosmos_sim.config import arg
from cosmos_sim.errors import CheckpointError, InputError
from cosmos_sim.shipped import models_dir, pretrained_path, shipped_path, shipped_worlds  # noqa: F401
from cosmos_sim.worlds import World, get_world

PRETRAINED = "pretrained"
# headline figures kept beside each shipped model (`<world>.json`, written by benchmarks/zoo.py report)
FIGURES = {"psnr_16": "PSNR@16 dB", "state_error_16_cm": "err@16 cm", "spearman": "rho", "success_mae": "MAE pts"}


@dataclass(frozen=True)
class Recipe:
    """How one world's shipped model is made (see the module docstring)."""

    world: str = arg("Push", "world name")
    episodes: int = arg(400, "episodes collected in MuJoCo")
    policy: str = arg("mix", "collection policy (mix: experts of varied skill, contact-seeking exploration, noise)")
    skill: tuple[float, float] = arg((0.3, 1.0), "expert skill range, drawn per episode")
    camera: str = arg("random", "camera per episode: random in-range poses, so the model obeys any of them")
    image_size: int = arg(64, "frame size")
    data_seed: int = arg(10_000, "episode i uses seed DATA_SEED + i")
    tokenizer: str = arg("cv8", "tokenizer preset")
    tokenizer_steps: int = arg(2500, "tokenizer optimizer steps")
    tokenizer_batch: int = arg(16, "tokenizer batch size")
    tokenizer_lr: float = arg(3e-3, "tokenizer peak learning rate")
    family: str = arg("deterministic", "dynamics family")
    preset: str = arg("small", "dynamics preset")
    dynamics_steps: int = arg(1500, "dynamics optimizer steps")
    dynamics_batch: int = arg(32, "dynamics batch size")
    dynamics_lr: float = arg(1e-3, "dynamics peak learning rate")
    # the state model's fields (`state_config`), flat so a recorded recipe reads as it was written
    state_steps: int = arg(4000, "state-model updates before the latent training")
    state_episodes: int = arg(0, "extra episodes of states alone (cheap: nothing rendered) for the state model")
    state_model: str = arg("mlp", "state model: mlp, or objects (an interaction network over like objects)")
    state_members: int = arg(1, "members of an ensemble state model (mlp only; >1 reports uncertainty)")
    seed: int = arg(0, "seed of both trainings")

    def __post_init__(self):
        object.__setattr__(self, "world", get_world(self.world).name)
        object.__setattr__(self, "skill", tuple(float(s) for s in self.skill))
        for name in ("episodes", "tokenizer_steps", "dynamics_steps", "tokenizer_batch", "dynamics_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"recipe {name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def collect_config(self, workers: int = 1):
        from cosmos_sim.data import CollectConfig

        return CollectConfig(world=self.world, policy=self.policy, skill=self.skill, episodes=self.episodes,
                             base_seed=self.data_seed, camera=self.camera, image_size=self.image_size,
                             workers=workers)

    def state_config(self):
        """The `StateModelConfig` of the dynamics training (its other fields at their defaults)."""
        from cosmos_sim.dynamics.train import StateModelConfig

        return StateModelConfig(model=self.state_model, members=self.state_members, steps=self.state_steps,
                                episodes=self.state_episodes)

    def collect_command(self) -> str:
        """The `cosmos-sim collect` line that records the same dataset."""
        lo, hi = self.skill
        return (f"cosmos-sim collect --world {self.world.lower()} --policy {self.policy} --skill {lo:g}:{hi:g} "
                f"--episodes {self.episodes} --seed {self.data_seed} --camera {self.camera} "
                f"--image-size {self.image_size} --out DIR")

    def train_configs(self):
        """(tokenizer, dynamics) TrainConfigs: warm-up a tenth of the steps (at most 200), 8 checkpoints."""
        from cosmos_sim.training import TrainConfig

        def stage(steps: int, batch: int, lr: float, **kw) -> TrainConfig:
            return TrainConfig(steps=steps, batch_size=batch, lr=lr, warmup_steps=min(200, steps // 10),
                               checkpoint_every=max(10, steps // 8), log_every=50, seed=self.seed, **kw)

        return (stage(self.tokenizer_steps, self.tokenizer_batch, self.tokenizer_lr, ema_decay=0.995),
                stage(self.dynamics_steps, self.dynamics_batch, self.dynamics_lr))


# Per world: how its shipped model is made (fields not named take the Recipe defaults).
# The state model decides rewards, success and so every closed-loop figure: it gets many more (state-only,
# cheap) episodes than the frames, and more updates.
RECIPES: dict[str, Recipe] = {
    "Push": Recipe("Push", episodes=500, state_episodes=3000, state_steps=8000),
    "Reach": Recipe("Reach", episodes=300, state_episodes=2000, state_steps=6000),
    # falls, bounces and collisions: three like objects, so the object-centric state model (one network
    # learns every pair's collisions); it costs more per update than the MLP, hence fewer updates
    "Drop": Recipe("Drop", episodes=800, state_episodes=6000, state_steps=6000, state_model="objects"),
}


def recipe(world: str | World) -> Recipe:
    """The world's recipe; a world without one (e.g. a user's) gets the defaults."""
    name = get_world(world).name
    return RECIPES.get(name, Recipe(name))


# --- shipped models (where they are: cosmos_sim/shipped.py) ------------------------------------------
def shipped_info(world: str | World) -> dict[str, Any]:
    """What `cosmos-sim models` shows: training facts from the file's metadata, headline figures beside it."""
    from cosmos_sim.training.checkpoint import read_metadata

    path = pretrained_path(world)
    meta = read_metadata(path)
    figures = path.with_suffix(".json")
    return {"world": meta["world"], "path": str(path), "megabytes": round(path.stat().st_size / 2**20, 2),
            "family": meta["family"], "image_size": meta["image_size"], "info": meta.get("info", {}),
            "members": int(meta.get("state_head_config", {}).get("members", 1)),  # > 1: it reports uncertainty
            "render_head": bool(meta.get("dynamics_config", {}).get("render", False)),
            "figures": json.loads(figures.read_text()) if figures.is_file() else None}


def models_table(infos: list[dict]) -> str:
    """`cosmos-sim models`: one row per shipped model, its training facts and headline figures."""
    from cosmos_sim.text import format_table

    rows = []
    for d in infos:
        i, f = d["info"], d["figures"] or {}
        rows.append([d["world"].lower(), d["family"], d["members"], f"{d['megabytes']:g}",
                     i.get("recipe", {}).get("episodes", "?"),
                     f"{i.get('tokenizer_steps', '?')}/{i.get('dynamics_steps', '?')}", i.get("device", "?"),
                     *(f"{f[k]:.2f}" if isinstance(f.get(k), (int, float)) else "-" for k in FIGURES),
                     camera_training(i, d.get("render_head", False)),
                     CameraCoverage.from_info(i, get_world(d["world"])).describe()])
    return format_table(["world", "family", "members", "MB", "episodes", "steps tok/dyn", "device", *FIGURES.values(),
                         "camera training", "trained cameras"], rows)


def camera_training(info: dict, render_head: bool) -> str:
    """How a model learned its cameras: views per frame, cross-view targets, the state renderer."""
    views = int(info.get("views", 1))
    return ", ".join([f"{views} view{'s' if views > 1 else ''}", *(["cross-view"] if info.get("cross_view") else []),
                      *(["render head"] if render_head else [])])


def check_shipped(world: str | World) -> None:
    """Raise CheckpointError when the shipped model was trained on another version of the world."""
    w = get_world(world)
    recorded = shipped_info(w)["info"].get("world_hash")
    if not w.accepts_hash(recorded):
        raise CheckpointError(f"the shipped {w.name} model was trained on world definition {recorded}, the "
                              f"installed world is {w.definition_hash()}: rebuild it (benchmarks/zoo.py build "
                              f"--worlds {w.name.lower()})")


# --- building ------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(world: str | World, work: str | os.PathLike = "zoo_out", out: str | os.PathLike | None = None,
          device: str | None = None, workers: int = 2, progress: bool = True, log=print,
          recipe_override: Recipe | None = None) -> Path:
    """Collect, train and export one world's model (resumes a build cut short: `work/<world>/`).

    Writes `out` (default: the package's shipped path) in half precision with the build's facts in
    its metadata; returns the path.
    """
    import torch

    from cosmos_sim.data import EpisodeDataset, collect
    from cosmos_sim.data.shards import MANIFEST
    from cosmos_sim.device import resolve_device
    from cosmos_sim.dynamics.train import train_world_model
    from cosmos_sim.version import __version__
    from cosmos_sim.world_model import WorldModel

    r = recipe_override or recipe(world)
    w = get_world(r.world)
    root = Path(work) / w.name.lower()
    dev = resolve_device(device)
    t0 = time.perf_counter()
    log(f"{w.name}: collecting {r.episodes} episodes -> {root / 'data'}")
    collect(r.collect_config(workers), root / "data", progress=progress)
    tok_train, dyn_train = r.train_configs()
    trained = train_world_model(root / "data", root, r.tokenizer, r.family, r.preset, tokenizer_train=tok_train,
                                dynamics_train=dyn_train, resume=True, device=dev, progress=progress,
                                log=lambda msg: log(f"{w.name}: {msg}"), state=r.state_config())
    model = WorldModel.load(trained["world_model"])
    model.info = model.info | {
        "recipe": r.to_dict(), "dataset_command": r.collect_command(),
        "dataset_manifest_sha256": _sha256(root / "data" / MANIFEST),
        "dataset_sha256": EpisodeDataset(root / "data").digest(), "tokenizer_steps": r.tokenizer_steps,
        "dynamics_steps": r.dynamics_steps, "device": str(dev), "cosmos_sim_version": __version__,
        "torch": torch.__version__, "machine": platform.machine(), "world_hash": w.definition_hash(),
        "build_seconds": round(time.perf_counter() - t0, 1)}
    path = model.save(out or shipped_path(w), half=True)
    log(f"{w.name}: wrote {path} ({path.stat().st_size / 2**20:.1f} MB)")
    return path


def with_steps(r: Recipe, scale: float) -> Recipe:
    """The recipe with every step count scaled (a quick build for tests and trials)."""
    return replace(r, tokenizer_steps=max(1, round(r.tokenizer_steps * scale)),
                   dynamics_steps=max(1, round(r.dynamics_steps * scale)),
                   state_steps=max(1, round(r.state_steps * scale)), state_episodes=round(r.state_episodes * scale))


def models_command(as_json: bool = False) -> str:
    """What `cosmos-sim models` prints: a table of the shipped models, or their full facts as JSON."""
    infos = [shipped_info(w) for w in shipped_worlds()]
    return json.dumps(infos, indent=2) if as_json else models_table(infos)
