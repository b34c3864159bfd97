"""Autoregressive latent dynamics: a decoder-only transformer over FSQ tokens (Cosmos AR, scaled down).

Tokens. A discrete tokenizer gives each frame h*w tokens; a token is D FSQ digits (levels such as
8,8,8,5,5,5, i.e. a 64000-entry codebook). A token's input embedding is the *sum of per-digit
embeddings* (39 rows instead of 64000), plus the frame's Plücker ray at that position (a linear
layer on its 6 channels), plus learned row and column embeddings. The output is factorized the same
way: one softmax per FSQ digit (classes = that digit's level), so the loss is cross-entropy over
every digit of every target token, plus a z-loss `z_loss * logsumexp(logits)**2` that keeps the
logits from drifting (PaLM, Cosmos).

Decoding mode: parallel, one forward pass per frame. After the content tokens of the past frames
come h*w *query* tokens for the frame to predict: no content, only a learned query vector + the next
frame's Plücker rays + the action that leads to it (an MLP embedding added to every query position)
+ row/col embeddings + (with `query_prev`, the default) the embedding of the *previous* frame's
token at the same position. That last term is a copy path: most tokens do not change from one
control step to the next, and a query that already holds its predecessor only has to learn what
moves, instead of finding its own position's token among all earlier frames'. The queries see every
token of earlier frames and each other, and each query emits its token's digits at once; digits and
tokens of one frame are sampled independently given the past. Why: our worlds are deterministic
given their state, so the next-frame distribution is close to a point mass and the within-frame
dependencies that raster decoding models buy little, while raster decoding costs h*w (64) sequential
forward passes per env step (h*w*D = 384 with per-digit decoding). Parallel decoding is 64x fewer
passes, batches well on CPU and GPU, and keeps an env step one fixed-shape call. (Temperature/top-k
still apply per digit; temperature 0 takes each digit's rounded expected level, see `greedy`.)

Regression guide (`guide_width` > 0; on in the presets): a small convolutional regressor (the
deterministic family's network, trained jointly by MSE on the FSQ codes) guesses the next frame's
codes from the last `context` frames, the action and the rays, and each query also embeds the guess
at its position (a linear layer on its D values). Why: the transformer alone learns to copy the
previous frame's tokens long before it learns which few of them change (docs/experiments.md), and
which tokens change, and how, is a local function of the state that a conv net learns far faster
than attention. The transformer still decides every digit (the guess is continuous and off the FSQ
grid) and keeps its attention over the past.
With `guide_horizon` > 1 the guide trains as the deterministic family does, on its own rollout of
that many steps from the true frames (gradients through the rollout), so it learns to correct its
own drift; training windows grow to context + max(horizon, guide_horizon) frames, of which the
transformer uses its first context + horizon. A longer rollout is a slower training step: the
small preset's value comes from a sweep at a fixed time budget (`benchmarks/ar_sweep.py`,
docs/experiments.md).

Attention is block-causal over frames: a content token sees every content token of its own and
earlier frames; a query sees the content of all earlier frames and the queries of its own frame.
Training packs, for a window of L = context + horizon frames, the content of frames 0..L-2 and the
queries of frames context..L-1 into one sequence (teacher forcing, all horizon targets at once).
With `self_forcing` > 0 and horizon > 1, that fraction of the windows has frames context..L-2
replaced by the model's own samples (no gradient through sampling), so it learns to predict from
its own, imperfect, history.

Actions condition the queries only. Content tokens do not carry the action that led to them,
because `predict` gets only the current action: a frame's cached keys/values must not depend on
actions that a fresh, cache-less call cannot know. Past actions remain visible through the
frames they produced.

Time positions and the KV cache. Row and column are learned embeddings; the frame index enters
through rotary embeddings (RoPE) on queries and keys, so attention depends only on the *relative*
frame offset. Cached keys are stored already rotated at their absolute frame position; dropping
the oldest frames therefore never invalidates the rest (no recompute, no table shift). Each
cached `predict` call appends only the newest frame (`past[:, -1]`, normally the model's own
previous prediction) and reuses the cached keys/values. The cache keeps at most `cache_frames`
frames visible to the query (the oldest are dropped first); the default is context + horizon - 1,
the longest history the model saw in training, so relative offsets stay in the trained range;
`cache_frames` may go up to max_frames - 1. Until frames are dropped, a cached prediction equals
a cache-less one on the full history (tested); after that it is a sliding window whose oldest
cached frames still carry what they attended to when they were added (as in sliding-window
LLM caches). A fresh episode (env reset) starts with cache=None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_sim.dynamics.base import FamilyConfig, SamplingOption, register_family
from cosmos_sim.dynamics.deterministic import regression_guide
from cosmos_sim.errors import InputError

if TYPE_CHECKING:
    from cosmos_sim.tokenizer import TokenizerConfig

NEG = -1e9  # logit of the padding classes of digits with fewer levels than the largest
GREEDY = ("mean", "mode")  # temperature-0 decoding per digit, see AutoregressiveConfig.greedy


@dataclass(frozen=True)
class AutoregressiveConfig(FamilyConfig):
    fsq_levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)  # latents are FSQ codes, D = len(fsq_levels)
    latent_size: int = 8  # h = w: tokens per frame = latent_size ** 2
    action_dim: int = 2
    context: int = 2  # K past frames a window starts with
    horizon: int = 1  # target frames per training window
    width: int = 192
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0
    max_frames: int = 32  # longest sequence in frames (content + the query frame)
    cache_frames: int = 0  # frames the KV cache keeps; 0: context + horizon - 1 (the trained history)
    rope_base: float = 1000.0
    z_loss: float = 1e-4
    query_prev: bool = True  # queries also embed the previous frame's token at their position
    guide_width: int = 0  # > 0: a conv regressor of this width guesses the next codes (see the docstring)
    guide_depth: int = 4
    guide_horizon: int = 1  # > 1: the guide trains on its own rollouts of this many steps (see the docstring)
    self_forcing: float = 0.0  # fraction of windows conditioned on the model's own samples (horizon > 1)
    temperature: float = 1.0  # 0: greedy, see below
    top_k: int = 0  # per digit; 0: off
    # temperature 0 takes, per digit, the rounded expected level ("mean") or the likeliest ("mode").
    # Digits are ordinal (evenly spaced FSQ levels), so the rounded mean is the least squared error
    # per digit: where the model hesitates between levels it lands between them instead of on the
    # one that wins by a hair (the comparison: docs/experiments.md).
    greedy: str = "mean"

    def __post_init__(self):
        object.__setattr__(self, "fsq_levels", tuple(int(v) for v in self.fsq_levels))
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise InputError(f"width {self.width} must split into {self.heads} heads of even size")
        if self.context < 1 or self.horizon < 1 or self.context + self.horizon > self.max_frames:
            raise InputError(f"need context >= 1, horizon >= 1 and context + horizon <= max_frames "
                             f"({self.max_frames}), got {self.context}, {self.horizon}")
        if self.guide_horizon < 1:
            raise InputError(f"guide_horizon must be >= 1, got {self.guide_horizon}")
        if not 0 <= self.cache_frames <= self.max_frames - 1:
            raise InputError(f"cache_frames must be in [0, max_frames - 1 = {self.max_frames - 1}], "
                             f"got {self.cache_frames}")
        if self.temperature < 0 or self.top_k < 0 or not 0 <= self.self_forcing <= 1:
            raise InputError("temperature and top_k must be >= 0 and self_forcing in [0, 1]")
        if self.greedy not in GREEDY:
            raise InputError(f"greedy must be one of {GREEDY}, got {self.greedy!r}")

    @property
    def tokens_per_frame(self) -> int:
        return self.latent_size**2

    @property
    def window(self) -> int:
        """Frames per training window: the transformer's context + horizon, or the guide's rollout if longer."""
        return self.context + max(self.horizon, self.guide_horizon if self.guide_width else 1)

    @property
    def cache_limit(self) -> int:
        return self.cache_frames or min(self.context + self.horizon - 1, self.max_frames - 1)



# preset -> config fields (the rest from the defaults above and `config_for`); every preset carries
# the regression guide (see the module docstring).
# small: one context frame (its queries still embed the frame before them, `query_prev`), half the
# tokens of two, so more training steps fit a budget; two target frames, half of the windows
# conditioned on the model's own first sample (self-forcing), so it learns from its own history;
# the guide trained on its own 8-step rollouts (`guide_horizon`). The runs behind these choices:
# benchmarks/dynamics.py and benchmarks/ar_sweep.py, figures in docs/experiments.md.
PRESETS = {"tiny": {"width": 32, "depth": 1, "heads": 2, "guide_width": 16, "guide_depth": 1},
           "small": {"context": 1, "horizon": 2, "self_forcing": 0.5, "guide_width": 96, "guide_depth": 4,
                     "guide_horizon": 8},
           "base": {"width": 384, "depth": 8, "guide_width": 192, "guide_depth": 8}}
# per env (`sampling={...}`): per-digit temperature (0: greedy) and top-k (0: off); the config's otherwise
SAMPLING = {"temperature": SamplingOption(float, minimum=0), "top_k": SamplingOption(int, minimum=0)}


def config_for(tokenizer: TokenizerConfig, action_dim: int) -> dict:
    """Latent size and action size from the data; the tokens are FSQ codes, so the levels replace a channel count."""
    if tokenizer.kind != "discrete":
        raise InputError("the autoregressive family needs a discrete (FSQ) tokenizer, e.g. --preset dv8")
    return {"fsq_levels": list(tokenizer.fsq_levels), "latent_size": tokenizer.latent_size, "action_dim": action_dim}


@dataclass
class KVCache:
    """Keys/values of the content tokens of the last `frames` frames, for every layer.

    keys[i], values[i]: [B, heads, frames * h*w, head_dim], keys already rotated (RoPE) at their
    absolute frame positions start .. start + frames - 1.
    """

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    start: int = 0
    frames: int = 0

    def keep_last(self, frames: int, tokens_per_frame: int) -> KVCache:
        drop = max(0, self.frames - frames)
        if drop == 0:
            return self
        cut = drop * tokens_per_frame
        return KVCache([k[:, :, cut:] for k in self.keys], [v[:, :, cut:] for v in self.values],
                       self.start + drop, self.frames - drop)


def rope(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate x [B, heads, M, hd] by the frame position of each token, pos [M]."""
    half = x.shape[-1] // 2
    freqs = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = pos.float()[:, None] * freqs[None]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


def attention_mask(row_frame, row_query, col_frame, col_query) -> torch.Tensor:
    """[rows, cols] bool, True = may attend. Content sees content of frames <= its own; a query of
    frame f sees content of frames < f and the queries of frame f."""
    rf, rq = row_frame[:, None], row_query[:, None]
    cf, cq = col_frame[None], col_query[None]
    return (~cq & (cf <= rf - rq.long())) | (rq & cq & (cf == rf))


class Attention(nn.Module):
    def __init__(self, cfg: AutoregressiveConfig):
        super().__init__()
        self.heads, self.dropout, self.base = cfg.heads, cfg.dropout, cfg.rope_base
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.proj = nn.Linear(cfg.width, cfg.width)

    def forward(self, x, pos, mask, past=None):
        B, M, C = x.shape
        q, k, v = self.qkv(x).view(B, M, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rope(q, pos, self.base), rope(k, pos, self.base)
        ks, vs = (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        y = F.scaled_dot_product_attention(q, ks, vs, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, M, C)), (k, v)


class Block(nn.Module):
    def __init__(self, cfg: AutoregressiveConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.width), nn.LayerNorm(cfg.width)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.width, cfg.mlp_ratio * cfg.width), nn.GELU(),
                                 nn.Linear(cfg.mlp_ratio * cfg.width, cfg.width))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, pos, mask, past=None):
        a, kv = self.attn(self.ln1(x), pos, mask, past)
        x = x + self.drop(a)
        return x + self.drop(self.mlp(self.ln2(x))), kv


@register_family("autoregressive", AutoregressiveConfig, presets=PRESETS, config_for=config_for, sampling=SAMPLING)
class AutoregressiveDynamics(nn.Module):
    def __init__(self, config: AutoregressiveConfig):
        super().__init__()
        self.config = c = config
        levels = torch.tensor(c.fsq_levels)
        self.register_buffer("levels", levels, persistent=False)
        self.register_buffer("offsets", torch.cumsum(levels, 0) - levels, persistent=False)
        self.register_buffer("mid", (levels // 2).float(), persistent=False)
        maxl = max(c.fsq_levels)
        pad = torch.arange(maxl)[None] >= levels[:, None]  # [D, maxl] classes a digit does not have
        self.register_buffer("pad", pad, persistent=False)

        self.digit_emb = nn.Embedding(int(levels.sum()), c.width)  # all digits' values, offset per level
        self.ray = nn.Linear(6, c.width)
        self.row = nn.Embedding(c.latent_size, c.width)
        self.col = nn.Embedding(c.latent_size, c.width)
        self.query = nn.Parameter(torch.zeros(c.width))
        self.action = nn.Sequential(nn.Linear(c.action_dim, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
        self.guide = None
        if c.guide_width:
            self.guide = regression_guide(len(c.fsq_levels), c.latent_size, c.action_dim, c.context,
                                          c.guide_width, c.guide_depth)
            self.guess = nn.Linear(len(c.fsq_levels), c.width)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.depth)])
        self.ln_f = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, len(c.fsq_levels) * maxl)

        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scaled init of the residual projections
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.depth))
        nn.init.normal_(self.query, 0.0, 0.02)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    # --- tokens <-> FSQ codes -----------------------------------------------------------------
    def to_digits(self, codes: torch.Tensor) -> torch.Tensor:
        """Normalized FSQ codes [..., D, h, w] -> digits [..., h*w, D] (long, digit d in [0, level_d))."""
        q = codes.flatten(-2).transpose(-1, -2).float()
        return torch.round(q * self.mid + self.mid).long().clamp(min=0).minimum(self.levels - 1)

    def to_codes(self, digits: torch.Tensor) -> torch.Tensor:
        """Digits [B, h*w, D] -> normalized FSQ codes [B, D, h, w], as the tokenizer's FSQ makes them."""
        q = (digits.float() - self.mid) / self.mid
        s = self.config.latent_size
        return q.transpose(-1, -2).reshape(*q.shape[:-2], q.shape[-1], s, s)

    # --- embeddings ---------------------------------------------------------------------------
    def _rays(self, plucker: torch.Tensor) -> torch.Tensor:  # [..., 6, h, w] -> [..., h*w, C]
        return self.ray(plucker.flatten(-2).transpose(-1, -2))

    def _rowcol(self) -> torch.Tensor:  # [h*w, C]
        return (self.row.weight[:, None] + self.col.weight[None]).flatten(0, 1)

    def embed_content(self, digits: torch.Tensor, plucker: torch.Tensor) -> torch.Tensor:
        """digits [B, T, N, D] + rays [B, T, 6, h, w] -> [B, T*N, C]."""
        x = self.digit_emb(digits + self.offsets).sum(-2) + self._rays(plucker) + self._rowcol()
        return x.flatten(1, 2)

    def embed_query(self, plucker: torch.Tensor, action: torch.Tensor, prev: torch.Tensor,
                    guess: torch.Tensor | None = None) -> torch.Tensor:
        """rays [B, T, 6, h, w] of the frames to predict + actions [B, T, A] leading to them + the digits of
        the frames before them [B, T, N, D] (+ the guide's guesses [B, T, D, h, w]) -> [B, T*N, C]."""
        x = self.query + self._rays(plucker) + self._rowcol() + self.action(action)[:, :, None]
        if self.config.query_prev:
            x = x + self.digit_emb(prev + self.offsets).sum(-2)
        if self.guide is not None:
            x = x + self.guess(guess.flatten(-2).transpose(-1, -2))
        return x.flatten(1, 2)

    def guesses(self, codes: torch.Tensor, plucker: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The guide's codes of frames K..T from frames 0..T-1: codes [B, T, D, h, w], actions [B, >= T, A]
        (action t leads from frame t to t+1), rays of frames 0..T [B, T+1, 6, h, w] -> [B, T+1-K, D, h, w]."""
        K = self.config.context
        n = plucker.shape[1] - K
        return torch.stack([self.guide.step(codes[:, j:j + K], plucker[:, j:j + K], action[:, K - 1 + j],
                                            plucker[:, K + j]) for j in range(n)], 1)

    # --- transformer --------------------------------------------------------------------------
    def _forward(self, x, frame, n_content: int, cache: KVCache | None):
        """Run tokens x [B, M, C] (content first, then queries; frame positions `frame` [M]) after the cache.

        Returns logits of the query tokens [B, M - n_content, D, maxl] and the content tokens' keys/values.
        """
        N = self.config.tokens_per_frame
        is_query = torch.arange(x.shape[1], device=x.device) >= n_content
        if cache is None or cache.frames == 0:
            col_frame, col_query, past = frame, is_query, [None] * len(self.blocks)
        else:
            cached = torch.arange(cache.start, cache.start + cache.frames, device=x.device).repeat_interleave(N)
            col_frame = torch.cat([cached, frame])
            col_query = torch.cat([torch.zeros_like(cached, dtype=torch.bool), is_query])
            past = list(zip(cache.keys, cache.values, strict=True))
        mask = attention_mask(frame, is_query, col_frame, col_query)
        x = self.drop(x)
        keys, values = [], []
        for block, kv in zip(self.blocks, past, strict=True):
            x, (k, v) = block(x, frame, mask, kv)
            keys.append(k[:, :, :n_content])
            values.append(v[:, :, :n_content])
        logits = self.head(self.ln_f(x[:, n_content:])).float()
        logits = logits.unflatten(-1, self.pad.shape).masked_fill(self.pad, NEG)
        return logits, keys, values

    # --- training -----------------------------------------------------------------------------
    def _check(self, name: str, t: torch.Tensor, want: tuple) -> None:
        if tuple(t.shape) != want:
            raise InputError(f"{name} must have shape {list(want)}, got {list(t.shape)}")

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        c = self.config
        K, H, L, N, s, D = c.context, c.horizon, c.context + c.horizon, c.tokens_per_frame, c.latent_size, \
            len(c.fsq_levels)
        lat, pl, act = batch["latents"], batch["plucker"], batch["actions"]
        B, W = lat.shape[0], c.window
        self._check("latents", lat, (B, W, D, s, s))
        self._check("plucker", pl, (B, W, 6, s, s))
        self._check("actions", act, (B, W - 1, c.action_dim))
        guide_mse = None
        if self.guide is not None and c.guide_horizon > 1:  # the guide on its own rollout, from the true frames
            roll = self.guide.rollout(batch, c.guide_horizon)
            guide_mse = ((roll - lat[:, K:K + c.guide_horizon].float()) ** 2).mean()
        lat, pl, act = lat[:, :L], pl[:, :L], act[:, :L - 1]  # the transformer's window
        digits = self.to_digits(lat)  # [B, L, N, D]
        context = digits[:, :L - 1]
        if c.self_forcing > 0 and H > 1:
            context = self._self_forced(lat, pl, act, context)
        guess = None
        if self.guide is not None:
            with torch.set_grad_enabled(guide_mse is None):
                guess = self.guesses(self.to_codes(context), pl, act)  # [B, H, D, s, s]
            if guide_mse is None:  # one step ahead, from the (teacher- or self-forced) context
                guide_mse = ((guess - lat[:, K:].float()) ** 2).mean()
            guess = guess.detach()
        x = torch.cat([self.embed_content(context, pl[:, :L - 1]),
                       self.embed_query(pl[:, K:], act[:, K - 1:], context[:, K - 1:], guess)], 1)
        dev = lat.device
        frame = torch.cat([torch.arange(L - 1, device=dev), torch.arange(K, L, device=dev)]).repeat_interleave(N)
        logits, _, _ = self._forward(x, frame, (L - 1) * N, None)  # [B, H*N, D, maxl]
        target = digits[:, K:].flatten(1, 2)  # [B, H*N, D]
        ce = F.cross_entropy(logits.flatten(0, -2), target.flatten())
        z = (torch.logsumexp(logits, -1) ** 2).mean()
        token_acc = (logits.argmax(-1) == target).all(-1).float().mean()
        metrics = {"ce": ce.detach(), "token_acc": token_acc.detach(), "z": z.detach()}
        loss = ce + c.z_loss * z
        if guide_mse is not None:
            metrics["guide_mse"] = guide_mse.detach()
            loss = loss + guide_mse
        return loss, metrics

    @torch.no_grad()
    def _self_forced(self, lat, pl, act, context):
        """Replace frames K..L-2 of a `self_forcing` fraction of the windows with the model's own samples.

        Only the picked windows are rolled out: the others' samples would be thrown away."""
        K, H = self.config.context, self.config.horizon
        pick = torch.rand(lat.shape[0], device=lat.device) < self.config.self_forcing
        if not pick.any():
            return context
        lat, pl, act = lat[pick], pl[pick], act[pick]
        past, cache, own = lat[:, :K], None, []
        for j in range(H - 1):
            nxt, cache = self.predict(past, pl[:, j:j + K], act[:, K - 1 + j], pl[:, K + j], cache=cache)
            own.append(self.to_digits(nxt))
            past = torch.cat([past[:, 1:], nxt[:, None]], 1)
        mixed = context.clone()
        mixed[pick, K:] = torch.stack(own, 1)
        return mixed

    # --- stepping -----------------------------------------------------------------------------
    def next_logits(self, past, past_plucker, action, plucker, cache: KVCache | None = None):
        """Logits [B, h*w, D, max level] of the next frame's digits, and the updated cache (see `predict`)."""
        c = self.config
        N, s, D = c.tokens_per_frame, c.latent_size, len(c.fsq_levels)
        if past.dim() != 5 or not 1 <= past.shape[1] <= c.max_frames - 1:
            raise InputError(f"past must have shape [B, T, {D}, {s}, {s}] with 1 <= T <= {c.max_frames - 1}, "
                             f"got {list(past.shape)}")
        B, T = past.shape[:2]
        self._check("past", past, (B, T, D, s, s))
        self._check("past_plucker", past_plucker, (B, T, 6, s, s))
        self._check("action", action, (B, c.action_dim))
        self._check("plucker", plucker, (B, 6, s, s))
        last = self.to_digits(past[:, -1:])
        guess = None
        if self.guide is not None:
            if c.context > T:
                raise InputError(f"a guided model needs the last {c.context} frames, got past with {T}")
            guess = self.guide.step(past[:, -c.context:].float(), past_plucker[:, -c.context:].float(),
                                    action.float(), plucker.float())[:, None]
        query = self.embed_query(plucker[:, None], action[:, None], last, guess)
        dev = past.device
        if cache is None:  # prefill: every past frame, then the queries of the next one
            x = torch.cat([self.embed_content(self.to_digits(past), past_plucker), query], 1)
            frame = torch.arange(T + 1, device=dev).repeat_interleave(N)
            start, old = 0, KVCache()
        else:  # append the newest frame only
            if cache.keys and cache.keys[0].shape[0] != B:
                raise InputError(f"cache holds a batch of {cache.keys[0].shape[0]}, got past with batch {B}")
            old = cache.keep_last(c.cache_limit - 1, N)
            x = torch.cat([self.embed_content(last, past_plucker[:, -1:]), query], 1)
            p = old.start + old.frames
            frame = torch.arange(p, p + 2, device=dev).repeat_interleave(N)
            start = old.start
        logits, keys, values = self._forward(x, frame, x.shape[1] - N, old)
        if old.frames:
            keys = [torch.cat([a, b], 2) for a, b in zip(old.keys, keys, strict=True)]
            values = [torch.cat([a, b], 2) for a, b in zip(old.values, values, strict=True)]
        new = KVCache(keys, values, start, old.frames + (T if cache is None else 1))
        return logits, new.keep_last(c.cache_limit, N)

    @torch.no_grad()
    def predict(self, past: torch.Tensor, past_plucker: torch.Tensor, action: torch.Tensor, plucker: torch.Tensor,
                generator: torch.Generator | None = None, cache: KVCache | None = None, *,
                temperature: float | None = None, top_k: int | None = None) -> tuple[torch.Tensor, KVCache]:
        """Sample the next frame's FSQ codes [B, D, h, w] and return them with the KV cache.

        past [B, T, D, h, w] (1 <= T <= max_frames - 1; usually the last `context` frames),
        past_plucker [B, T, 6, h, w], action [B, A] (from the last past frame to the next),
        plucker [B, 6, h, w] (the next frame's camera). With cache=None all T frames are encoded;
        with a cache from the previous call only past[:, -1] is added. `temperature` and `top_k`
        override the config's for this call.
        """
        logits, cache = self.next_logits(past, past_plucker, action, plucker, cache)
        temperature = self.config.temperature if temperature is None else temperature
        digits = sample(logits, temperature, self.config.top_k if top_k is None else top_k, generator,
                        self.config.greedy)
        return self.to_codes(digits), cache


def sample(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None,
           greedy: str = "mean") -> torch.Tensor:
    """Per-digit sampling: logits [..., classes] -> indices [...]; temperature 0 is greedy (`greedy`:
    the rounded expected index or the argmax; padding classes have zero probability either way)."""
    if temperature <= 0:
        if greedy == "mode":
            return logits.argmax(-1)
        p = torch.softmax(logits.float(), -1)
        mean = (p * torch.arange(p.shape[-1], device=p.device, dtype=p.dtype)).sum(-1)
        return mean.round().long().clamp(0, p.shape[-1] - 1)
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs.flatten(0, -2), 1, generator=generator).view(probs.shape[:-1])
