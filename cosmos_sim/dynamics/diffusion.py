"""EDM latent diffusion dynamics: a small DiT that denoises the next latent given the past ones.

One sample is K clean past latents plus one noisy target latent, all `[D, h, w]`:

  per frame: latent (scaled by `latent_scale`) ++ Plücker rays [6, h, w] ++ mask [1, h, w]
             (mask 1 = clean context frame, 0 = the frame being denoised)
  -> patchify (p x p) -> shared linear embedding -> + learned 3D position (frame + row + col)
  -> the target frame's tokens also get a linear embedding of all K context latents at the same
     patch (channel concatenation, as GameNGen conditions on past frames): each target patch sees
     what was there before without having to find it by attention first
  -> DiT blocks, full attention over all (K + 1) * (h/p) * (w/p) tokens, AdaLN-Zero conditioned on
     c = MLP(noise level) + MLP(action) + MLP(context augmentation level)   (Cosmos adds the action
     embedding to the timestep embedding; the camera enters as Plücker channels)
  -> the target frame's tokens only -> final AdaLN + linear -> unpatchify -> F [B, D, h, w].

EDM preconditioning (Karras et al. 2022), in float32 whatever the autocast:
  D(x; σ) = c_skip(σ) x + c_out(σ) F(c_in(σ) x; c_noise(σ)),
  c_skip = σd² / (σ² + σd²), c_out = σ σd / sqrt(σ² + σd²), c_in = 1 / sqrt(σ² + σd²), c_noise = ln(σ) / 4,
  training σ ~ exp(N(P_mean, P_std²)), loss λ(σ) ||D - y||² with λ = (σ² + σd²) / (σ σd)²,
  which is exactly ||F - (y - c_skip x) / c_out||² (λ c_out² = 1), the form computed below.

Residual target (default): the model denoises the *change* y = (z_next - z_last) * residual_scale
rather than z_next itself, and the sample is z_last + y / residual_scale. Most of a frame does not
move between two control steps, so the residual is zero almost everywhere: the DiT only has to
draw what moves, and the static scene is copied exactly instead of being re-synthesised from noise
every step. The residual's spread is a fraction of the latents'; `residual_scale` brings it up to
about sigma_data, the scale EDM's preconditioning assumes (docs/experiments.md has the figures).

Regression guide (CorrDiff-style, `guide_width` > 0; on in the presets): a small convolutional
regressor (the deterministic family's network, trained jointly by MSE) predicts the next latent's
mean, and the DiT denoises the remainder y = (z_next - guide) * residual_scale around it, with the
guide also embedded at each target patch. Why: a DiT alone learns the conditional mean of the next
latent slowly (its one-step samples stay no better than copying the last frame for a long time),
while a conv regressor learns that mean fast; docs/experiments.md has the measurements. NVIDIA's
CorrDiff splits a prediction the same way: regression for the mean, diffusion for what the mean
cannot say.

Context noise augmentation: in training the past latents get Gaussian noise of a level drawn per
sample from U(0, cond_noise), and the model is told the level, so it learns not to trust slightly
wrong context (its own rollouts). `predict` uses `cond_noise_infer` (default 0: clean context).

Sampling: EDM time steps σ_i = (σmax^(1/ρ) + i/(N-1) (σmin^(1/ρ) - σmax^(1/ρ)))^ρ, σ_N = 0, with
Euler or Heun (2nd order, except on the last step). All noise comes from `torch.randn(...,
generator=generator)`, so the same generator seed gives the same sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_sim.dynamics.base import FamilyConfig, SamplingOption, latent_shapes, register_family, timestep_embedding
from cosmos_sim.dynamics.deterministic import regression_guide
from cosmos_sim.errors import ActionError, InputError, UnknownChoiceError

if TYPE_CHECKING:
    from cosmos_sim.tokenizer import TokenizerConfig

SAMPLERS = ("euler", "heun")
FREQ_DIM = 256  # sinusoidal features fed to the noise-level and augmentation MLPs


@dataclass(frozen=True)
class DiffusionConfig(FamilyConfig):
    latent_channels: int = 16  # D
    latent_size: int = 8  # h = w
    action_dim: int = 2  # A
    context: int = 2  # K past latents
    horizon: int = 1  # H target frames per training window (L = K + H)
    patch: int = 2
    width: int = 192
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    latent_scale: float = 1.0  # context latents are multiplied by this (and the target, if not residual)
    residual: bool = True  # denoise z_next - z_last (see the module docstring)
    residual_scale: float = 2.0  # the residual target is multiplied by this; aim for std ≈ sigma_data
    concat_context: bool = True  # target tokens also embed the context latents at their patch
    guide_width: int = 0  # > 0: a conv regressor of this width predicts the mean (see the module docstring)
    guide_depth: int = 4
    sigma_data: float = 0.5
    P_mean: float = 0.0  # residual targets: more training at high σ, where the one-step mean is learned
    P_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 10.0  # 20 sigma_data (the target's scale); 80 (EDM's image default) is never trained at
    rho: float = 7.0
    cond_noise: float = 0.1  # training: context noise std ~ U(0, cond_noise)
    cond_noise_infer: float = 0.0  # predict: context noise std (the model is told it)
    sampler: str = "euler"  # "euler" | "heun"
    sampling_steps: int = 4
    self_rollout_steps: int = 0  # R > 0: also train frame K+R from a context of R own few-step samples

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise UnknownChoiceError("sampler", self.sampler, SAMPLERS)
        if self.latent_size % self.patch:
            raise InputError(f"latent_size {self.latent_size} is not divisible by patch {self.patch}")
        if self.width % self.heads:
            raise InputError(f"width {self.width} is not divisible by heads {self.heads}")
        if min(self.context, self.horizon, self.sampling_steps, self.depth) < 1:
            raise InputError("context, horizon, sampling_steps and depth must be >= 1")
        if not 0 <= self.self_rollout_steps < self.horizon:
            raise InputError(f"self_rollout_steps {self.self_rollout_steps} needs horizon >= "
                             f"self_rollout_steps + 1, got horizon {self.horizon}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise InputError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")




# preset -> config fields (the rest from the defaults above and `config_for`); every preset carries
# the regression guide (see the module docstring)
PRESETS = {"tiny": {"width": 32, "depth": 1, "heads": 2, "guide_width": 16, "guide_depth": 1},
           "small": {"guide_width": 96, "guide_depth": 4},
           "base": {"width": 384, "depth": 8, "guide_width": 192, "guide_depth": 8}}
# per env (`sampling={...}`): how many denoising steps and which ODE solver; the config's otherwise
SAMPLING = {"steps": SamplingOption(int, minimum=1), "sampler": SamplingOption(str, choices=SAMPLERS)}


def config_for(tokenizer: TokenizerConfig, action_dim: int) -> dict:
    """Latent shape and action size from the data; training normalizes latents to unit std and EDM's
    preconditioning assumes sigma_data = 0.5, so they enter at half scale."""
    return {**latent_shapes(tokenizer, action_dim), "latent_scale": 0.5}


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """[B, C, h, w] -> [B, (h/p)(w/p), C p p], row-major over patches."""
    B, C, h, w = x.shape
    x = x.reshape(B, C, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, (h // p) * (w // p), C * p * p)


def unpatchify(x: torch.Tensor, p: int, C: int, h: int) -> torch.Tensor:
    """Inverse of `patchify` for square maps: [B, N, C p p] -> [B, C, h, h]."""
    B, g = x.shape[0], h // p
    x = x.reshape(B, g, g, C, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(B, C, h, h)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def mlp(d_in: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.SiLU(), nn.Linear(width, width))


class Block(nn.Module):
    """Pre-norm transformer block with AdaLN-Zero: shift/scale/gate from the conditioning vector."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * width, width))
        self.ada = nn.Linear(width, 6 * width)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        B, T, W = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c)[:, None].chunk(6, dim=-1)
        q, k, v = self.qkv(modulate(self.norm1(x), shift1, scale1)).view(B, T, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, W)
        x = x + gate1 * self.proj(a)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


@register_family("diffusion", DiffusionConfig, presets=PRESETS, config_for=config_for, sampling=SAMPLING)
class DiffusionDynamics(nn.Module):
    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = cfg = config
        W, p = cfg.width, cfg.patch
        self.grid = cfg.latent_size // p
        self.tokens_per_frame = self.grid * self.grid
        self.embed = nn.Linear((cfg.latent_channels + 6 + 1) * p * p, W)  # latent ++ Plücker ++ mask
        if cfg.concat_context:
            frames = cfg.context + (1 if cfg.guide_width else 0)
            self.embed_context = nn.Linear(frames * cfg.latent_channels * p * p, W)
        self.guide = None
        if cfg.guide_width:
            self.guide = regression_guide(cfg.latent_channels, cfg.latent_size, cfg.action_dim, cfg.context,
                                          cfg.guide_width, cfg.guide_depth)
        # positions at 0.5 rather than DiT's 0.02, so they are not drowned by the unit-size noise of the
        # target tokens at high σ
        self.pos_frame = nn.Parameter(torch.randn(cfg.context + 1, W) * 0.5)
        self.pos_row = nn.Parameter(torch.randn(self.grid, W) * 0.5)
        self.pos_col = nn.Parameter(torch.randn(self.grid, W) * 0.5)
        self.noise_mlp = mlp(FREQ_DIM, W)
        self.action_mlp = mlp(cfg.action_dim, W)
        self.aug_mlp = mlp(FREQ_DIM, W)
        self.blocks = nn.ModuleList(Block(W, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(W, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Linear(W, 2 * W)
        self.out = nn.Linear(W, cfg.latent_channels * p * p)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for lin in (self.noise_mlp[0], self.aug_mlp[0]):  # sinusoidal inputs; the action MLP keeps a unit-scale init
            nn.init.normal_(lin.weight, std=0.02)
        # AdaLN-Zero: every block starts as the identity and the output as F = 0 (so D(x) = c_skip x).
        for b in self.blocks:
            nn.init.zeros_(b.ada.weight)
            nn.init.zeros_(b.ada.bias)
        for lin in (self.final_ada, self.out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    # --- the network -----------------------------------------------------------------------------
    def _positions(self) -> torch.Tensor:
        """[(K+1) * g * g, W]: frame-major, then row, then column, as the tokens are laid out."""
        space = (self.pos_row[:, None] + self.pos_col[None]).reshape(-1, self.config.width)
        return (self.pos_frame[:, None] + space[None]).reshape(-1, self.config.width)

    def network(self, x_in: torch.Tensor, c_noise: torch.Tensor, context: torch.Tensor, context_plucker: torch.Tensor,
                action: torch.Tensor, plucker: torch.Tensor, aug: torch.Tensor, base: torch.Tensor | None = None
                ) -> torch.Tensor:
        """The raw F. x_in [B,D,h,w] (already c_in-scaled), c_noise/aug [B], context [B,K,D,h,w] (scaled,
        augmented), context_plucker [B,K,6,h,w], action [B,A], plucker [B,6,h,w], base [B,D,h,w] (the
        guide's prediction, scaled; with a guide) -> [B,D,h,w] float32."""
        cfg, p = self.config, self.config.patch
        B, K, D, h, w = context.shape
        ones = context.new_ones(B, K, 1, h, w)
        ctx = torch.cat([context, context_plucker.to(context.dtype), ones], dim=2).reshape(B * K, D + 7, h, w)
        tgt = torch.cat([x_in, plucker.to(x_in.dtype), x_in.new_zeros(B, 1, h, w)], dim=1)
        tokens = torch.cat([patchify(ctx, p).reshape(B, K * self.tokens_per_frame, -1), patchify(tgt, p)], dim=1)
        x = self.embed(tokens) + self._positions()
        if cfg.concat_context:
            stacked = context.reshape(B, K * D, h, w)
            if self.guide is not None:
                stacked = torch.cat([stacked, base.to(stacked.dtype)], 1)
            stacked = patchify(stacked, p)
            n = self.tokens_per_frame
            x = torch.cat([x[:, :-n], x[:, -n:] + self.embed_context(stacked)], 1)
        aug_level = aug / cfg.cond_noise if cfg.cond_noise > 0 else aug
        c = (self.noise_mlp(timestep_embedding(c_noise * 1000, FREQ_DIM))  # DDPM-like scale: all frequencies used
             + self.action_mlp(action.float())
             + self.aug_mlp(timestep_embedding(aug_level * 1000, FREQ_DIM)))
        c = F.silu(c)
        for block in self.blocks:
            x = block(x, c)
        x = x[:, -self.tokens_per_frame:]  # only the target frame is predicted
        shift, scale = self.final_ada(c)[:, None].chunk(2, dim=-1)
        x = self.out(modulate(self.final_norm(x), shift, scale))
        return unpatchify(x.float(), p, cfg.latent_channels, h)

    def precondition(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """EDM c_skip, c_out, c_in as [B,1,1,1] and c_noise as [B], all float32."""
        s, sd = sigma.float(), self.config.sigma_data
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        view = (-1, 1, 1, 1)
        return c_skip.view(view), c_out.view(view), c_in.view(view), s.log() / 4

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, context_plucker: torch.Tensor,
                action: torch.Tensor, plucker: torch.Tensor, aug: torch.Tensor | None = None,
                base: torch.Tensor | None = None) -> torch.Tensor:
        """D(x; σ): the denoised target (scaled units), float32. `context` is scaled, already augmented."""
        if (base is None) != (self.guide is None):
            raise InputError("a guided model needs base= (its guide's prediction, scaled); an unguided one takes none")
        c_skip, c_out, c_in, c_noise = self.precondition(sigma)
        if aug is None:
            aug = sigma.new_zeros(sigma.shape)
        x = x.float()
        f = self.network(c_in * x, c_noise, context, context_plucker, action, plucker, aug.float(), base)
        return c_skip * x + c_out * f

    # --- training --------------------------------------------------------------------------------
    def _check_batch(self, batch: dict[str, torch.Tensor]) -> tuple[int, int]:
        cfg = self.config
        D, h, A, K = cfg.latent_channels, cfg.latent_size, cfg.action_dim, cfg.context
        lat, ray, act = batch["latents"], batch["plucker"], batch["actions"]
        if lat.ndim != 5 or tuple(lat.shape[2:]) != (D, h, h) or lat.shape[1] < K + 1:
            raise InputError(f"batch latents must be [B, L >= {K + 1}, {D}, {h}, {h}], got {tuple(lat.shape)}")
        B, L = lat.shape[:2]
        if tuple(ray.shape) != (B, L, 6, h, h):
            raise InputError(f"batch plucker must be [{B}, {L}, 6, {h}, {h}], got {tuple(ray.shape)}")
        if tuple(act.shape) != (B, L - 1, A):
            raise InputError(f"batch actions must be [{B}, {L - 1}, {A}], got {tuple(act.shape)}")
        need = K + cfg.self_rollout_steps + 1
        if need > L:
            raise InputError(f"self_rollout_steps {cfg.self_rollout_steps} needs windows of {need} latents, got {L}")
        return B, L

    def _denoising_loss(self, target, context, context_plucker, action, plucker, base=None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """EDM loss for one batch of targets (all scaled); returns (weighted loss, unweighted MSE of D)."""
        cfg = self.config
        B = target.shape[0]
        sigma = (torch.randn(B, device=target.device) * cfg.P_std + cfg.P_mean).exp()
        aug = torch.rand(B, device=target.device) * cfg.cond_noise
        context = context + aug.view(-1, 1, 1, 1, 1) * torch.randn_like(context)
        x = target + sigma.view(-1, 1, 1, 1) * torch.randn_like(target)
        c_skip, c_out, c_in, c_noise = self.precondition(sigma)
        f = self.network(c_in * x, c_noise, context, context_plucker, action, plucker, aug, base)
        loss = ((f - (target - c_skip * x) / c_out) ** 2).mean()  # = λ(σ) ||D - y||², λ c_out² = 1
        with torch.no_grad():
            mse = ((c_skip * x + c_out * f - target) ** 2).mean()
        return loss, mse

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """Teacher forcing at one random target position per window (+ a self-rollout term if R > 0)."""
        cfg = self.config
        B, L = self._check_batch(batch)
        K, s = cfg.context, cfg.latent_scale
        raw = batch["latents"].float()
        ray, act = batch["plucker"].float(), batch["actions"].float()
        dev = raw.device
        rows = torch.arange(B, device=dev)
        j = torch.randint(K, L, (B,), device=dev)  # target frame index per window
        ctx_idx = j[:, None] - K + torch.arange(K, device=dev)
        ctx, ctx_ray = raw[rows[:, None], ctx_idx], ray[rows[:, None], ctx_idx]
        a, ray_j = act[rows, j - 1], ray[rows, j]
        base, guide_mse = self._base(ctx, ctx_ray, a, ray_j), None
        if self.guide is not None:
            guide_mse = ((base - raw[rows, j]) ** 2).mean()
            base = base.detach()
        loss, mse = self._denoising_loss(self._target(raw[rows, j], base), ctx * s, ctx_ray, a, ray_j,
                                         self._scaled_base(base))
        ts = self._target_scale
        metrics = {"denoise_mse": mse / ts**2}  # in latent units
        R = cfg.self_rollout_steps
        if R:
            # Roll R steps from the true context with the few-step sampler, then learn frame K+R from
            # a context whose last min(R, K) frames are the model's own samples.
            with torch.no_grad():
                seq = raw[:, :K]
                for i in range(R):
                    b = self._base(seq[:, -K:], ray[:, i:i + K], act[:, K - 1 + i], ray[:, K + i])
                    y = self._sample(seq[:, -K:] * s, ray[:, i:i + K], act[:, K - 1 + i], ray[:, K + i],
                                     cfg.sampling_steps, "euler", None, self._scaled_base(b))
                    seq = torch.cat([seq, self._from_target(y, b)[:, None]], dim=1)
                b = self._base(seq[:, -K:], ray[:, R:R + K], act[:, K + R - 1], ray[:, K + R])
            ro_loss, ro_mse = self._denoising_loss(self._target(raw[:, K + R], b), seq[:, -K:] * s,
                                                   ray[:, R:R + K], act[:, K + R - 1], ray[:, K + R],
                                                   self._scaled_base(b))
            metrics |= {"denoise_mse_tf": metrics["denoise_mse"], "denoise_mse_rollout": ro_mse / ts**2}
            loss = (loss + ro_loss) / 2
        if guide_mse is not None:
            metrics["guide_mse"] = guide_mse
            loss = loss + guide_mse
        return loss, {k: v.detach() for k, v in metrics.items()}

    @property
    def _target_scale(self) -> float:
        return self.config.residual_scale if self.config.residual else self.config.latent_scale

    def _base(self, context, context_plucker, action, plucker) -> torch.Tensor:
        """What the residual is taken around (latent units): the guide's prediction, else the last latent."""
        if self.guide is not None:
            return self.guide.step(context, context_plucker, action, plucker)
        return context[:, -1]

    def _scaled_base(self, base: torch.Tensor) -> torch.Tensor | None:
        return base * self.config.latent_scale if self.guide is not None else None

    def _target(self, nxt: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """What is denoised, from the next latent and the base (see `_base`; latent units)."""
        return ((nxt - base) if self.config.residual else nxt) * self._target_scale

    def _from_target(self, y: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Inverse of `_target`: the next latent (latent units)."""
        y = y / self._target_scale
        return base + y if self.config.residual else y

    # --- sampling --------------------------------------------------------------------------------
    def sigmas(self, steps: int) -> list[float]:
        """EDM time discretisation: `steps` decreasing noise levels from sigma_max to sigma_min, then 0.

        Plain floats, so the sampling loop never copies to or syncs with the device."""
        cfg = self.config
        lo, hi = cfg.sigma_min ** (1 / cfg.rho), cfg.sigma_max ** (1 / cfg.rho)
        frac = [i / (steps - 1) if steps > 1 else 0.0 for i in range(steps)]
        return [(hi + f * (lo - hi)) ** cfg.rho for f in frac] + [0.0]

    def _sample(self, context, context_plucker, action, plucker, steps: int, sampler: str,
                generator: torch.Generator | None, base: torch.Tensor | None = None) -> torch.Tensor:
        """Sample a target (see `_target`, scaled units); `context` is scaled and clean."""
        cfg = self.config
        B, dev = context.shape[0], context.device
        D, h = cfg.latent_channels, cfg.latent_size
        if cfg.cond_noise_infer > 0:
            noise = torch.randn(context.shape, generator=generator, device=dev, dtype=torch.float32)
            context = context + cfg.cond_noise_infer * noise
        aug = torch.full((B,), cfg.cond_noise_infer, device=dev)
        sig = self.sigmas(steps)
        x = sig[0] * torch.randn((B, D, h, h), generator=generator, device=dev, dtype=torch.float32)

        def d(x, s):  # the ODE direction dx/dσ = (x - D(x; σ)) / σ
            sigma = torch.full((B,), s, device=dev)
            return (x - self.denoise(x, sigma, context, context_plucker, action, plucker, aug, base)) / s

        for i in range(steps):
            s, s_next = sig[i], sig[i + 1]
            d_i = d(x, s)
            x_next = x + (s_next - s) * d_i
            if sampler == "heun" and i < steps - 1:  # the last step goes to σ = 0: plain Euler
                x_next = x + (s_next - s) * 0.5 * (d_i + d(x_next, s_next))
            x = x_next
        return x

    @torch.no_grad()
    def predict(self, past: torch.Tensor, past_plucker: torch.Tensor, action: torch.Tensor, plucker: torch.Tensor,
                generator: torch.Generator | None = None, cache: Any = None, *, steps: int | None = None,
                sampler: str | None = None) -> tuple[torch.Tensor, None]:
        """Next latent [B, D, h, w] from the last K of `past` [B, T>=K, D, h, w] and their rays, the action
        [B, A] and the next frame's rays [B, 6, h, w]. Same `generator` state => same sample."""
        cfg = self.config
        K, D, h, A = cfg.context, cfg.latent_channels, cfg.latent_size, cfg.action_dim
        if past.ndim != 5 or tuple(past.shape[2:]) != (D, h, h) or past.shape[1] < K:
            raise InputError(f"past latents must be [B, T >= {K}, {D}, {h}, {h}], got {tuple(past.shape)}")
        B, T = past.shape[:2]
        if tuple(past_plucker.shape) != (B, T, 6, h, h):
            raise InputError(f"past_plucker must be [{B}, {T}, 6, {h}, {h}], got {tuple(past_plucker.shape)}")
        if tuple(action.shape) != (B, A):
            raise ActionError(f"action must be [{B}, {A}], got {tuple(action.shape)}")
        if tuple(plucker.shape) != (B, 6, h, h):
            raise InputError(f"plucker must be [{B}, 6, {h}, {h}], got {tuple(plucker.shape)}")
        steps = cfg.sampling_steps if steps is None else int(steps)
        sampler = cfg.sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise UnknownChoiceError("sampler", sampler, SAMPLERS)
        if steps < 1:
            raise InputError(f"steps must be >= 1, got {steps}")
        ctx, ctx_ray = past[:, -K:].float(), past_plucker[:, -K:].float()
        action, plucker = action.float(), plucker.float()
        base = self._base(ctx, ctx_ray, action, plucker)
        y = self._sample(ctx * cfg.latent_scale, ctx_ray, action, plucker, steps, sampler, generator,
                         self._scaled_base(base))
        return self._from_target(y, base), None

