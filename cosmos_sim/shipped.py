"""Where each world's shipped model lies (package data, `cosmos_sim/models/<world>.safetensors`).

Below `zoo` (which builds the models and imports most of the package) so that the learned env finds a
shipped model without importing what builds one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.worlds import World, get_world


def models_dir() -> Path:
    return Path(str(resources.files("cosmos_sim") / "models"))


def shipped_path(world: str | World) -> Path:
    return models_dir() / f"{get_world(world).name.lower()}.safetensors"


def shipped_worlds() -> list[str]:
    """Names of the worlds (in registry order) that have a shipped model."""
    from cosmos_sim.worlds import WORLDS

    return [name for name in WORLDS if shipped_path(name).is_file()]


def pretrained_path(world: str | World) -> Path:
    """The shipped model of `world`; a world without one is an error naming those that have one."""
    w = get_world(world)
    path = shipped_path(w)
    if not path.is_file():
        have = [n.lower() for n in shipped_worlds()]
        raise UnknownChoiceError(f"shipped world model (none for {w.name.lower()}; build one with "
                                 "`python benchmarks/zoo.py build --worlds " + w.name.lower() + "`)",
                                 w.name.lower(), have)
    return path
