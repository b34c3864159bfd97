"""Small observation encoders shared by the trained policies (BC, PPO).

Observations arrive as a dict of batched tensors: `pixels` uint8 [N, H, W, C] and/or `state`
float [N, S]. Pixels go through a CNN (scaled to [0, 1] inside), states through an MLP; with both, the
features are concatenated. C is 3 x `frame_stack` x `views`: a policy that stacks frames (policies/saved.py
keeps the history) sees motion, which one frame does not show; one trained on V camera views sees them all
(each stacked frame's views side by side).

Two CNNs: "small" (three strided convolutions: the encoder of policies saved before the choice, what their
configs load as) and "impala" (IMPALA's residual CNN, Espeholt et al. 2018: three stages of a convolution,
a max-pool and two residual blocks), the default for new pixel policies. `random_shift` is DrQ's
augmentation (Kostrikov et al. 2020): pad by replicating the border, crop back at a random offset per sample;
the networks apply it in training mode only, so an evaluated policy is deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_sim.errors import InputError

ENCODERS = ("small", "impala")
AUGMENTS = ("none", "shift")


def check_pixel_options(encoder: str, augment: str, frame_stack: int) -> None:
    """A pixel policy config's encoder, augmentation and frame stack (BCConfig's and PPOConfig's), each named."""
    from cosmos_sim.errors import UnknownChoiceError

    if encoder not in ENCODERS:
        raise UnknownChoiceError("pixel encoder", encoder, ENCODERS)
    if augment not in AUGMENTS:
        raise UnknownChoiceError("augmentation", augment, AUGMENTS)
    if int(frame_stack) < 1:
        raise InputError(f"frame_stack must be >= 1, got {frame_stack}")


def random_shift(pixels: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 or float [N, H, W, C] -> the same frames shifted by up to `pad` pixels each way (one offset per
    sample, shared by its channels, so stacked frames move together)."""
    n, h, w, _ = pixels.shape
    x = F.pad(pixels.permute(0, 3, 1, 2).float(), (pad, pad, pad, pad), mode="replicate")
    dy, dx = (torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(pixels.device) for _ in range(2))
    rows = (dy[:, None] + torch.arange(h, device=pixels.device)[None])  # [N, H]
    cols = (dx[:, None] + torch.arange(w, device=pixels.device)[None])  # [N, W]
    idx = torch.arange(n, device=pixels.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # [N, H, W, C]
    return out.to(pixels.dtype)


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.relu(self.a(F.relu(x))))


def _impala(channels_in: int, widths: tuple[int, ...] = (16, 32, 32)) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = channels_in
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.MaxPool2d(3, stride=2, padding=1), _Residual(w), _Residual(w)]
        c = w
    return nn.Sequential(*layers, nn.ReLU(), nn.Flatten())


def _small(channels_in: int, width: int = 32) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, width, 4, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
        nn.Flatten())


class PixelEncoder(nn.Module):
    def __init__(self, image_size: int, features: int = 256, encoder: str = "small", frame_stack: int = 1,
                 views: int = 1):
        super().__init__()
        if encoder not in ENCODERS:
            from cosmos_sim.errors import UnknownChoiceError

            raise UnknownChoiceError("pixel encoder", encoder, ENCODERS)
        if int(frame_stack) < 1:
            raise InputError(f"frame_stack must be >= 1, got {frame_stack}")
        if int(views) < 1:
            raise InputError(f"views must be >= 1, got {views}")
        self.channels = 3 * int(frame_stack) * int(views)
        self.conv = (_impala if encoder == "impala" else _small)(self.channels)
        with torch.no_grad():
            n = self.conv(torch.zeros(1, self.channels, image_size, image_size)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, features), nn.SiLU())
        self.out_dim = features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[-1] != self.channels:
            raise InputError(f"the pixel encoder takes {self.channels} channels (3 per stacked frame and view), "
                             f"got frames of shape {tuple(pixels.shape[1:])}")
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
    """obs_mode "pixels" | "state" | "both" -> features [N, out_dim]. With `augment="shift"` the pixels are
    randomly shifted while the module is in training mode; with `camera_dim` the camera pose (obs["camera"])
    is encoded beside them."""

    def __init__(self, obs_mode: str, state_dim: int = 0, image_size: int = 64, hidden: int = 128,
                 encoder: str = "small", frame_stack: int = 1, augment: str = "none", views: int = 1,
                 camera_dim: int = 0):
        super().__init__()
        if obs_mode not in ("pixels", "state", "both"):
            raise InputError(f"obs_mode must be pixels, state or both, got {obs_mode!r}")
        if augment not in AUGMENTS:
            from cosmos_sim.errors import UnknownChoiceError

            raise UnknownChoiceError("augmentation", augment, AUGMENTS)
        self.obs_mode, self.augment = obs_mode, augment
        self.pixels = (PixelEncoder(image_size, encoder=encoder, frame_stack=frame_stack, views=views)
                       if obs_mode in ("pixels", "both") else None)
        self.state = StateEncoder(state_dim, hidden) if obs_mode in ("state", "both") else None
        # the camera pose (envs/camera_obs.py), for pixel policies under cameras that vary
        self.camera = nn.Sequential(nn.Linear(int(camera_dim), 64), nn.SiLU()) if camera_dim else None
        self.out_dim = sum(m.out_dim for m in (self.pixels, self.state) if m is not None) + (64 if camera_dim else 0)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.pixels is not None:
            px = obs["pixels"]
            parts.append(self.pixels(random_shift(px) if self.training and self.augment == "shift" else px))
        if self.state is not None:
            parts.append(self.state(obs["state"]))
        if self.camera is not None:
            parts.append(self.camera(obs["camera"].float()))
        return torch.cat(parts, dim=-1)


def encoder_options(config: dict) -> dict:
    """A policy config's encoder options; configs saved before them load as the small CNN, one frame of one
    view, no augmentation."""
    return {"encoder": config.get("encoder", "small"), "frame_stack": int(config.get("frame_stack", 1)),
            "augment": config.get("augment", "none"), "views": int(config.get("views", 1)),
            "camera_dim": int(config.get("camera_dim", 0))}
