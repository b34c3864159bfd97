"""Rebuild the suite's tiny world models: `python tests/assets/build.py` (seeded; about a minute on 2 CPU cores).

The fast tests that need a trained model load these files instead of training one, so `make test-fast`
trains nothing and every machine loads the same weights (a model trained in the suite would differ by the
machine's floating point). Rebuild them when a change to a world, the model format or the training code
makes the suite refuse them (tests/conftest.py says so); commit the rebuild.

- `tiny_push.safetensors`: Push at 32x32, deterministic family, tiny presets, 6 episodes.
- `pointmass_twin.safetensors`: the learned twin of tests/twins/pointmass.py (reward, termination and
  success heads), 32x32, 30 episodes.

Both are saved in half precision; each file's `info["test_asset"]` records how it was made. The datasets
they were trained on are not kept: collection is deterministic, so the fixtures collect them again (no
training) with `PUSH_DATA` / `TWIN_DATA`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TINY_PUSH = HERE / "tiny_push.safetensors"
POINTMASS_TWIN = HERE / "pointmass_twin.safetensors"
COMMAND = "python tests/assets/build.py"
TWIN_ID = "cosmos_test/PointMass-v0"

# The collections both the builder and the fixtures make (the fixtures' copies train nothing).
PUSH_DATA = dict(world="push", policy="mix", skill=(0.3, 1.0), image_size=32, episodes=6)
TWIN_DATA = dict(world=f"env:{TWIN_ID}", policy="random,explore", image_size=32, episodes=30)


def _seeded() -> None:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)


def _stamp(run: Path, out: Path, what: str) -> Path:
    from cosmos_sim.world_model import WorldModel

    model = WorldModel.load(run)
    model.info["test_asset"] = {"built_by": COMMAND, "what": what}
    return model.save(out, half=True)


def build_tiny_push(out: Path = TINY_PUSH) -> Path:
    from cosmos_sim.data import CollectConfig, collect
    from cosmos_sim.dynamics.train import train_dynamics
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.training import TrainConfig

    _seeded()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        collect(CollectConfig(**PUSH_DATA), root / "data", progress=False)
        train_tokenizer(root / "data", root / "tok", preset("tiny", 32), TrainConfig(steps=15, batch_size=4),
                        progress=False)
        train_dynamics(root / "data", root / "tok", root / "dyn", "deterministic", "tiny",
                       TrainConfig(steps=20, batch_size=8, lr=3e-3, warmup_steps=2), progress=False)
        return _stamp(root / "dyn", out, "Push 32x32, deterministic tiny: tokenizer 15 steps, dynamics 20 steps")


def build_pointmass_twin(out: Path = POINTMASS_TWIN) -> Path:
    from cosmos_sim.data import CollectConfig, collect
    from cosmos_sim.dynamics.train import StateModelConfig, train_dynamics
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.training import TrainConfig

    from twins import pointmass

    pointmass.register()
    _seeded()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        collect(CollectConfig(**TWIN_DATA), root / "data", progress=False)
        train_tokenizer(root / "data", root / "tok", preset("tiny", 32), TrainConfig(steps=10, batch_size=4),
                        progress=False)
        train_dynamics(root / "data", root / "tok", root / "run", "deterministic", "tiny",
                       TrainConfig(steps=10, batch_size=8, lr=3e-3, warmup_steps=2), progress=False,
                       state=StateModelConfig(steps=600, task_steps=800))
        return _stamp(root / "run", out, "PointMass twin 32x32: state 600, task heads 800, dynamics 10 steps")


class StaleAsset(RuntimeError):
    """An asset built for another definition of its world."""


def install(asset: Path, run: os.PathLike) -> Path:
    """Copy an asset into a run directory (as world_model.safetensors), refusing one its world outgrew."""
    from cosmos_sim.world_model import WorldModel
    from cosmos_sim.worlds import get_world

    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    model = WorldModel.load(asset)
    recorded = model.info.get("world_hash")
    if recorded is not None and not get_world(model.world).accepts_hash(recorded):
        raise StaleAsset(f"{asset.name} was built for another definition of {model.world}: rebuild it with "
                         f"`{COMMAND}` and commit the result")
    shutil.copyfile(asset, run / "world_model.safetensors")
    return run


def main() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    sys.path.insert(0, str(HERE.parent))  # the test helpers (twins.pointmass)
    for build in (build_tiny_push, build_pointmass_twin):
        path = build()
        print(f"{path.relative_to(HERE.parent.parent)}: {path.stat().st_size / 2**20:.2f} MB")


if __name__ == "__main__":
    main()
