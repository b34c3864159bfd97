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
and returns (loss, metrics). Its `predict(past, past_plucker, action, plucker, generator, cache,
**sampling)` gives the next latent `[B, D, h, w]` from the last K latents; `cache` is an opaque
per-family object carried across env steps (the autoregressive KV cache), None for families
without one; `sampling` holds the family's sampling options (see `SamplingOption`).

A family is one module: its config dataclass, presets, sampling options and model, registered
with `register_family` (docs/adding-a-dynamics-family.md). Everything else finds it by name here:
`dynamics_config` (training), `build_dynamics` (loading), `Family.sampling_options` (the envs).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from cosmos_sim.errors import InputError, UnknownChoiceError

if TYPE_CHECKING:
    from cosmos_sim.tokenizer import TokenizerConfig


class Dynamics(Protocol):
    family: str
    config: Any  # a frozen dataclass with to_dict() / from_dict() and a `window` property (frames per batch)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]: ...

    def predict(self, past: torch.Tensor, past_plucker: torch.Tensor, action: torch.Tensor,
                plucker: torch.Tensor, generator: torch.Generator | None = None,
                cache: Any = None, **sampling: Any) -> tuple[torch.Tensor, Any]: ...


class FamilyConfig:
    """Mixin for a family's frozen config dataclass: a JSON round trip (tuples as lists) and the
    training window, `context + horizon` frames unless the family trains further ahead."""

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    @property
    def window(self) -> int:
        """Frames per training window (see the batch layout above)."""
        return self.context + self.horizon


@dataclass(frozen=True)
class SamplingOption:
    """One keyword of a family's `predict` that a caller may set per env (`sampling={name: value}`).

    `kind` int or float: a finite number >= `minimum`; str: one of `choices`. Checked once, when an
    env is made, so a bad value fails there and not deep inside the first step.
    """

    kind: type
    minimum: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, name: str, value: Any) -> Any:
        """`value` as `predict` takes it; ValueError (UnknownChoiceError for choices) naming the option."""
        if self.kind is str:
            if not isinstance(value, str) or value not in self.choices:
                raise UnknownChoiceError(name, value, self.choices)
            return value
        integral = self.kind is int
        ok = isinstance(value, numbers.Integral if integral else numbers.Real) and not isinstance(value, bool)
        ok = ok and (integral or math.isfinite(value)) and (self.minimum is None or value >= self.minimum)
        if not ok:
            bound = "" if self.minimum is None else f" >= {self.minimum:g}"
            raise InputError(f"sampling option {name} must be {'an int' if integral else 'a finite number'}{bound}, "
                             f"got {value!r}")
        return int(value) if integral else float(value)


# (tokenizer config, action size) -> the config fields the data fixes (latent shape, action size, ...)
ConfigFor = Callable[["TokenizerConfig", int], dict]


def latent_shapes(tokenizer: TokenizerConfig, action_dim: int) -> dict:
    """The fields most families take from the data: latent channels and size, action size."""
    return {"latent_channels": tokenizer.latent_dim, "latent_size": tokenizer.latent_size, "action_dim": action_dim}


@dataclass(frozen=True)
class Family:
    """A registered dynamics family: what training, loading and the envs look up by name."""

    name: str
    config_cls: type
    model_cls: type[nn.Module]
    presets: Mapping[str, Mapping[str, Any]]  # preset name -> config fields it sets
    config_for: ConfigFor
    sampling: Mapping[str, SamplingOption]  # predict's keyword -> what it accepts

    def build(self, config: dict | Any) -> nn.Module:
        return self.model_cls(self.config_cls.from_dict(config) if isinstance(config, dict) else config)

    def preset_config(self, preset: str, tokenizer: TokenizerConfig, action_dim: int, **overrides: Any) -> dict:
        """Config dict of `preset` for this tokenizer's latents: defaults < preset < data < `overrides`."""
        if preset not in self.presets:
            raise UnknownChoiceError(f"{self.name} preset", preset, self.presets)
        base = self.config_cls().to_dict()
        unknown = sorted(set(overrides) - set(base))
        if unknown:
            raise InputError(f"the {self.name} config has no field {', '.join(unknown)}; "
                             f"its fields: {', '.join(base)}")
        merged = {**base, **self.presets[preset], **self.config_for(tokenizer, action_dim), **overrides}
        return self.config_cls.from_dict(merged).to_dict()

    def sampling_options(self, **options: Any) -> dict:
        """Validated keyword arguments for `predict` (an option this family does not have is an error)."""
        out = {}
        for name, value in options.items():
            if name not in self.sampling:
                valid = ", ".join(sorted(self.sampling)) or "none"
                raise InputError(f"sampling option {name!r} does not apply to the {self.name} family "
                                 f"(its sampling options: {valid})")
            out[name] = self.sampling[name].check(name, value)
        return out


# family name -> Family; one module per family registers itself here (see `register_family`).
FAMILIES: dict[str, Family] = {}


def register_family(name: str, config_cls: type, *, presets: Mapping[str, Mapping[str, Any]], config_for: ConfigFor,
                    sampling: Mapping[str, SamplingOption] | None = None
                    ) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: the model class becomes the dynamics family `name`.

    `config_cls`: a frozen dataclass with defaults, `to_dict`/`from_dict` and a `window` property.
    `presets`: preset name -> config fields. `config_for(tokenizer_config, action_dim)`: the fields
    the data fixes (see `latent_shapes`). `sampling`: the keywords of `predict` a caller may set.
    """

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        fields = config_cls().to_dict()
        for preset, values in presets.items():
            bad = sorted(set(values) - set(fields))
            if bad:
                raise InputError(f"{name} preset {preset!r} sets {', '.join(bad)}, which "
                                 f"{config_cls.__name__} does not have")
        old = FAMILIES.get(name)
        where = f"{cls.__module__}.{cls.__qualname__}"
        if old is not None and f"{old.model_cls.__module__}.{old.model_cls.__qualname__}" != where:
            raise InputError(f"dynamics family {name!r} is already registered by "
                             f"{old.model_cls.__module__}.{old.model_cls.__qualname__}")
        cls.family = name
        FAMILIES[name] = Family(name, config_cls, cls, dict(presets), config_for, dict(sampling or {}))
        return cls

    return wrap


def get_family(name: str) -> Family:
    # The built-in families are registered: importing this module imported the `cosmos_sim.dynamics` package first.
    if name not in FAMILIES:
        raise UnknownChoiceError("dynamics model", name, FAMILIES)
    return FAMILIES[name]


def build_dynamics(family: str, config: dict | Any) -> nn.Module:
    return get_family(family).build(config)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of scalars `t` [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
