"""Deterministic latent dynamics: a convolutional regressor trained several steps ahead on its own predictions.

Our physics worlds are deterministic given their state, so a regressor is a serious model: the
fast CPU default and the bar the diffusion and autoregressive families must beat.

next = last + f(last K latents, Plücker rays of the last and the next frame; action via FiLM)

With `render=True` the base is not the last latent alone: a renderer R(next frame's rays; the action and the
state it leads to via FiLM) draws the scene from the camera it is told, and a gate computed from the last
and the next rays blends it with the last latent (copy where the camera stays, render where it moves):
next = g * last + (1 - g) * R + f(..., R). For models that must follow any camera (issue 26).
With `render_planes` the renderer also reads where each ray (on a grid twice as fine) meets those horizontal
planes (`ray_plane_hits`), beside the state, in a per-cell MLP: whether a ray sees an object becomes a
comparison of two positions instead of a perspective projection to learn. `render_weight` adds a direct loss
on R against every frame of the window that an action leads to (context frames and targets, every view).

Training unrolls `horizon` steps, feeding predictions back in (gradients flow through the whole
rollout), so the model learns to correct its own drift instead of only the one-step error.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_sim.camera import ray_plane_hits
from cosmos_sim.dynamics.base import FamilyConfig, latent_shapes, register_family
from cosmos_sim.errors import InputError


@dataclass(frozen=True)
class DeterministicConfig(FamilyConfig):
    latent_channels: int = 16
    latent_size: int = 8
    action_dim: int = 2
    context: int = 2
    horizon: int = 4  # training rollout length (1 = teacher forcing only)
    width: int = 128
    depth: int = 6
    late_weight: float = 1.0  # loss weight of the last rollout step relative to the first (linear ramp)
    render: bool = False  # a state renderer under the camera as the base of each step (see the module docstring)
    render_planes: tuple[float, ...] = ()  # heights (m) of the planes whose ray hits the renderer reads
    render_weight: float = 0.0  # weight of the renderer's own loss against the true latents
    render_width: int = 128  # the renderer's per-cell MLP (with render_planes)




RENDER_PLANES = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5)  # tabletop heights: the table, objects on it, objects falling
RAY_SUB = 2  # ray hits on a grid this many times finer than the latent's
# `train dynamics --render-head`: the config fields that turn the plane-hit renderer on
RENDERER_OVERRIDES = {"render": True, "render_planes": RENDER_PLANES, "render_weight": 1.0}

# preset -> config fields; the latent shape and action size come from the data (`latent_shapes`).
PRESETS = {"tiny": {"width": 16, "depth": 1, "horizon": 2},
           "small": {"width": 96, "depth": 4, "horizon": 4},
           "base": {"width": 192, "depth": 8, "horizon": 6}}


class FiLMBlock(nn.Module):
    def __init__(self, width: int, cond: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(8, width), nn.Conv2d(width, width, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(8, width), nn.Conv2d(width, width, 3, padding=1)
        self.film = nn.Linear(cond, 2 * width)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, x, c):
        scale, shift = self.film(c)[:, :, None, None].chunk(2, dim=1)
        h = self.c1(F.silu(self.n1(x)))
        h = F.silu(self.n2(h) * (1 + scale) + shift)
        return x + self.c2(h)


# A regressor has nothing to sample: no sampling options.
@register_family("deterministic", DeterministicConfig, presets=PRESETS, config_for=latent_shapes)
class DeterministicDynamics(nn.Module):
    def __init__(self, config: DeterministicConfig):
        super().__init__()
        self.config = c = config
        cin = c.context * c.latent_channels + 12 + (c.latent_channels if c.render else 0)
        self.inp = nn.Conv2d(cin, c.width, 3, padding=1)
        if c.render_planes and not c.render:
            raise InputError("render_planes needs render=True")
        if c.render and c.render_planes:
            n_in = (3 + 2 * len(c.render_planes)) * RAY_SUB ** 2 + 6 + c.action_dim
            self.r_inp = nn.Sequential(nn.Conv2d(n_in, c.render_width, 1), nn.SiLU(),
                                       nn.Conv2d(c.render_width, c.render_width, 1), nn.SiLU(),
                                       nn.Conv2d(c.render_width, c.width, 1))
        elif c.render:
            self.r_inp = nn.Conv2d(6, c.width, 3, padding=1)
        if c.render:
            self.r_cond = nn.Sequential(nn.Linear(c.action_dim, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
            self.r_blocks = nn.ModuleList([FiLMBlock(c.width, c.width) for _ in range(max(2, c.depth // 2))])
            self.r_norm = nn.GroupNorm(8, c.width)
            self.r_out = nn.Conv2d(c.width, c.latent_channels, 3, padding=1)
            self.gate = nn.Conv2d(18, 1, 3, padding=1)
            nn.init.zeros_(self.gate.weight)
            nn.init.constant_(self.gate.bias, 2.0)  # starts near copying the last latent
        self.act = nn.Sequential(nn.Linear(c.action_dim, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
        self.blocks = nn.ModuleList([FiLMBlock(c.width, c.width) for _ in range(c.depth)])
        self.out_norm = nn.GroupNorm(8, c.width)
        self.out = nn.Conv2d(c.width, c.latent_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _check(self, past, past_plucker, action, plucker):
        c = self.config
        B = past.shape[0]
        want = {"past": (B, c.context, c.latent_channels, c.latent_size, c.latent_size),
                "past_plucker": (B, c.context, 6, c.latent_size, c.latent_size),
                "action": (B, c.action_dim), "plucker": (B, 6, c.latent_size, c.latent_size)}
        for name, t in (("past", past), ("past_plucker", past_plucker), ("action", action), ("plucker", plucker)):
            if tuple(t.shape) != want[name]:
                raise InputError(f"{name} must have shape {want[name]}, got {tuple(t.shape)}")

    def render(self, plucker, action):
        """The state renderer R: rays [B, 6, h, w] and action + next state [B, A] -> a latent [B, D, h, w]."""
        c = self.config
        if c.render_planes:
            hits = F.pixel_unshuffle(ray_plane_hits(plucker, RAY_SUB, c.render_planes), RAY_SUB)
            r = self.r_inp(torch.cat([hits, plucker, action[:, :, None, None].expand(-1, -1, *plucker.shape[-2:])],
                                     1))
        else:
            r = self.r_inp(plucker)
        rc = self.r_cond(action)
        for block in self.r_blocks:
            r = block(r, rc)
        return self.r_out(F.silu(self.r_norm(r)))

    def step(self, past, past_plucker, action, plucker, r=None):
        """Differentiable one-step prediction (no checks): [B, K, D, h, w] -> [B, D, h, w]. `r`: the renderer's
        output for this step when already computed."""
        parts, base = [past.flatten(1, 2), past_plucker[:, -1], plucker], past[:, -1]
        if self.config.render:
            r = self.render(plucker, action) if r is None else r
            g = torch.sigmoid(self.gate(torch.cat([past_plucker[:, -1], plucker, plucker - past_plucker[:, -1]], 1)))
            parts.append(r)
            base = g * base + (1 - g) * r
        h = self.inp(torch.cat(parts, dim=1))
        cond = self.act(action)
        for block in self.blocks:
            h = block(h, cond)
        return base + self.out(F.silu(self.out_norm(h)))

    def predict(self, past, past_plucker, action, plucker, generator=None, cache=None):
        self._check(past, past_plucker, action, plucker)
        return self.step(past, past_plucker, action, plucker), None

    def rollout(self, batch: dict[str, torch.Tensor], steps: int, renders: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Predict frames K..K+steps-1 of a window from its first K, feeding predictions back. `renders`
        [B, L-1, D, h, w]: the renderer's output for frames 1..L-1, when already computed."""
        K = self.config.context
        z, pl, a = batch["latents"], batch["plucker"], batch["actions"]
        past, preds = z[:, :K], []
        for j in range(steps):
            r = None if renders is None else renders[:, K - 1 + j]
            nxt = self.step(past, pl[:, j:j + K], a[:, K - 1 + j], pl[:, K + j], r)
            preds.append(nxt)
            past = torch.cat([past[:, 1:], nxt[:, None]], dim=1)
        return torch.stack(preds, dim=1)

    def training_loss(self, batch):
        c = self.config
        K, H = c.context, c.horizon
        renders = None
        if c.render and c.render_weight > 0:  # R on every frame an action leads to, in one batch
            z, pl, a = batch["latents"], batch["plucker"], batch["actions"]
            B, L = z.shape[:2]
            renders = self.render(pl[:, 1:].flatten(0, 1), a[:, :L - 1].flatten(0, 1)).view(B, L - 1, *z.shape[2:])
        preds = self.rollout(batch, H, renders)
        target = batch["latents"][:, K:K + H]
        per_step = ((preds - target) ** 2).mean(dim=(0, 2, 3, 4))
        w = torch.linspace(1.0, c.late_weight, H, device=per_step.device)
        loss = (per_step * w).sum() / w.sum()
        metrics = {"mse_first": per_step[0].detach(), "mse_last": per_step[-1].detach()}
        if renders is not None:
            render_mse = ((renders - batch["latents"][:, 1:]) ** 2).mean()
            loss = loss + c.render_weight * render_mse
            metrics["render_mse"] = render_mse.detach()
        return loss, metrics


def regression_guide(latent_channels: int, latent_size: int, action_dim: int, context: int, width: int,
                     depth: int) -> DeterministicDynamics:
    """The one-step conv regressor that the diffusion and autoregressive families carry as their guide."""
    return DeterministicDynamics(DeterministicConfig(latent_channels=latent_channels, latent_size=latent_size,
                                                     action_dim=action_dim, context=context, horizon=1,
                                                     width=width, depth=depth))
