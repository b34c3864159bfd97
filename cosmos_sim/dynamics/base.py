"""What every latent dynamics family shares: the batch layout, the step interface, the registry.

Latents come from a frozen tokenizer: one latent per control step, `[D, h, w]`. Conditioning:
- actions `[A]` for the step from frame t to t+1 (a WorldModel passes the action in [-1, 1]
  followed by the normalized state it leads to, so a family's `action_dim` is the world's A + S);
- the camera of each frame as Plücker rays at latent resolution `[6, h, w]` (Cosmos concatenates
  them as channels), so a family sees the pose it must render the next frame from.

Training batches (`LatentWindows` items, stacked):
    latents [B, L, D, h, w]   frames t-K+1 .. t+L-K (K = context, L = config.window: K + horizon,
                              or longer where a part of the family trains further ahead)
    actions [B, L-1, A]       actions between consecutive frames
    plucker [B, L, 6, h, w]   camera rays of every frame
A family's `training_loss(batch)` predicts frames K..L-1 (teacher forcing and/or its own rollouts)
and returns (loss, metrics). Its `predict(past, past_plucker, action, plucker, generator, cache)`
gives the next latent `[B, D, h, w]` from the last K latents; `cache` is an opaque per-family
object carried across env steps (the autoregressive KV cache), None for families without one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from cosmos_sim.errors import UnknownChoiceError


class Dynamics(Protocol):
    family: str
    config: Any  # a frozen dataclass with to_dict() / from_dict() and a `window` property (frames per batch)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]: ...

    def predict(self, past: torch.Tensor, past_plucker: torch.Tensor, action: torch.Tensor,
                plucker: torch.Tensor, generator: torch.Generator | None = None,
                cache: Any = None) -> tuple[torch.Tensor, Any]: ...


# family name -> (config class, model class); one module per family registers itself here.
FAMILIES: dict[str, tuple[type, type[nn.Module]]] = {}


def register_family(name: str, config_cls: type) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def wrap(cls):
        cls.family = name
        FAMILIES[name] = (config_cls, cls)
        return cls

    return wrap


def build_dynamics(family: str, config: dict | Any) -> nn.Module:
    import cosmos_sim.dynamics  # noqa: F401  (registers the families)

    if family not in FAMILIES:
        raise UnknownChoiceError("dynamics model", family, FAMILIES)
    cfg_cls, cls = FAMILIES[family]
    cfg = cfg_cls.from_dict(config) if isinstance(config, dict) else config
    return cls(cfg)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of scalars `t` [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
