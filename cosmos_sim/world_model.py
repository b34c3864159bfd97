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
from cosmos_sim.tokenizer import CausalVideoTokenizer, Stream, TokenizerConfig
from cosmos_sim.tokenizer.model import pixels_to_unit, unit_to_pixels
from cosmos_sim.training.checkpoint import read_checkpoint, resolve_checkpoint, write_checkpoint

KIND = "world_model"
FILE = "world_model.safetensors"
CAMERA_MOVED = 1e-4  # a change in any Plücker ray above this between frames means the camera moved


class StateHead(nn.Module):
    """The world's state vector (normalized): a learned state-space simulator plus a latent reader.

    `forward(prev, action)` = prev + Δ(prev, action): the state carried forward on its own. Rigid
    contacts are a function of the state, and a 3-pixel pusher cannot be read back off one 8x8
    latent, so the state evolves in state space and the latent dynamics is conditioned on it (see
    `WorldModel.step`): frames then show the block where the state says it is.
    `static(z)`: the state read off one latent [B, D, h, w], for rollouts that start from pixels only.

    `gate`: each entry's change is scaled by a learned sigmoid gate of (prev, action). Most entries
    hold still most of the time (a block nobody touches, the goal), and an MLP's change is never
    exactly zero, so ungated an untouched block drifts a little every step; the gate learns to
    close (the measured drift with and without it: docs/experiments.md).
    `slots`: the state indices of like objects (`object_slots`); given, the simulator is an
    `ObjectSimulator` (one network for every object and every pair) instead of one MLP.
    `members` > 1: an ensemble of gated MLPs (`MLPEnsemble`, each `member_hidden` wide: narrower than the
    single MLP so that five members cost about what one wide MLP does on a CPU), whose disagreement
    the learned env reports as uncertainty.
    """

    def __init__(self, latent_channels: int, latent_size: int, state_dim: int, action_dim: int, width: int = 64,
                 hidden: int = 256, gate: bool = True, slots: list[list[int]] | None = None, slot_hidden: int = 128,
                 members: int = 1, member_hidden: int = 128):
        super().__init__()
        if members < 1:
            raise InputError(f"members must be >= 1, got {members}")
        if members > 1 and slots:
            raise InputError("an ensemble of the object-centric state model is not supported yet: members=1 with slots")
        self.members = int(members)
        self.trunk = nn.Sequential(
            nn.Conv2d(latent_channels, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Flatten(), nn.Linear(width * latent_size * latent_size, hidden), nn.SiLU())
        self.out = nn.Linear(hidden, state_dim)
        self.config = {"latent_channels": latent_channels, "latent_size": latent_size, "state_dim": state_dim,
                       "action_dim": action_dim, "width": width, "hidden": hidden, "gate": gate}
        self.objects = self.ensemble = None
        if members > 1:
            self.ensemble = MLPEnsemble(state_dim + action_dim, member_hidden, state_dim, members, gate)
            self.config |= {"members": members, "member_hidden": member_hidden}
            self.register_buffer("delta_scale", torch.ones(state_dim))
            return
        if slots:
            self.objects = ObjectSimulator(state_dim, action_dim, slots, slot_hidden, gate)
            self.config |= {"slots": [list(map(int, s)) for s in slots], "slot_hidden": slot_hidden}
            return
        self.delta = nn.Sequential(nn.Linear(state_dim + action_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                   nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, state_dim))
        nn.init.zeros_(self.delta[-1].weight)
        nn.init.zeros_(self.delta[-1].bias)
        self.gate = nn.Linear(hidden, state_dim) if gate else None
        if self.gate is not None:  # starts open (sigmoid(2) = 0.88): the change is learned first
            nn.init.zeros_(self.gate.weight)
            nn.init.constant_(self.gate.bias, 2.0)
        # per-entry scale of one step's change relative to the state's spread (set from data in training)
        self.register_buffer("delta_scale", torch.ones(state_dim))

    def static(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(z))

    def simulator_parameters(self) -> list[nn.Parameter]:
        """What `forward` learns (the state-space simulator), without the latent reader."""
        if self.objects is not None:
            return list(self.objects.parameters())
        if self.ensemble is not None:
            return list(self.ensemble.parameters())
        return list(self.delta.parameters()) + ([] if self.gate is None else list(self.gate.parameters()))

    def set_statistics(self, stats: dict[str, torch.Tensor], states: torch.Tensor, steps: torch.Tensor) -> None:
        """Scales from the training data: `stats` from `normalization`, raw `states` [N, S] and the
        indices `steps` of states that have a successor."""
        if self.objects is not None:
            self.objects.set_statistics(stats, states, steps)
        else:
            self.delta_scale.copy_(stats["delta_scale"])

    def forward_members(self, prev: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Every member's next state [K, B, S]; prev and action are [B, .] (shared) or [K, B, .] (each its own)."""
        if self.ensemble is None:
            return self(prev, action)[None]
        K = self.members
        prev = prev.expand(K, *prev.shape) if prev.ndim == 2 else prev
        action = action.expand(K, *action.shape) if action.ndim == 2 else action
        return prev + self.ensemble(torch.cat([prev, action], -1)) * self.delta_scale

    def forward(self, prev: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if self.ensemble is not None:  # the members' mean
            return self.forward_members(prev, action).mean(0)
        if self.objects is not None:
            return self.objects(prev, action)
        h = self.delta[:-1](torch.cat([prev, action], dim=-1))
        change = self.delta[-1](h) * self.delta_scale
        if self.gate is not None:
            change = change * torch.sigmoid(self.gate(h))
        return prev + change


class MLPEnsemble(nn.Module):
    """K gated MLP simulators in one batched module (weights [K, in, out], one batched matmul per layer),
    so an ensemble costs little more than one member where matmuls are cheap. Each member starts from its
    own random weights; its change starts at zero, like the single MLP's."""

    def __init__(self, n_in: int, hidden: int, n_out: int, members: int, gate: bool = True):
        super().__init__()
        dims = [n_in, hidden, hidden, hidden, n_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, o in zip(dims[:-1], dims[1:], strict=True):
            bound = 1.0 / i ** 0.5  # nn.Linear's default init, per member
            self.weights.append(nn.Parameter(torch.empty(members, i, o).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(members, 1, o).uniform_(-bound, bound)))
        nn.init.zeros_(self.weights[-1])
        nn.init.zeros_(self.biases[-1])
        self.gate_weight = nn.Parameter(torch.zeros(members, hidden, n_out)) if gate else None
        self.gate_bias = nn.Parameter(torch.full((members, 1, n_out), 2.0)) if gate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[K, B, in] -> each member's (gated) change [K, B, out]."""
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = nn.functional.silu(torch.baddbmm(b, h, w))
        change = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        if self.gate_weight is not None:
            change = change * torch.sigmoid(torch.baddbmm(self.gate_bias, h, self.gate_weight))
        return change


def object_slots(state_layout) -> list[list[int]]:
    """State indices of interchangeable objects: entry groups `<name>_<part>` that share their parts
    and sizes (Drop's obj0, obj1, obj2). [] when fewer than two objects share a layout."""
    groups: dict[str, list] = {}
    i = 0
    for name, size in state_layout:
        if "_" in name:
            obj, part = name.split("_", 1)
            groups.setdefault(obj, []).append((part, int(size), list(range(i, i + int(size)))))
        i += int(size)
    by_shape: dict[tuple, list[list[int]]] = {}
    for entries in groups.values():
        shape = tuple((part, size) for part, size, _ in entries)
        by_shape.setdefault(shape, []).append([j for _, _, idx in entries for j in idx])
    best = max(by_shape.values(), key=len, default=[])
    return best if len(best) >= 2 else []


class ObjectSimulator(nn.Module):
    """An object-centric (interaction-network) state simulator, for worlds of several like objects.

    Each object's slot is encoded by one shared network, every pair exchanges a message built from
    both encodings and their difference, and one shared decoder turns an object's encoding and its
    summed messages into a gated change of its slot. The rest of the state and the action reach
    every object. Sharing across objects is why it generalises: a ball-to-ball collision is learned
    once for every pair, where a flat MLP must learn each pair, and each object, separately. Slots
    share one normalization (raw units scaled by the spread over all objects), set from data.
    """

    def __init__(self, state_dim: int, action_dim: int, slots: list[list[int]], hidden: int = 128,
                 gate: bool = True):
        super().__init__()
        K, D = len(slots), len(slots[0])
        rest = sorted(set(range(state_dim)) - {j for s in slots for j in s})
        self.register_buffer("slot_idx", torch.tensor(slots, dtype=torch.long), persistent=False)
        self.register_buffer("rest_idx", torch.tensor(rest, dtype=torch.long), persistent=False)
        self.register_buffer("eye", torch.eye(K), persistent=False)
        for name, n in (("state_mean", state_dim), ("state_std", state_dim), ("slot_mean", D), ("slot_std", D),
                        ("slot_step", D)):
            self.register_buffer(name, torch.zeros(n) if name.endswith("mean") else torch.ones(n))
        G = len(rest) + action_dim
        self.enc = nn.Sequential(nn.Linear(D + K + G, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.rel = nn.Sequential(nn.Linear(2 * hidden + D, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.dec = nn.Sequential(nn.Linear(2 * hidden + G, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, D))
        nn.init.zeros_(self.dec[-1].weight)
        nn.init.zeros_(self.dec[-1].bias)
        self.gate = nn.Linear(2 * hidden + G, D) if gate else None
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)
            nn.init.constant_(self.gate.bias, 2.0)

    def set_statistics(self, stats: dict[str, torch.Tensor], states: torch.Tensor, steps: torch.Tensor) -> None:
        self.state_mean.copy_(stats["state_mean"])
        self.state_std.copy_(stats["state_std"])
        rows = states[:, self.slot_idx].reshape(-1, self.slot_idx.shape[1])
        self.slot_mean.copy_(rows.mean(0))
        self.slot_std.copy_(rows.std(0).clamp_min(1e-3))
        change = (states[steps + 1] - states[steps])[:, self.slot_idx].reshape(-1, self.slot_idx.shape[1])
        moving = change.abs().amax(-1) > 0  # objects out of play never change: they would shrink the scale
        self.slot_step.copy_((change[moving] if moving.any() else change).std(0).clamp_min(1e-4))

    def forward(self, prev: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        raw = prev * self.state_std + self.state_mean
        slots = raw[:, self.slot_idx]  # [B, K, D]
        x = (slots - self.slot_mean) / self.slot_std
        B, K, _ = x.shape
        g = torch.cat([prev[:, self.rest_idx], action], -1)[:, None].expand(B, K, -1)
        e = self.enc(torch.cat([x, self.eye.expand(B, K, K), g], -1))  # [B, K, H]
        pair = torch.cat([e[:, :, None].expand(B, K, K, -1), e[:, None].expand(B, K, K, -1),
                          x[:, :, None] - x[:, None]], -1)
        msg = (self.rel(pair) * (1 - self.eye)[None, :, :, None]).sum(2)
        h = torch.cat([e, msg, g], -1)
        change = self.dec(h) * self.slot_step
        if self.gate is not None:
            change = change * torch.sigmoid(self.gate(h))
        idx = self.slot_idx.reshape(-1)
        new = (slots + change).reshape(B, -1)
        out = prev.clone()
        out[:, idx] = (new - self.state_mean[idx]) / self.state_std[idx]
        return out


class TaskHead(nn.Module):
    """Reward, termination and success of a step (prev state, action, next state), learned from data.

    A `World` computes them by code; a Gymnasium env's world (envs/source_env.py) has only the env's
    rewards, `terminated` flags and `info["is_success"]` in its data, so the model learns them: one MLP on
    the normalized states, their change and the action, with three outputs (the reward in units of its
    spread, a termination logit and a success logit). Its held-out accuracy is kept in `metrics`.
    """

    def __init__(self, state_dim: int, action_dim: int, hidden: int = 256, has_success: bool = False):
        super().__init__()
        self.config = {"state_dim": state_dim, "action_dim": action_dim, "hidden": hidden,
                       "has_success": bool(has_success)}
        self.net = nn.Sequential(nn.Linear(3 * state_dim + action_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 3))
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))

    def forward(self, prev: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Normalized states [B, S] and actions [B, A] -> [B, 3]: normalized reward, termination and success logits."""
        return self.net(torch.cat([prev, action, nxt, nxt - prev], -1))

    def predict(self, prev: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reward [B] in the env's units, terminated [B] and success [B] (bool)."""
        out = self(prev, action, nxt)
        reward = out[:, 0] * self.reward_std + self.reward_mean
        success = out[:, 2] > 0 if self.config["has_success"] else torch.zeros_like(out[:, 2], dtype=torch.bool)
        return reward, out[:, 1] > 0, success


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
        if self.task_head is None:
            raise ConfigMismatchError(f"this world model ({self.world}) has no learned reward head: its world "
                                      "computes rewards by code")
        return self.task_head.predict(self.normalize_state(prev), actions.float(), self.normalize_state(nxt))

    # --- latents ---------------------------------------------------------------------------------
    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean) / self.latent_std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std + self.latent_mean

    def states_from_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Normalized latents [..., D, h, w] -> world state vectors [..., S] (static head)."""
        lead = z.shape[:-3]
        s = self.state_head.static(z.reshape(-1, *z.shape[-3:]))
        return self.denormalize_state(s).reshape(*lead, -1)

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
        member drawn per rollout and step) and their disagreement in `state.extra["uncertainty"]` [B]: the
        members' standard deviation, averaged over the state's entries (in units of each entry's spread)."""
        head = self.state_head
        if head.members == 1:
            state.extra["uncertainty"] = torch.zeros(a.shape[0], device=a.device)
            return head(state.state, a)
        m = head.forward_members(state.state, a)  # [K, B, S]
        state.extra["uncertainty"] = m.std(0).mean(-1)
        if mode == "sample":
            pick = torch.randint(head.members, (a.shape[0],), generator=generator, device=a.device)
            return m[pick, torch.arange(a.shape[0], device=a.device)]
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


