"""Small observation encoders shared by the trained policies (BC, PPO).

Observations arrive as a dict of batched tensors: `pixels` uint8 [N, H, W, 3] and/or `state`
float [N, S]. Pixels go through a small CNN (scaled to [0, 1] inside), states through an MLP;
with both, the features are concatenated.
"""

from __future__ import annotations

import torch
from torch import nn

from cosmos_sim.errors import InputError


class PixelEncoder(nn.Module):
    def __init__(self, image_size: int, width: int = 32, features: int = 256):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Flatten())
        with torch.no_grad():
            n = self.conv(torch.zeros(1, 3, image_size, image_size)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, features), nn.SiLU())
        self.out_dim = features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).float() / 255.0
        return self.fc(self.conv(x))


class StateEncoder(nn.Module):
    def __init__(self, state_dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.out_dim = hidden

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state.float())


class ObsEncoder(nn.Module):
    """obs_mode "pixels" | "state" | "both" -> features [N, out_dim]."""

    def __init__(self, obs_mode: str, state_dim: int = 0, image_size: int = 64, hidden: int = 128):
        super().__init__()
        if obs_mode not in ("pixels", "state", "both"):
            raise InputError(f"obs_mode must be pixels, state or both, got {obs_mode!r}")
        self.obs_mode = obs_mode
        self.pixels = PixelEncoder(image_size) if obs_mode in ("pixels", "both") else None
        self.state = StateEncoder(state_dim, hidden) if obs_mode in ("state", "both") else None
        self.out_dim = sum(m.out_dim for m in (self.pixels, self.state) if m is not None)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.pixels is not None:
            parts.append(self.pixels(obs["pixels"]))
        if self.state is not None:
            parts.append(self.state(obs["state"]))
        return torch.cat(parts, dim=-1)
