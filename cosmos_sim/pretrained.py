"""Hugging Face conventions for world models: `save_pretrained(dir)` writes `config.json`, `model.safetensors`
and a model card (`README.md`) with the training facts; `from_pretrained(dir_or_repo)` reads a directory, or
downloads a hub repo id ("owner/name") through `huggingface_hub` (an optional package) when one is named.
Nothing is downloaded unless the caller names a repo.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from cosmos_sim.errors import CheckpointError, MissingPathError
from cosmos_sim.fileio import atomic_write_bytes, atomic_write_json

WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def model_card(model) -> str:
    """A model card: what the model is, how it was trained, its held-out figures, and how to use it."""
    from cosmos_sim.worlds.base import GYM_ENV, world_kind

    info = model.info
    is_env = world_kind(str(model.world)) == GYM_ENV
    use = ('gym.make("cosmos_sim/Learned-v0", model=WorldModel.from_pretrained(PATH))' if is_env else
           f'gym.make("cosmos_sim/{model.world}-v0", backend="world_model", model=WorldModel.from_pretrained(PATH))')
    facts = {k: info[k] for k in ("data", "preset", "steps", "backend", "camera", "world_hash", "task_metrics")
             if k in info}
    return "\n".join([
        "---", "library_name: cosmos_sim", "tags: [world-model, gymnasium, robotics]", "---", "",
        f"# cosmos_sim world model: {model.world}", "",
        f"A learned twin of `{model.world}`: a causal video tokenizer plus `{model.family}` latent dynamics "
        f"and a state model, {model.image_size}x{model.image_size} frames, {model.action_dim} actions.", "",
        "## Use", "", "```python", "import gymnasium as gym", "import cosmos_sim",
        "from cosmos_sim.world_model import WorldModel", f"env = {use}", "```", "",
        "## How it was trained", "", "```json", json.dumps(facts, indent=1, default=str), "```", ""])


def save_pretrained(model, directory: str | os.PathLike, half: bool = False) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    model.save(d / WEIGHTS, half=half)
    atomic_write_json(d / CONFIG, {"format": "cosmos_sim.world_model", **model.metadata()})
    atomic_write_bytes(d / CARD, model_card(model).encode())
    return d


def resolve_pretrained(name_or_path: str | os.PathLike, revision: str | None = None) -> Path:
    """The weights file of a pretrained directory or hub repo id (downloaded only then)."""
    p = Path(name_or_path)
    if p.is_dir():
        for name in (WEIGHTS, "world_model.safetensors"):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p} holds no {WEIGHTS} (write one with model.save_pretrained(DIR))")
    if p.is_file():
        return p
    if not REPO_ID.fullmatch(str(name_or_path)):
        raise MissingPathError(f"no pretrained world model at {str(name_or_path)!r} (a directory, a file, or a "
                                "hub repo id such as 'owner/name')")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(f"{name_or_path!r} looks like a hub repo id: downloading it needs huggingface_hub "
                              "(pip install huggingface_hub)") from None
    local = snapshot_download(repo_id=str(name_or_path), revision=revision, allow_patterns=[WEIGHTS, CONFIG, CARD])
    return resolve_pretrained(local)


def from_pretrained(cls: Any, name_or_path: str | os.PathLike, revision: str | None = None, **load_kwargs):
    return cls.load(resolve_pretrained(name_or_path, revision), **load_kwargs)
