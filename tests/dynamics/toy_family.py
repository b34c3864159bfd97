"""A toy dynamics family registered from outside the package (docs/adding-a-dynamics-family.md).

next = last + conv(last latent, next frame's rays) + linear(action) + noise * N(0, 1)

`register()` registers it; tests pop it from FAMILIES afterwards, so the suite runs the same twice
in one process or in any order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cosmos_sim.dynamics import FamilyConfig, SamplingOption, latent_shapes, register_family


@dataclass(frozen=True)
class ToyConfig(FamilyConfig):
    latent_channels: int = 4  # from the data (`latent_shapes`)
    latent_size: int = 4
    action_dim: int = 2
    context: int = 1
    horizon: int = 1
    width: int = 8
    noise: float = 0.0  # std of the noise on each prediction; the `noise` sampling option overrides it




PRESETS = {"tiny": {"width": 8}, "small": {"width": 32}}
SAMPLING = {"noise": SamplingOption(float, minimum=0)}


class ToyDynamics(nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = c = config
        self.net = nn.Sequential(nn.Conv2d(c.latent_channels + 6, c.width, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(c.width, c.latent_channels, 3, padding=1))
        self.action = nn.Linear(c.action_dim, c.latent_channels)

    def step(self, last: torch.Tensor, action: torch.Tensor, plucker: torch.Tensor) -> torch.Tensor:
        return last + self.net(torch.cat([last, plucker], 1)) + self.action(action)[:, :, None, None]

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        K, z = self.config.context, batch["latents"]
        mse = ((self.step(z[:, K - 1], batch["actions"][:, K - 1], batch["plucker"][:, K]) - z[:, K]) ** 2).mean()
        return mse, {"mse": mse.detach()}

    @torch.no_grad()
    def predict(self, past, past_plucker, action, plucker, generator=None, cache=None, *, noise=None):
        nxt = self.step(past[:, -1], action, plucker)
        std = self.config.noise if noise is None else noise
        if std > 0:
            nxt = nxt + std * torch.randn(nxt.shape, generator=generator, device=nxt.device)
        return nxt, None


def register() -> None:
    register_family("toy", ToyConfig, presets=PRESETS, config_for=latent_shapes, sampling=SAMPLING)(ToyDynamics)
