"""Planning in the learned world: CEM and MPPI over action sequences, as a `Policy`.

At each step the planner starts a rollout from what it observes (the state, or the last K frames
encoded), repeats it once per candidate, rolls every candidate action sequence forward in one
batch on the model's device (the state alone: only predicted states are scored, so no latent
dynamics and no decoding), and scores it with the world's own reward on the predicted states.
It acts with the first action of the best sequence and warm-starts the next step from the rest
(receding horizon). Because it is a `Policy`, it plans in the learned world while acting in any backend.

The optimizers (`cem`, `mppi`) take any batched score function, so they are tested on known
objectives as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from cosmos_sim.errors import InputError, UnknownChoiceError

Score = Callable[[torch.Tensor], torch.Tensor]  # actions [B, P, H, A] -> returns [B, P]
METHODS = ("cem", "mppi")


@dataclass(frozen=True)
class PlannerConfig:
    """Defaults: the configuration behind the documented planner figure (CEM, 12 steps, 256 candidates,
    4 iterations, planning from the observed state), so `--policy planner` is the planner that was
    measured. Override per run with `planner:cem?horizon=8&population=64`."""

    method: str = "cem"
    horizon: int = 12
    population: int = 256
    iterations: int = 4
    elites: int = 8  # CEM
    temperature: float = 0.5  # MPPI: weights exp((R - max R) / (temperature * std R))
    init_std: float = 0.7
    min_std: float = 0.05
    smoothing: float = 0.1  # new mean = (1 - smoothing) * fit + smoothing * old mean
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise UnknownChoiceError("planner method", self.method, METHODS)
        if min(self.horizon, self.population, self.iterations, self.elites) < 1 or self.elites > self.population:
            raise InputError("horizon, population, iterations must be >= 1 and 1 <= elites <= population")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_spec(cls, spec: str, seed: int = 0) -> PlannerConfig:
        """'planner[:cem|mppi][?name=value&...]' -> a config; names are the fields above."""
        head, _, query = str(spec).partition("?")
        _, _, method = head.partition(":")
        values: dict[str, Any] = {"method": method or "cem", "seed": seed}
        types = {f.name: f.type for f in fields(cls)}
        for item in filter(None, query.split("&")):
            name, eq, value = item.partition("=")
            if name not in types or name == "method" or not eq:
                raise UnknownChoiceError("planner setting", item, [k for k in types if k != "method"])
            kind = {"int": int, "float": float}[types[name]]
            try:
                values[name] = kind(value)
            except ValueError:
                raise InputError(f"planner setting {name}={value!r}: expected {types[name]}") from None
        return cls(**values)


def _sample(mean: torch.Tensor, std: torch.Tensor, P: int, generator: torch.Generator | None) -> torch.Tensor:
    """[B, H, A] mean/std -> candidates [B, P, H, A] in [-1, 1]; candidate 0 is the mean itself."""
    noise = torch.randn((mean.shape[0], P, *mean.shape[1:]), generator=generator, device=mean.device)
    cand = mean[:, None] + std[:, None] * noise
    cand[:, 0] = mean
    return cand.clamp(-1.0, 1.0)


def cem(score: Score, mean: torch.Tensor, config: PlannerConfig, generator: torch.Generator | None = None
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy method: refit a Gaussian to the elite candidates. Returns (mean [B,H,A], best return [B])."""
    std = torch.full_like(mean, config.init_std)
    best = torch.full(mean.shape[:1], -torch.inf, device=mean.device)
    best_seq = mean.clone()
    for _ in range(config.iterations):
        cand = _sample(mean, std, config.population, generator)
        R = score(cand)  # [B, P]
        top = R.topk(config.elites, dim=1).indices
        elite = torch.gather(cand, 1, top[..., None, None].expand(-1, -1, *cand.shape[2:]))
        i = R.argmax(1)
        better = R.max(1).values > best
        best_seq[better] = cand[torch.arange(len(i)), i][better]
        best = torch.maximum(best, R.max(1).values)
        mean = (1 - config.smoothing) * elite.mean(1) + config.smoothing * mean
        std = elite.std(1, unbiased=False).clamp_min(config.min_std)
    return best_seq, best


def mppi(score: Score, mean: torch.Tensor, config: PlannerConfig, generator: torch.Generator | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Model-predictive path integral: a return-weighted average of the candidates."""
    std = torch.full_like(mean, config.init_std)
    best = torch.full(mean.shape[:1], -torch.inf, device=mean.device)
    for _ in range(config.iterations):
        cand = _sample(mean, std, config.population, generator)
        R = score(cand)
        scale = R.std(1, keepdim=True).clamp_min(1e-6) * config.temperature
        w = torch.softmax((R - R.max(1, keepdim=True).values) / scale, dim=1)[..., None, None]
        fit = (w * cand).sum(1)
        mean = (1 - config.smoothing) * fit + config.smoothing * mean
        std = ((w * (cand - fit[:, None]) ** 2).sum(1)).sqrt().clamp_min(config.min_std)
        best = torch.maximum(best, R.max(1).values)
    return mean, best


class Planner:
    """Plans with a WorldModel for N envs together; acts on states [N, S] and/or pixels [N, H, W, 3].

    With obs_mode "state" or "both" the observed state starts the model's state rollouts (what a
    robot's proprioception and object tracker would give); with "pixels" the state is read off the
    encoded frames. Either way every prediction comes from the learned world. `camera`: the pose the acting env
    renders with (default: the world's default camera); the model conditions on it.
    """

    def __init__(self, model: Any, config: PlannerConfig | None = None, camera=None, device: str | None = None,
                 obs_mode: str = "both"):
        from cosmos_sim.envs.world_model_env import resolve_device
        from cosmos_sim.world_model import WorldModel
        from cosmos_sim.worlds import get_world

        if isinstance(model, (str, os.PathLike)):
            model = WorldModel.load(model, device=resolve_device(device))
        self.model = model
        self.world = get_world(model.world)
        self.config = config or PlannerConfig()
        if obs_mode not in ("pixels", "both", "state"):
            raise InputError(f"obs_mode must be 'pixels', 'both' or 'state', got {obs_mode!r}")
        self.obs_mode = obs_mode
        self.camera = camera or self.world.default_camera
        c = self.config
        self.name = f"planner({c.method}, H={c.horizon}, P={c.population}, I={c.iterations})"
        dev = model.device
        ext = torch.from_numpy(self.camera.extrinsics().astype(np.float32)).to(dev)[None]
        fov = torch.tensor([self.camera.fovy], dtype=torch.float32, device=dev)
        self._ext, self._fov = ext, fov
        self.generator = torch.Generator(device=dev).manual_seed(self.config.seed)
        self._history: torch.Tensor | None = None  # [N, K, H, W, 3] uint8
        self._plan: torch.Tensor | None = None  # [N, H, A]
        self._fresh: torch.Tensor | None = None  # [N] envs reset since the last act()

    @property
    def image_size(self) -> int:
        return self.model.image_size

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None or self._plan is None:
            self._history, self._plan = None, None
            return
        m = torch.as_tensor(np.asarray(mask, bool), device=self._plan.device)
        self._fresh = m if self._fresh is None else self._fresh | m
        self._plan[m] = 0.0

    def _start(self, obs) -> Any:
        """The rollout state to plan from: the observed state when there is one, else encoded pixels."""
        dev = self.model.device
        if self.obs_mode != "pixels":  # the state is known: plan in state space alone (no pixels to encode)
            st = obs["state"] if isinstance(obs, dict) else obs
            state = torch.as_tensor(np.asarray(st), dtype=torch.float32, device=dev)
            if state.ndim != 2 or state.shape[1] != self.model.state_dim:
                raise InputError(f"the planner acts on states [N, {self.model.state_dim}], got {tuple(state.shape)}")
            return self.model.start_states(state)
        px = obs["pixels"] if isinstance(obs, dict) else obs
        frames = torch.as_tensor(np.asarray(px), device=dev)
        if frames.dtype != torch.uint8 or frames.ndim != 4:
            raise InputError(f"the planner acts on uint8 pixels [N, H, W, 3], got {tuple(frames.shape)}")
        N, K = frames.shape[0], self.model.context
        fresh = self._fresh
        if self._history is None or self._history.shape[0] != N:
            self._history = frames[:, None].repeat(1, K, 1, 1, 1)
        else:
            hist = torch.cat([self._history[:, 1:], frames[:, None]], 1)
            if fresh is not None and fresh.any():  # a reset env starts from its first frame, repeated
                hist[fresh] = frames[fresh][:, None].repeat(1, K, 1, 1, 1)
            self._history = hist
        return self.model.start(self._history, self._ext.expand(N * K, 4, 4).reshape(N, K, 4, 4),
                                self._fov.expand(N * K).reshape(N, K))

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        base = self._start(obs)
        N, A = base.state.shape[0], self.world.action_dim
        if self._plan is None or self._plan.shape[0] != N:
            self._plan = torch.zeros(N, self.config.horizon, A, device=self.model.device)
        self._fresh = torch.zeros(N, dtype=torch.bool, device=self.model.device)
        P, H = self.config.population, self.config.horizon

        def score(cand: torch.Tensor) -> torch.Tensor:  # [N, P, H, A] -> [N, P]
            st = base.repeat(P)
            flat = cand.reshape(N * P, H, A)
            total = torch.zeros(N * P, device=cand.device)
            for h in range(H):
                _, states = self.model.step(st, flat[:, h], decode=False, latents=False)
                total += torch.as_tensor(self.world.reward(states, flat[:, h]), dtype=torch.float32)
            return total.view(N, P)

        warm = torch.cat([self._plan[:, 1:], self._plan[:, -1:]], 1)
        optimizer = cem if self.config.method == "cem" else mppi
        plan, _ = optimizer(score, warm, self.config, self.generator)
        self._plan = plan
        return plan[:, 0].clamp(-1, 1).cpu().numpy().astype(np.float32)
