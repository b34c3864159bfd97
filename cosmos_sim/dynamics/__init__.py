"""Latent dynamics families: deterministic baseline, EDM diffusion DiT, autoregressive FSQ transformer.

Each family is one module that registers itself (see `base.register_family`).
"""

from cosmos_sim.dynamics import autoregressive, deterministic, diffusion  # noqa: F401  (register families)
from cosmos_sim.dynamics.base import FAMILIES, build_dynamics, register_family

__all__ = ["FAMILIES", "build_dynamics", "register_family"]
