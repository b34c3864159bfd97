"""Latent dynamics families: deterministic baseline, EDM diffusion DiT, autoregressive FSQ transformer.

Each family is one module that registers itself (see `base.register_family` and
docs/adding-a-dynamics-family.md).
"""

from cosmos_sim.dynamics import autoregressive, deterministic, diffusion  # noqa: F401  (register families)
from cosmos_sim.dynamics.base import (
    FAMILIES,
    Family,
    FamilyConfig,
    SamplingOption,
    build_dynamics,
    get_family,
    latent_shapes,
    register_family,
)

__all__ = ["FAMILIES", "Family", "FamilyConfig", "SamplingOption", "build_dynamics", "get_family", "latent_shapes",
           "register_family"]
