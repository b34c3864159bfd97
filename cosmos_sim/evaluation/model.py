"""The world model a report evaluates: loaded and checked against the world first, and described for the report.

The bottom of the evaluation package: the comparisons (`compare`, `compare_data`) and the closed loop
(`closed_loop.run_evaluation`) all load their model here, so none of them imports another for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cosmos_sim.worlds import get_world


def load_checked_model(model: Any, world: str, device: str | None):
    """Load (or check) the world model first, so a wrong path or world fails before any work."""
    from cosmos_sim.device import resolve_device
    from cosmos_sim.envs.world_model_env import resolve_model

    return resolve_model(model, get_world(world), None, resolve_device(device))


def model_summary(wm, model: Any) -> dict | None:
    """A report's "model" part: where the model came from (shipped ones by name, the same on every machine),
    its family, frame size, trained cameras, size and training info; None without a model."""
    from cosmos_sim.zoo import models_dir

    if wm is None:
        return None
    path = wm.source or (str(model) if isinstance(model, (str, os.PathLike)) else None)
    if path is not None and Path(path).resolve().parent == models_dir().resolve():
        path = f"pretrained (cosmos_sim/models/{Path(path).name})"  # the same on every machine
    return {"path": path, "world": wm.world,
            "family": wm.family, "image_size": wm.image_size,
            "cameras": wm.camera_coverage(get_world(wm.world)).describe(),
            "dynamics_parameters": int(sum(p.numel() for p in wm.dynamics.parameters())),
            "tokenizer": wm.tokenizer.config.to_dict(), "info": json.loads(json.dumps(wm.info, default=str))}
