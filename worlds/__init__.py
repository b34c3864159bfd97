"""Worlds register by name; adding a world is one module plus its MJCF asset."""

from __future__ import annotations

from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.worlds.base import StateLayout, World
from cosmos_sim.worlds.drop import Drop
from cosmos_sim.worlds.push import Push
from cosmos_sim.worlds.reach import Reach

WORLDS: dict[str, type[World]] = {cls.name: cls for cls in (Push, Reach, Drop)}

__all__ = ["WORLDS", "World", "StateLayout", "get_world", "world_names", "Push", "Reach", "Drop"]


def world_names() -> list[str]:
    return list(WORLDS)


def get_world(name: str | World) -> World:
    """A world instance from its name, case-insensitive ("push" or "Push")."""
    if isinstance(name, World):
        return name
    for key, cls in WORLDS.items():
        if isinstance(name, str) and key.lower() == name.lower():
            return cls()
    raise UnknownChoiceError("world", name, [k.lower() for k in WORLDS])
