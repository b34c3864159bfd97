"""Worlds register themselves by name; adding a world is one module plus its MJCF asset (docs/adding-a-world.md)."""

from __future__ import annotations

from cosmos_sim.worlds.base import (
    WORLDS,
    StateLayout,
    World,
    get_world,
    register_world,
    unregister_world,
    watch_worlds,
    world_list,
    world_names,
)

# isort: off
# Import order is registry order: Push, Reach, Drop (lists and tables follow it).
from cosmos_sim.worlds.push import Push
from cosmos_sim.worlds.reach import Reach
from cosmos_sim.worlds.drop import Drop
# isort: on
from cosmos_sim.worlds.dataset import DatasetWorld  # also lets get_world("lerobot:...") resolve

__all__ = ["WORLDS", "World", "StateLayout", "get_world", "world_names", "register_world", "unregister_world",
           "watch_worlds", "world_list", "Push", "Reach", "Drop", "DatasetWorld"]
