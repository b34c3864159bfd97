"""The state models a WorldModel composes: its state head (the world's state vector, stepped in state space, and
read off a latent) and, for worlds whose task is learned, its task head (reward, termination and success).

`StateHead` holds one of three state-space simulators: a gated MLP, an ensemble of them (`MLPEnsemble`, whose
disagreement is the learned env's uncertainty) or an object-centric interaction network (`ObjectSimulator`, over
the like objects `object_slots` finds in a world's state layout). `TaskHead`, the reward/termination/success
head of a Gymnasium env's or a recorded dataset's world, lives in `cosmos_sim.task_head` with its training and
calibration. They are trained by `cosmos_sim.dynamics.train` and saved inside
the world model file (`cosmos_sim.world_model`).
"""

from __future__ import annotations

import torch
from torch import nn

from cosmos_sim.errors import InputError


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

