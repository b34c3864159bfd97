"""WorldModel = tokenizer + latent dynamics + state head, saved as one safetensors file.

The batched API the envs use:
    state = model.start(frames, extrinsics, fovy, states=None)   # K context frames per env (+ known state)
    frames, states = model.step(state, actions, extrinsics, fovy, generator)
Frames are uint8 `[B, H, W, 3]` tensors on the model's device; states are the world's state vector,
so rewards and success come from the world's own functions. Each step runs the state head first
(the next state from the state and the action) and then the latent dynamics, conditioned on the
action and that next state; `step(..., latents=False)` / `start_states` run the state alone.

The file holds weights under `tokenizer/`, `dynamics/`, `state_head/` and normalization statistics
under `stats/`; its header metadata holds the world, image size, action and state layouts and every
config as JSON. Loading never unpickles; a file for another world, image size or action size is
refused with an error naming both sides.

The state models it composes (`StateHead` and its parts) live in `cosmos_sim.state_model`, the task head in
`cosmos_sim.task_head`; they stay importable from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cosmos_sim.camera import CameraCoverage, plucker_from_extrinsics
from cosmos_sim.dynamics import FAMILIES, build_dynamics, get_family
from cosmos_sim.errors import CheckpointError, ConfigMismatchError, InputError
from cosmos_sim.state_model import MLPEnsemble, ObjectSimulator, StateHead, object_slots
from cosmos_sim.task_head import TaskHead
from cosmos_sim.tokenizer import CausalVideoTokenizer, Stream, TokenizerConfig
from cosmos_sim.tokenizer.model import pixels_to_unit, unit_to_pixels
from cosmos_sim.training.checkpoint import read_checkpoint, resolve_checkpoint, write_checkpoint

KIND = "world_model"
FILE = "world_model.safetensors"
CAMERA_MOVED = 1e-4  # a change in any Plücker ray above this between frames means the camera moved

# the last five: state_model's and task_head's
__all__ = ["WorldModel", "RolloutState", "KIND", "FILE", "CAMERA_MOVED",
           "StateHead", "TaskHead", "MLPEnsemble", "ObjectSimulator", "object_slots"]


@dataclass
class RolloutState:
    """Per-batch memory of a rollout: the last K latents and rays, the decoder stream, the dynamics cache."""

    past: torch.Tensor  # [B, K, D, h, w], normalized latents
    past_plucker: torch.Tensor  # [B, K, 6, h, w]
    stream: Stream
    cache: Any = None
    steps: int = 0
    state: torch.Tensor | None = None  # [B, S] normalized state (recurrent state heads)
    extra: dict = field(default_factory=dict)

    def assign(self, idx: torch.Tensor, other: RolloutState) -> None:
        """Put `other`'s rollouts at batch positions `idx` (a per-env reset inside a running batch).

        The dynamics cache (the autoregressive model's keys/values) spans the whole batch at one
        frame position, so it is dropped and rebuilt from `past` on the next step.
        """
        self.past[idx] = other.past
        self.past_plucker[idx] = other.past_plucker
        if self.state is not None and other.state is not None:
            self.state[idx] = other.state
        for key, value in other.stream.cache.items():
            self.stream.cache[key][idx] = value
        self.cache = None

    def repeat(self, n: int) -> RolloutState:
        """Each rollout repeated n times in place order ([a, b] -> [a]*n + [b]*n): candidates for planning."""
        stream = Stream()
        stream.cache = {k: v.repeat_interleave(n, 0) for k, v in self.stream.cache.items()}
        return RolloutState(past=self.past.repeat_interleave(n, 0),
                            past_plucker=self.past_plucker.repeat_interleave(n, 0), stream=stream, steps=self.steps,
                            state=None if self.state is None else self.state.repeat_interleave(n, 0),
                            extra=dict(self.extra))


class WorldModel(nn.Module):
    def __init__(self, tokenizer: CausalVideoTokenizer, dynamics: nn.Module, state_head: StateHead, *,
                 world: str, state_layout: list, action_names: list, latent_mean: torch.Tensor,
                 latent_std: torch.Tensor, state_mean: torch.Tensor, state_std: torch.Tensor, info: dict | None = None,
                 task_head: TaskHead | None = None):
        super().__init__()
        self.tokenizer, self.dynamics, self.state_head = tokenizer.eval(), dynamics.eval(), state_head.eval()
        self.task_head = None if task_head is None else task_head.eval()
        self.world = world
        self.state_layout = [list(e) for e in state_layout]
        self.action_names = list(action_names)
        self.info = dict(info or {})
        self.source: str | None = None  # the file it was loaded from
        for name, t in (("latent_mean", latent_mean), ("latent_std", latent_std), ("state_mean", state_mean),
                        ("state_std", state_std)):
            self.register_buffer(name, t.detach().float().clone())
        self.requires_grad_(False)

    # --- facts -----------------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        return self.tokenizer.config.image_size

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def camera_coverage(self, world: Any) -> CameraCoverage:
        """The camera poses this model was trained on: recorded at training time, or (older models) what its
        data's camera mode means in `world`."""
        return CameraCoverage.from_info(self.info, world)

    @property
    def state_dim(self) -> int:
        return int(self.state_mean.numel())

    @property
    def context(self) -> int:
        return self.dynamics.config.context

    @property
    def family(self) -> str:
        return self.dynamics.family

    @property
    def device(self) -> torch.device:
        return self.latent_mean.device

    def with_state_head(self, head: StateHead) -> WorldModel:
        """The same model (tokenizer, dynamics and statistics shared, not copied) with another state head."""
        return type(self)(self.tokenizer, self.dynamics, head, world=self.world, state_layout=self.state_layout,
                          action_names=self.action_names, latent_mean=self.latent_mean, latent_std=self.latent_std,
                          state_mean=self.state_mean, state_std=self.state_std, info=self.info,
                          task_head=self.task_head)

    def check_compatible(self, world: str | None = None, image_size: int | None = None,
                         action_dim: int | None = None) -> None:
        """Raise ConfigMismatchError naming both sides if the caller expects another world or shape."""
        diffs = []
        if world is not None and world.lower() != self.world.lower():
            diffs.append(f"world: model has {self.world!r}, caller has {world!r}")
        if image_size is not None and int(image_size) != self.image_size:
            diffs.append(f"image_size: model has {self.image_size}, caller has {image_size}")
        if action_dim is not None and int(action_dim) != self.action_dim:
            diffs.append(f"action_dim: model has {self.action_dim}, caller has {action_dim}")
        if diffs:
            raise ConfigMismatchError("world model does not match: " + "; ".join(diffs))

    @torch.no_grad()
    def task(self, prev: torch.Tensor, actions: torch.Tensor, nxt: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Learned reward [B], terminated [B] and success [B] of steps from `prev` to `nxt` (world states [B, S])
        under `actions` [B, A]; for models with a task head (Gymnasium envs' twins)."""
        return self._task_head().predict(self.normalize_state(prev), actions.float(), self.normalize_state(nxt))

    def _task_head(self):
        if self.task_head is None:
            raise ConfigMismatchError(f"this world model ({self.world}) has no learned reward head: its world "
                                      "computes rewards by code")
        return self.task_head

    @torch.no_grad()
    def task_with_spread(self, prev: torch.Tensor, actions: torch.Tensor, nxt: torch.Tensor
                         ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
        """`task`'s outputs and the task head members' disagreement per step (`TaskHead.spread`), in one pass."""
        return self._task_head().predict_with_spread(self.normalize_state(prev), actions.float(),
                                                     self.normalize_state(nxt))

    def task_spread(self, prev: torch.Tensor, actions: torch.Tensor, nxt: torch.Tensor) -> dict[str, torch.Tensor]:
        """The task head members' disagreement per step ({} for a one-member head or none)."""
        return {} if self.task_head is None else self.task_with_spread(prev, actions, nxt)[1]

    @property
    def trust(self) -> dict | None:
        """The per-step trust thresholds calibrated on held-out data at training (cosmos_sim.trust); None for a
        model without an ensemble part or trained before them."""
        return self.info.get("trust")

    # --- latents ---------------------------------------------------------------------------------
    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean) / self.latent_std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std + self.latent_mean

    def normalize_state(self, s: torch.Tensor) -> torch.Tensor:
        return (s - self.state_mean) / self.state_std

    def denormalize_state(self, s: torch.Tensor) -> torch.Tensor:
        return s * self.state_std + self.state_mean

    @staticmethod
    def _to_unit(frames: torch.Tensor) -> torch.Tensor:
        return pixels_to_unit(frames.permute(0, 1, 4, 2, 3))  # uint8 [B,T,H,W,3] -> [B,T,3,H,W]

    @staticmethod
    def _to_uint8(x: torch.Tensor) -> torch.Tensor:
        return unit_to_pixels(x).permute(0, 1, 3, 4, 2)

    # --- rollout API -----------------------------------------------------------------------------
    @torch.no_grad()
    def start(self, frames: torch.Tensor, extrinsics: torch.Tensor, fovy: torch.Tensor,
              states: torch.Tensor | None = None) -> RolloutState:
        """Begin rollouts from K context frames: uint8 [B, K, H, W, 3], extrinsics [B, K, 4, 4], fovy [B, K].

        `states` [B, S]: the world state at the last context frame when known (physics resets know it);
        otherwise it is read off the last latent by the static head.
        """
        B, K = frames.shape[:2]
        s = self.image_size
        if frames.dtype != torch.uint8 or tuple(frames.shape[2:]) != (s, s, 3):
            raise InputError(f"frames must be uint8 [B, K, {s}, {s}, 3], got {frames.dtype} {tuple(frames.shape)}")
        if K < 1:
            raise InputError("need at least one context frame")
        frames = frames.to(self.device)
        x = self._to_unit(frames)
        enc = Stream()
        z = self.normalize(self.tokenizer.encode(x, enc))
        rays = plucker_from_extrinsics(extrinsics.reshape(B * K, 4, 4).to(self.device),
                                       fovy.reshape(B * K).to(self.device),
                                       self.tokenizer.config.latent_size).view(B, K, 6, *z.shape[-2:])
        if self.context > K:  # repeat the first frame, as the tokenizer pads time
            pad = self.context - K
            z = torch.cat([z[:, :1].expand(-1, pad, -1, -1, -1), z], 1)
            rays = torch.cat([rays[:, :1].expand(-1, pad, -1, -1, -1), rays], 1)
        dec = Stream()
        self.tokenizer.decode(self.denormalize(z[:, -K:]), dec)  # warm the decoder's causal cache
        if states is not None:
            if tuple(states.shape) != (B, self.state_dim):
                raise InputError(f"states must be [{B}, {self.state_dim}], got {tuple(states.shape)}")
            s0 = self.normalize_state(states.to(self.device).float())
        else:
            s0 = self.state_head.static(z[:, -1])
        return RolloutState(past=z[:, -self.context:], past_plucker=rays[:, -self.context:], stream=dec, state=s0)

    def start_states(self, states: torch.Tensor) -> RolloutState:
        """Begin state-only rollouts from known world states [B, S] (step them with `latents=False`)."""
        if states.ndim != 2 or states.shape[1] != self.state_dim:
            raise InputError(f"states must be [B, {self.state_dim}], got {tuple(states.shape)}")
        B, c = states.shape[0], self.tokenizer.config
        past = torch.zeros(B, 0, c.latent_dim, c.latent_size, c.latent_size, device=self.device)
        return RolloutState(past=past, past_plucker=past.new_zeros(B, 0, 6, c.latent_size, c.latent_size),
                            stream=Stream(), state=self.normalize_state(states.to(self.device).float()),
                            extra={"stale_latents": True})

    def _advance_state(self, state: RolloutState, a: torch.Tensor, generator: torch.Generator | None,
                       mode: str = "mean") -> torch.Tensor:
        """The next normalized state; with an ensemble, the members' mean (or, with `ensemble="sample"`, one
        member drawn per rollout and step; `"member"`: rollout b steps with member b mod K throughout) and
        their disagreement in `state.extra["uncertainty"]` [B]: the members' standard deviation, averaged over
        the state's entries (in units of each entry's spread)."""
        head = self.state_head
        if head.members == 1:
            state.extra["uncertainty"] = torch.zeros(a.shape[0], device=a.device)
            return head(state.state, a)
        m = head.forward_members(state.state, a)  # [K, B, S]
        state.extra["uncertainty"] = m.std(0).mean(-1)
        if mode in ("sample", "member"):  # sample: a member drawn per rollout and step; member: rollout b's is b mod K
            rows = torch.arange(a.shape[0], device=a.device)
            pick = (torch.randint(head.members, (a.shape[0],), generator=generator, device=a.device)
                    if mode == "sample" else rows % head.members)
            return m[pick, rows]
        return m.mean(0)

    def rays(self, extrinsics: torch.Tensor, fovy: torch.Tensor) -> torch.Tensor:
        """Camera extrinsics [B, 4, 4] and fovy [B] -> Plücker rays at latent resolution [B, 6, h, w]."""
        return plucker_from_extrinsics(extrinsics.to(self.device), fovy.to(self.device),
                                       self.tokenizer.config.latent_size)

    def sampling_options(self, **options: Any) -> dict:
        """Validated `sampling` for `step`: the dynamics family's options (diffusion `steps`, `sampler`;
        autoregressive `temperature`, `top_k`; none for deterministic), checked by the family."""
        return get_family(self.family).sampling_options(**options)

    @torch.no_grad()
    def step(self, state: RolloutState, actions: torch.Tensor, extrinsics: torch.Tensor | None = None,
             fovy: torch.Tensor | None = None, generator: torch.Generator | None = None, decode: bool = True, *,
             rays: torch.Tensor | None = None, sampling: dict | None = None, latents: bool = True,
             ensemble: str = "mean") -> tuple[torch.Tensor | None, torch.Tensor]:
        """Actions [B, A] and the next frame's camera -> (frames uint8 [B, H, W, 3] or None, states [B, S]).

        The camera is given as extrinsics [B, 4, 4] + fovy [B], or as precomputed `rays` (see `rays()`),
        which a caller with fixed cameras computes once. `sampling` comes from `sampling_options`
        (validated once there, passed to the family's `predict` as is).
        `latents=False` advances the state alone (no latent dynamics, no camera needed): what state-only
        observers (PPO on states, planners) pay for; the rollout cannot produce frames afterwards.
        """
        B = state.past.shape[0]
        if tuple(actions.shape) != (B, self.action_dim):
            raise InputError(f"actions must have shape {(B, self.action_dim)}, got {tuple(actions.shape)}")
        if rays is None and latents:
            if extrinsics is None or fovy is None:
                raise InputError("step needs the next frame's camera: extrinsics and fovy, or rays")
            rays = self.rays(extrinsics, fovy)
        if latents and state.extra.get("stale_latents"):
            raise RuntimeError("this rollout was stepped with latents=False; its frames can no longer be predicted")
        a = actions.to(self.device).float()
        if state.state is None:  # a rollout state made by hand: read the state off the last latent
            state.state = self.state_head.static(state.past[:, -1])
        state.state = self._advance_state(state, a, generator, ensemble)
        states = self.denormalize_state(state.state)
        state.steps += 1
        if not latents:
            state.extra["stale_latents"] = True
            return None, states
        # the dynamics sees the action and the state it leads to (the state head runs first)
        nxt, state.cache = self.dynamics.predict(state.past, state.past_plucker, torch.cat([a, state.state], -1),
                                                 rays, generator=generator, cache=state.cache, **(sampling or {}))
        # where the camera moved, the decoder starts afresh: its causal past shows the old viewpoint
        moved = (rays - state.past_plucker[:, -1]).flatten(1).abs().amax(1) > CAMERA_MOVED
        state.past = torch.cat([state.past[:, 1:], nxt[:, None]], 1)
        state.past_plucker = torch.cat([state.past_plucker[:, 1:], rays[:, None]], 1)
        frames = None
        if decode:
            state.stream.restart = moved
            try:
                frames = self._to_uint8(self.tokenizer.decode(self.denormalize(nxt[:, None]), state.stream))[:, 0]
            finally:
                state.stream.restart = None
        return frames, states

    # --- persistence -----------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"kind": KIND, "world": self.world, "image_size": self.image_size, "action_names": self.action_names,
                "state_layout": self.state_layout, "family": self.family,
                "tokenizer_config": self.tokenizer.config.to_dict(), "dynamics_config": self.dynamics.config.to_dict(),
                "state_head_config": self.state_head.config, "info": self.info} | (
                    {} if self.task_head is None else {"task_head_config": self.task_head.config})

    def save(self, path: str | os.PathLike, half: bool = False) -> Path:
        """Write one safetensors file (a run directory gets `world_model.safetensors`).

        `half`: weights in float16 (normalization statistics stay float32), half the bytes; loading
        casts back to float32. Shipped models are saved this way.
        """
        path = Path(path)
        if path.is_dir() or path.suffix != ".safetensors":  # "run.v2" is a run directory too
            path = path / FILE
        tensors = {f"tokenizer/{k}": v for k, v in self.tokenizer.state_dict().items()}
        tensors |= {f"dynamics/{k}": v for k, v in self.dynamics.state_dict().items()}
        tensors |= {f"state_head/{k}": v for k, v in self.state_head.state_dict().items()}
        if self.task_head is not None:
            tensors |= {f"task_head/{k}": v for k, v in self.task_head.state_dict().items()}
        if half:
            tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        tensors |= {f"stats/{k}": getattr(self, k) for k in ("latent_mean", "latent_std", "state_mean", "state_std")}
        write_checkpoint(path, tensors, self.metadata() | {"weights_dtype": "float16" if half else "float32"})
        return path

    def save_pretrained(self, directory: str | os.PathLike, half: bool = False) -> Path:
        """Hugging Face layout: DIR/config.json, DIR/model.safetensors and a model card (cosmos_sim/pretrained.py)."""
        from cosmos_sim.pretrained import save_pretrained

        return save_pretrained(self, directory, half=half)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, revision: str | None = None,
                        **load_kwargs: Any) -> WorldModel:
        """From a `save_pretrained` directory, or a hub repo id ("owner/name", downloaded with huggingface_hub)."""
        from cosmos_sim.pretrained import from_pretrained

        return from_pretrained(cls, name_or_path, revision, **load_kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu", world: str | None = None,
             image_size: int | None = None, action_dim: int | None = None) -> WorldModel:
        """From a file or a run directory (its world_model.safetensors)."""
        p = Path(path)
        if p.is_dir() and (p / FILE).is_file():
            p = p / FILE
        p = resolve_checkpoint(p)
        tensors, meta = read_checkpoint(p)
        if meta.get("kind") != KIND:
            raise CheckpointError(f"{p} is a {meta.get('kind')!r} checkpoint, not a world model "
                                  "(train one with `cosmos-sim train` or `cosmos-sim demo`)")

        def part(prefix):
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        family = meta.get("family")
        if family not in FAMILIES:
            raise CheckpointError(f"{p}: dynamics family {family!r} is not registered (registered: "
                                  f"{', '.join(sorted(FAMILIES))}); import the module that registers it first")
        try:
            tok = CausalVideoTokenizer(TokenizerConfig.from_dict(meta["tokenizer_config"]))
            tok.load_state_dict(part("tokenizer/"))
            dyn = build_dynamics(meta["family"], meta["dynamics_config"])
            dyn.load_state_dict(part("dynamics/"))
            head = StateHead(**{"gate": False, **meta["state_head_config"]})  # files from before the gate
            head.load_state_dict(part("state_head/"))
            stats = part("stats/")
            task = None
            if "task_head_config" in meta:
                task = TaskHead(**meta["task_head_config"])
                task.load_state_dict(part("task_head/"))
            model = cls(tok, dyn, head, world=meta["world"], state_layout=meta["state_layout"],
                        action_names=meta["action_names"], info=meta.get("info"), task_head=task, **stats)
        except (KeyError, RuntimeError, TypeError) as e:
            raise CheckpointError(f"{p}: not a consistent world model file ({e})") from None
        model.check_compatible(world, image_size, action_dim)
        model.source = str(p)  # where it came from, for reports
        return model.to(device)


