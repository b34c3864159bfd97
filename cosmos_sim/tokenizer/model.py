"""Causal video tokenizer, Cosmos-style, at our scale.

frames [B, T, 3, H, W] in [-1, 1]
  -> 2-level Haar wavelet (4x spatial, 48 channels)       lossless and invertible
  -> (temporal 4x: groups of 4 frames folded into channels; frame 0 forms its own group)
  -> encoder: residual blocks of factorized causal convs (spatial 1xkxk, then temporal kx1x1
     padded on the left only), stride-2 downsampling to the preset's spatial compression,
     optional causal attention at the bottleneck
  -> continuous latents (C channels) or FSQ codes (one channel per level)
  -> decoder mirrors it back to pixels.

Causality: latent t depends on frames <= t only, and frame 0 is encoded as if alone, so an image
and the first frame of a video share one latent. The temporal convs can also run streaming
(one latent at a time with a small cache), which is what an env step needs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_sim.errors import CheckpointError, InputError, UnknownChoiceError
from cosmos_sim.training.checkpoint import check_config, load_weights, write_checkpoint

KIND = "tokenizer"


@dataclass(frozen=True)
class TokenizerConfig:
    image_size: int = 64
    kind: str = "continuous"  # "continuous" (CV) or "discrete" (DV, FSQ)
    spatial: int = 8  # total spatial compression: 8 or 16 (4 of it from the Haar stage)
    temporal: int = 1  # 1: one latent per frame (control step); 4: one per 4 frames
    latent_channels: int = 16  # continuous latents
    fsq_levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    channels: tuple[int, ...] = (48, 96)  # width at 16x16 (after Haar) and at each downsampled scale
    blocks: int = 1  # residual blocks per scale
    temporal_kernel: int = 2
    attention: bool = False
    detail_weight: float = 4.0  # extra L1 weight on pixels with local detail (objects, edges); 0 = off
    object_weight: float = 16.0  # extra L1 weight on whole objects (colour far from the frame's dominant one); 0 = off
    hard_weight: float = 0.05  # extra squared error on each frame's worst-reconstructed pixels; 0 = off
    hard_fraction: float = 0.01  # share of pixels per frame that count as worst (0.01: 41 of 64x64)

    def __post_init__(self):
        object.__setattr__(self, "fsq_levels", tuple(int(v) for v in self.fsq_levels))
        object.__setattr__(self, "channels", tuple(int(v) for v in self.channels))
        if self.kind not in ("continuous", "discrete"):
            raise UnknownChoiceError("tokenizer kind", self.kind, ["continuous", "discrete"])
        if self.spatial not in (8, 16) or self.temporal not in (1, 4):
            raise InputError(f"spatial must be 8 or 16 and temporal 1 or 4, got {self.spatial}, {self.temporal}")
        if self.image_size % self.spatial:
            raise InputError(f"image_size {self.image_size} is not divisible by spatial compression {self.spatial}")
        if len(self.channels) != self.downsamples + 1:
            raise InputError(f"spatial {self.spatial} needs {self.downsamples + 1} channel widths, got {self.channels}")

    @property
    def downsamples(self) -> int:
        return int(math.log2(self.spatial // 4))

    @property
    def latent_dim(self) -> int:
        return self.latent_channels if self.kind == "continuous" else len(self.fsq_levels)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.spatial

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> TokenizerConfig:
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


PRESETS = {
    "cv8": TokenizerConfig(kind="continuous", spatial=8),
    "cv16": TokenizerConfig(kind="continuous", spatial=16, channels=(48, 96, 128), latent_channels=32),
    "dv8": TokenizerConfig(kind="discrete", spatial=8),
    "dv16": TokenizerConfig(kind="discrete", spatial=16, channels=(48, 96, 128)),
    "cv8x4": TokenizerConfig(kind="continuous", spatial=8, temporal=4, latent_channels=32),
    "tiny": TokenizerConfig(kind="continuous", spatial=8, channels=(16, 24), blocks=1),
    "tiny-dv": TokenizerConfig(kind="discrete", spatial=8, channels=(16, 24), blocks=1, fsq_levels=(5, 5, 5)),
}


def preset(name: str, image_size: int = 64) -> TokenizerConfig:
    if name not in PRESETS:
        raise UnknownChoiceError("tokenizer preset", name, PRESETS)
    return TokenizerConfig.from_dict(PRESETS[name].to_dict() | {"image_size": image_size})


# --- pixel range ---------------------------------------------------------------------------------
def pixels_to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (any layout) -> float in [-1, 1], the range the tokenizer works in."""
    return frames.float() / 127.5 - 1.0


def unit_to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Float frames in about [-1, 1] -> uint8, clamped and rounded (same layout)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


# --- Haar wavelets ----------------------------------------------------------------------------
def haar(x: torch.Tensor) -> torch.Tensor:
    """One orthonormal 2D Haar level: [N, C, H, W] -> [N, 4C, H/2, W/2]."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.cat([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], dim=1) * 0.5


def ihaar(y: torch.Tensor) -> torch.Tensor:
    ll, lh, hl, hh = y.chunk(4, dim=1)
    a, b = (ll + lh + hl + hh) * 0.5, (ll - lh + hl - hh) * 0.5
    c, d = (ll + lh - hl - hh) * 0.5, (ll - lh - hl + hh) * 0.5
    n, ch, h, w = a.shape
    out = a.new_empty(n, ch, 2 * h, 2 * w)
    out[..., 0::2, 0::2], out[..., 0::2, 1::2], out[..., 1::2, 0::2], out[..., 1::2, 1::2] = a, b, c, d
    return out


# --- causal building blocks ---------------------------------------------------------------------
class Stream:
    """Per-layer caches of past activations for step-by-step (streaming) causal inference.

    `restart` (bool [B], or None): rows whose next frame starts afresh, padded with its own activations as a
    clip's first frame is, instead of carrying the past. A learned world sets it where the camera jumped: the
    past frame then shows another viewpoint, and mixing it in draws a blend of the two views.
    """

    def __init__(self):
        self.cache: dict[int, torch.Tensor] = {}
        self.restart: torch.Tensor | None = None


class CausalConv(nn.Module):
    """Factorized spatio-temporal conv: spatial k x k on each frame, then temporal kt, left-padded.

    Works on [B, T, C, H, W]. Padding repeats the first frame, so frame 0 alone and frame 0 of a
    clip see the same input.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, kt: int = 2, stride: int = 1):
        super().__init__()
        self.spatial = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)
        self.kt = kt
        self.temporal = nn.Conv3d(cout, cout, (kt, 1, 1)) if kt > 1 else None
        if self.temporal is not None:  # start as identity in time
            nn.init.zeros_(self.temporal.weight)
            nn.init.zeros_(self.temporal.bias)
            with torch.no_grad():
                self.temporal.weight[:, :, -1, 0, 0].copy_(torch.eye(cout))

    def forward(self, x: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        B, T = x.shape[:2]
        y = self.spatial(x.flatten(0, 1))
        y = y.view(B, T, *y.shape[1:])
        if self.temporal is None:
            return y
        y = y.transpose(1, 2)  # [B, C, T, H, W]
        own = y[:, :, :1].expand(-1, -1, self.kt - 1, -1, -1)
        past = own
        if stream is not None and id(self) in stream.cache:
            past = stream.cache[id(self)]
            if stream.restart is not None:
                past = torch.where(stream.restart.view(-1, 1, 1, 1, 1), own, past)
        full = torch.cat([past, y], dim=2)
        if stream is not None:
            stream.cache[id(self)] = full[:, :, -(self.kt - 1):].detach()
        return self.temporal(full).transpose(1, 2)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class _FrameNorm(nn.Module):
    """GroupNorm applied per frame (no statistics across time, which would break causality)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = _norm(c)

    def forward(self, x):
        B, T = x.shape[:2]
        return self.norm(x.flatten(0, 1)).view_as(x)


class ResBlock(nn.Module):
    def __init__(self, c: int, kt: int):
        super().__init__()
        self.n1, self.c1 = _FrameNorm(c), CausalConv(c, c, 3, kt)
        self.n2, self.c2 = _FrameNorm(c), CausalConv(c, c, 3, kt)
        nn.init.zeros_(self.c2.spatial.weight)
        nn.init.zeros_(self.c2.spatial.bias)

    def forward(self, x, stream=None):
        h = self.c1(F.silu(self.n1(x)), stream)
        return x + self.c2(F.silu(self.n2(h)), stream)


class CausalAttention(nn.Module):
    """Attention over all positions of frames <= t (bottleneck only, where maps are small)."""

    def __init__(self, c: int, heads: int = 4):
        super().__init__()
        self.norm, self.heads = _FrameNorm(c), heads
        self.qkv, self.out = nn.Linear(c, 3 * c), nn.Linear(c, c)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, stream=None):
        B, T, C, H, W = x.shape
        h = self.norm(x).permute(0, 1, 3, 4, 2).reshape(B, T * H * W, C)
        q, k, v = self.qkv(h).view(B, T * H * W, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        first = torch.zeros(B, dtype=torch.long, device=x.device)  # each row's first frame it may attend to
        if stream is not None:
            if id(self) in stream.cache:
                pk, pv, first = stream.cache[id(self)]
                if stream.restart is not None:
                    first = torch.where(stream.restart, pk.shape[2] // (H * W), first)
                k, v = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
            stream.cache[id(self)] = (k.detach(), v.detach(), first)
        frame_q = torch.arange(q.shape[2], device=x.device) // (H * W) + (k.shape[2] - q.shape[2]) // (H * W)
        frame_k = torch.arange(k.shape[2], device=x.device) // (H * W)
        mask = (frame_k[None, :] <= frame_q[:, None])[None] & (frame_k[None, None, :] >= first[:, None, None])
        mask = mask[:, None]  # [B, 1 (heads), queries, keys]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        o = self.out(o.transpose(1, 2).reshape(B, T * H * W, C))
        return x + o.view(B, T, H, W, C).permute(0, 1, 4, 2, 3)


class FSQ(nn.Module):
    """Finite scalar quantization (Mentzer et al. 2023) with a straight-through estimator."""

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("levels", lv, persistent=False)
        basis = torch.cumprod(torch.tensor([1, *levels[:-1]]), 0)
        self.register_buffer("basis", basis, persistent=False)

    def bound(self, z: torch.Tensor) -> torch.Tensor:  # z [..., D] -> values in the level grid
        half = (self.levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b = self.bound(z)
        q = b + (torch.round(b) - b).detach()
        return q / (self.levels // 2)

    def codes_to_indices(self, q: torch.Tensor) -> torch.Tensor:
        """Codes [..., D] -> one integer per code (a mixed-radix number of its digits)."""
        digits = torch.round(q * (self.levels // 2) + self.levels // 2).long()
        return (digits * self.basis).sum(-1)

    def indices_to_codes(self, idx: torch.Tensor) -> torch.Tensor:
        digits = (idx.unsqueeze(-1) // self.basis) % self.levels.long()
        return (digits - self.levels // 2) / (self.levels // 2)


class CausalVideoTokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = cfg = config
        kt, ch = cfg.temporal_kernel, cfg.channels
        cin = 48 * cfg.temporal
        self.enc_in = CausalConv(cin, ch[0], 3, kt)
        self.enc = nn.ModuleList()
        for i, c in enumerate(ch):
            stage = nn.ModuleList([ResBlock(c, kt) for _ in range(cfg.blocks)])
            self.enc.append(stage)
            if i < len(ch) - 1:
                self.enc.append(nn.ModuleList([CausalConv(c, ch[i + 1], 3, 1, stride=2)]))
        self.enc_attn = CausalAttention(ch[-1]) if cfg.attention else None
        self.enc_out = nn.Sequential()
        self.enc_norm = _FrameNorm(ch[-1])
        self.to_latent = CausalConv(ch[-1], cfg.latent_dim, 1, 1)
        self.from_latent = CausalConv(cfg.latent_dim, ch[-1], 3, kt)
        self.dec_attn = CausalAttention(ch[-1]) if cfg.attention else None
        self.dec = nn.ModuleList()
        for i in reversed(range(len(ch))):
            self.dec.append(nn.ModuleList([ResBlock(ch[i], kt) for _ in range(cfg.blocks)]))
            if i > 0:
                self.dec.append(nn.ModuleList([CausalConv(ch[i], ch[i - 1], 3, 1)]))  # after 2x upsample
        self.dec_norm = _FrameNorm(ch[0])
        self.dec_out = CausalConv(ch[0], cin, 3, 1)
        self.fsq = FSQ(cfg.fsq_levels) if cfg.kind == "discrete" else None

    # --- layout helpers ----------------------------------------------------------------------
    def _check(self, frames: torch.Tensor) -> None:
        s = self.config.image_size
        if frames.dim() != 5 or frames.shape[2:] != (3, s, s):
            raise InputError(f"frames must be [B, T, 3, {s}, {s}], got {tuple(frames.shape)}")
        if self.config.temporal > 1 and (frames.shape[1] - 1) % self.config.temporal:
            raise InputError(f"temporal {self.config.temporal}x needs 1 + {self.config.temporal}k frames, "
                             f"got {frames.shape[1]}")

    def _to_wavelets(self, frames: torch.Tensor) -> torch.Tensor:
        B, T = frames.shape[:2]
        w = haar(haar(frames.flatten(0, 1)))
        w = w.view(B, T, *w.shape[1:])
        k = self.config.temporal
        if k > 1:  # frame 0 alone (repeated), then groups of k frames folded into channels
            w = torch.cat([w[:, :1].expand(-1, k, -1, -1, -1), w[:, 1:]], 1)
            w = w.view(B, -1, k * w.shape[2], *w.shape[3:])
        return w

    def _from_wavelets(self, w: torch.Tensor) -> torch.Tensor:
        k = self.config.temporal
        B = w.shape[0]
        if k > 1:
            w = w.view(B, -1, w.shape[2] // k, *w.shape[3:])
            w = torch.cat([w[:, k - 1:k], w[:, k:]], 1)
        T = w.shape[1]
        x = ihaar(ihaar(w.flatten(0, 1)))
        return x.view(B, T, *x.shape[1:])

    # --- public API ----------------------------------------------------------------------------
    def encode(self, frames: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        """frames [B, T, 3, H, W] in [-1, 1] -> latents [B, T', D, h, w] (FSQ-quantized if discrete)."""
        self._check(frames)
        h = self.enc_in(self._to_wavelets(frames), stream)
        for stage in self.enc:
            for block in stage:
                h = block(h, stream)
        if self.enc_attn is not None:
            h = self.enc_attn(h, stream)
        z = self.to_latent(F.silu(self.enc_norm(h)), stream)
        if self.fsq is not None:
            z = self.fsq(z.movedim(2, -1)).movedim(-1, 2)
        return z

    def decode(self, latents: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        """latents [B, T', D, h, w] -> frames [B, T, 3, H, W] in about [-1, 1]."""
        h = self.from_latent(latents, stream)
        if self.dec_attn is not None:
            h = self.dec_attn(h, stream)
        for stage in self.dec:
            if len(stage) == 1 and isinstance(stage[0], CausalConv):
                B, T = h.shape[:2]
                h = F.interpolate(h.flatten(0, 1), scale_factor=2.0, mode="nearest").view(B, T, h.shape[2],
                                                                                         *(2 * s for s in h.shape[3:]))
                h = stage[0](h, stream)
            else:
                for block in stage:
                    h = block(h, stream)
        return self._from_wavelets(self.dec_out(F.silu(self.dec_norm(h)), stream))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(frames))

    # --- persistence ---------------------------------------------------------------------------
    def save(self, path) -> None:
        write_checkpoint(path, {f"model/{k}": v for k, v in self.state_dict().items()},
                         {"kind": KIND, "model_config": self.config.to_dict()})

    @classmethod
    def load(cls, path, config: TokenizerConfig | None = None, weights: str = "ema") -> CausalVideoTokenizer:
        """From a checkpoint file or run directory; `config` (if given) must match the saved one."""
        state, meta = load_weights(path, KIND, weights)
        saved = TokenizerConfig.from_dict(meta["model_config"])
        if config is not None:
            check_config(KIND, saved.to_dict(), config.to_dict())
        model = cls(saved)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"{meta['path']}: weights do not fit the tokenizer config ({e})") from None
        return model.eval()

    # --- training ------------------------------------------------------------------------------
    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        x = pixels_to_unit(batch["frames"])  # uint8 [B, T, 3, H, W]
        if self.config.temporal > 1:
            x = x[:, : 1 + (x.shape[1] - 1) // self.config.temporal * self.config.temporal]
        z = self.encode(x)
        y = self.decode(z)
        w = detail_weight(x, self.config.detail_weight) + object_weight(x, self.config.object_weight) - 1
        l1 = ((y - x).abs() * w).mean() / w.mean()
        l2 = ((y - x) ** 2).mean()
        loss = l1 + l2
        if self.config.hard_weight > 0:  # a small object the decoder still drops (the pusher) is all worst pixels
            err = ((y - x) ** 2).sum(2).flatten(2)  # [B, T, H*W]
            k = max(1, int(self.config.hard_fraction * err.shape[-1]))
            loss = loss + self.config.hard_weight * err.topk(k, dim=-1).values.mean()
        if self.fsq is None:  # keep continuous latents at a scale the dynamics models like
            loss = loss + 1e-4 * (z**2).mean()
        return loss, {"l1": l1.detach(), "mse": l2.detach()}


def detail_weight(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Per-pixel loss weight [B, T, 1, H, W]: 1, or 1 + weight where the frame has local detail.

    Small objects cover a few percent of a frame; without this the plain table dominates the loss and objects
    decode as blurs for a long time. Detail = differing from the 5x5 local mean, dilated 3x3.
    """
    if weight <= 0:
        return torch.ones_like(x[:, :, :1])
    f = x.flatten(0, 1)
    local = F.avg_pool2d(f, 5, stride=1, padding=2, count_include_pad=False)
    detail = ((f - local).abs().amax(1, keepdim=True) > 0.08).float()
    detail = F.max_pool2d(detail, 3, stride=1, padding=1)
    return (1 + weight * detail).view(*x.shape[:2], 1, *x.shape[3:])


def object_weight(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Per-pixel loss weight [B, T, 1, H, W]: 1, or 1 + weight on whole object regions.

    Objects = pixels whose colour is far from the frame's dominant (median) colour and that are not
    near-black background, dilated 3x3. Unlike the detail weight this covers object interiors too,
    so a small object's colour is learned early instead of decoding as table.
    """
    if weight <= 0:
        return torch.ones_like(x[:, :, :1])
    f = x.flatten(0, 1)
    med = f.flatten(2).median(2).values[..., None, None]
    far = (f - med).abs().amax(1, keepdim=True) > 0.3  # 0.15 in [0, 1] pixel units
    lit = f.amax(1, keepdim=True) > -0.75
    obj = F.max_pool2d((far & lit).float(), 3, stride=1, padding=1)
    return (1 + weight * obj).view(*x.shape[:2], 1, *x.shape[3:])
