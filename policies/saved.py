"""Trained policies on disk: one safetensors file with the network's weights and, in its header, the
policy kind, its config, the world and the observation mode it acts on.

Each trainable kind (bc, ppo, ...) registers a builder here with `register_policy_kind`, so adding
one is one module. `load_policy(path)` gives back a `Policy` that acts in any backend; a file for
another world or observation mode is refused with an error naming both sides.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cosmos_sim.errors import CheckpointError, ConfigMismatchError, InputError, UnknownChoiceError
from cosmos_sim.policies.base import obs_dict
from cosmos_sim.training.checkpoint import read_checkpoint, write_checkpoint

KIND = "policy"
FILE = "policy.safetensors"

# kind -> builder(config dict) -> nn.Module with `act_tensor(obs: dict[str, Tensor]) -> Tensor [N, A]`
POLICY_KINDS: dict[str, Callable[[dict], nn.Module]] = {}


def register_policy_kind(name: str) -> Callable:
    def wrap(builder: Callable[[dict], nn.Module]) -> Callable[[dict], nn.Module]:
        POLICY_KINDS[name] = builder
        return builder

    return wrap


class NetworkPolicy:
    """A trained network as a `Policy`: numpy observations in, numpy actions in [-1, 1] out.

    Deterministic (the network's mean action). Accepts torch tensors too, and then answers with
    tensors on the same device, so a GPU loop never copies to the host. A pixel policy that stacks k frames
    keeps each env's last k frames (an env's first frame stands in for those before it; `reset(mask)`
    forgets the masked envs' frames).
    """

    def __init__(self, net: nn.Module, kind: str, world: str, obs_mode: str, config: dict,
                 device: str | torch.device = "cpu", name: str | None = None):
        self.net = net.to(device).eval()
        self.kind, self.world, self.obs_mode, self.config = kind, world, obs_mode, dict(config)
        self.device = torch.device(device)
        self.name = name or kind
        self.frame_stack = int(self.config.get("frame_stack", 1)) if obs_mode != "state" else 1
        self._frames: torch.Tensor | None = None  # [N, k, V, H, W, 3], oldest first
        self._fresh: torch.Tensor | None = None  # [N] bool: the env's next frame starts its history

    @property
    def image_size(self) -> int | None:
        return self.config.get("image_size") if self.obs_mode != "state" else None

    def keys(self) -> tuple[str, ...]:
        """The observation entries it acts on ("camera": the pose, envs/camera_obs.py)."""
        keys = ("pixels", "state") if self.obs_mode == "both" else (self.obs_mode,)
        return (*keys, "camera") if self.config.get("camera_dim") else keys

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Hugging Face layout: DIR/model.safetensors (this file format), DIR/config.json and a model card."""
        from cosmos_sim.fileio import atomic_write_bytes, atomic_write_json

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_policy(d / "model.safetensors", self.net, self.kind, self.config, self.world, self.obs_mode)
        atomic_write_json(d / "config.json", {"format": "cosmos_sim.policy", "policy_kind": self.kind,
                                              "world": self.world, "obs_mode": self.obs_mode, "config": self.config})
        card = (f"---\nlibrary_name: cosmos_sim\ntags: [reinforcement-learning, gymnasium]\n---\n\n"
                f"# cosmos_sim {self.kind} policy for {self.world}\n\nActs on `{self.obs_mode}` observations.\n\n"
                f"```python\nfrom cosmos_sim.policies.saved import load_policy\npolicy = load_policy(PATH)\n```\n")
        atomic_write_bytes(d / "README.md", card.encode())
        return d

    @torch.no_grad()
    def act(self, obs: Any) -> Any:
        obs = obs_dict(obs)
        missing = [k for k in self.keys() if k not in obs]
        if missing:
            raise InputError(f"policy {self.name!r} acts on {self.obs_mode!r} observations"
                             + (" and the camera pose" if "camera" in self.keys() else "") + f"; missing {missing}"
                             + (" (wrap the env in cosmos_sim.envs.camera_obs.CameraObservation)"
                                if "camera" in missing else ""))
        as_torch = isinstance(obs[self.keys()[0]], torch.Tensor)
        t = {k: torch.as_tensor(np.asarray(obs[k]) if not isinstance(obs[k], torch.Tensor) else obs[k],
                                device=self.device) for k in self.keys()}
        if "pixels" in t:
            t["pixels"] = self._pixels(t["pixels"])
        a = self.net.act_tensor(t).clamp(-1, 1)
        return a if as_torch else a.cpu().numpy().astype(np.float32)

    def _pixels(self, px: torch.Tensor) -> torch.Tensor:
        """This step's frames [N, H, W, 3] (or [N, V, H, W, 3]) -> what the network takes: the last k frames'
        views' channels side by side [N, H, W, 3kV]. Frames of another size or view count are refused."""
        size, views = self.config.get("image_size"), int(self.config.get("views", 1))
        if px.shape[-1] != 3 or px.ndim not in (4, 5):
            raise InputError(f"policy {self.name!r} takes RGB frames [N, H, W, 3] (or [N, V, H, W, 3]) and stacks "
                             f"{self.frame_stack} frames itself; got {tuple(px.shape)}")
        got_views = 1 if px.ndim == 4 else px.shape[1]
        if got_views != views or (size is not None and tuple(px.shape[-3:-1]) != (size, size)):
            raise ConfigMismatchError(
                f"policy {self.name!r} was trained on {views} view(s) of {size}x{size} frames "
                f"(camera: {self.config.get('camera', 'fixed')}); the env gives {got_views} view(s) of "
                f"{px.shape[-3]}x{px.shape[-2]}: evaluate it in an env (or a learned world) of its image size and "
                "views")
        if px.ndim == 4:
            px = px[:, None]
        if self._frames is not None and (len(self._frames) != len(px) or self._frames.shape[2:] != px.shape[1:]):
            self._frames = None  # another batch or frame shape: start over
        fresh = None if self._frames is None else self._fresh.to(px.device)
        self._frames, stacked = stack_frames(self._frames, px, fresh, self.frame_stack)
        self._fresh = torch.zeros(px.shape[0], dtype=torch.bool)
        return stacked

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None or self._frames is None:
            self._frames = self._fresh = None
        else:
            m = (mask if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask, bool))).bool().cpu()
            if len(m) == len(self._fresh):
                self._fresh = self._fresh | m
            else:  # another batch: start over
                self._frames = self._fresh = None


def stack_frames(history: torch.Tensor | None, px: torch.Tensor, fresh: torch.Tensor | None, k: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of a k-frame history, the one layout every pixel policy sees (BC's data, PPO's rollouts, and
    `NetworkPolicy` at evaluation): `history` [N, k, V, H, W, 3] oldest first (None: start), this step's frames
    `px` [N, V, H, W, 3], `fresh` [N] bool (these envs start an episode: their first frame stands in for the
    ones before it) -> (the new history, the network's input [N, H, W, 3kV])."""
    if k == 1:
        history = px[:, None]
    elif history is None:
        history = px[:, None].expand(-1, k, -1, -1, -1, -1).clone()
    else:
        new = torch.cat([history[:, 1:], px[:, None]], 1)
        if fresh is not None:
            new = torch.where(fresh[:, None, None, None, None, None], px[:, None].expand_as(new), new)
        history = new
    return history, history.permute(0, 3, 4, 1, 2, 5).flatten(3)  # [N, k, V, H, W, 3] -> [N, H, W, 3kV]


def save_policy(path: str | os.PathLike, net: nn.Module, kind: str, config: dict, world: str, obs_mode: str,
                info: dict | None = None) -> Path:
    if kind not in POLICY_KINDS:
        raise UnknownChoiceError("policy kind", kind, POLICY_KINDS)
    path = Path(path)
    if path.is_dir() or path.suffix != ".safetensors":  # "run.v2" is a run directory too
        path = path / FILE
    meta = {"kind": KIND, "policy_kind": kind, "config": config, "world": world, "obs_mode": obs_mode,
            "info": info or {}}
    write_checkpoint(path, dict(net.state_dict()), meta)
    return path


def load_policy(path: str | os.PathLike, world: str | None = None, obs_mode: str | None = None,
                device: str | torch.device = "cpu") -> NetworkPolicy:
    """A saved policy as a `Policy`; `world`/`obs_mode` given => checked against the file."""
    _register_builtin()
    p = Path(path)
    if p.is_dir():
        p = p / FILE if (p / FILE).is_file() or not (p / "model.safetensors").is_file() else p / "model.safetensors"
    elif not p.exists():  # a hub repo id ("owner/name"), downloaded only when named
        from cosmos_sim.pretrained import resolve_pretrained

        p = resolve_pretrained(path)
    tensors, meta = read_checkpoint(p)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{p} is a {meta.get('kind')!r} checkpoint, not a policy")
    diffs = []
    if world is not None and world.lower() != str(meta["world"]).lower():
        diffs.append(f"world: policy has {meta['world']!r}, caller has {world!r}")
    if obs_mode is not None and obs_mode != meta["obs_mode"]:
        diffs.append(f"obs_mode: policy has {meta['obs_mode']!r}, caller has {obs_mode!r}")
    if diffs:
        raise ConfigMismatchError(f"{p}: " + "; ".join(diffs))
    kind = meta["policy_kind"]
    if kind not in POLICY_KINDS:
        raise UnknownChoiceError("policy kind", kind, POLICY_KINDS)
    net = POLICY_KINDS[kind](meta["config"])
    try:
        net.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"{p}: weights do not fit a {kind} policy of its config ({e})") from None
    return NetworkPolicy(net, kind, meta["world"], meta["obs_mode"], meta["config"], device=device, name=str(path))


def is_saved_policy(spec: str) -> bool:
    p = Path(spec)
    return p.is_file() and p.suffix == ".safetensors" or (p.is_dir() and ((p / FILE).is_file()
                                                                          or (p / "model.safetensors").is_file()))


def _register_builtin() -> None:
    import importlib

    for module in ("cosmos_sim.policies.bc", "cosmos_sim.policies.ppo"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
