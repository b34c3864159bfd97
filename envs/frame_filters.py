"""Frames a pixel policy sees in physics, swapped: does the learned world fail a pixel policy through what it
draws, and does the policy look at motion at all?

- `OracleFrames`: each physics frame goes through a world model's tokenizer and back, streamed as the learned
  world decodes its own predictions (the causal past carried, restarted where an episode begins). These are
  the frames the learned world would draw if its dynamics were perfect; a policy's success under them against
  its success in physics is the video model's own share of the error, the rest of the learned world's error
  is the dynamics'.
- `FrozenFrames`: every step shows the episode's first frame. A policy whose success holds under it does not
  use what moves.

Both wrap a vector env (bare pixel observations or a dict with "pixels", one view [N, H, W, 3] or several
[N, V, H, W, 3]) and know where an episode begins under NEXT_STEP and SAME_STEP autoreset and masked resets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from cosmos_sim.errors import ConfigMismatchError, InputError, UnknownChoiceError
from cosmos_sim.tokenizer.model import Stream, pixels_to_unit, unit_to_pixels

FRAME_FILTERS = ("oracle", "frozen")


class _FrameFilter(VectorWrapper):
    def __init__(self, env: VectorEnv):
        super().__init__(env)
        self._autoreset = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self._ended = np.zeros(env.num_envs, bool)

    @staticmethod
    def _pixels(obs: Any) -> Any:
        if isinstance(obs, dict):
            if "pixels" not in obs:
                raise InputError(f"a frame filter needs pixel observations; the env gives {sorted(obs)}")
            return obs["pixels"]
        return obs

    @staticmethod
    def _put(obs: Any, frames: Any) -> Any:
        return {**obs, "pixels": frames} if isinstance(obs, dict) else frames

    def _filter(self, frames: Any, begins: np.ndarray) -> Any:  # begins [N] bool: the frame opens an episode
        raise NotImplementedError

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        mask = (options or {}).get("reset_mask")
        begins = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        self._ended[begins] = False
        return self._put(obs, self._filter(self._pixels(obs), begins)), info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        ended = np.asarray(terminated, bool) | np.asarray(truncated, bool)
        if self._autoreset == AutoresetMode.NEXT_STEP:  # the step after an end returns the reset frame
            begins, self._ended = self._ended, ended
        elif self._autoreset == AutoresetMode.SAME_STEP:  # the ending step itself returns the reset frame
            begins = ended
        else:
            begins = np.zeros(self.num_envs, bool)
        return self._put(obs, self._filter(self._pixels(obs), begins)), reward, terminated, truncated, info


class FrozenFrames(_FrameFilter):
    """Every step shows the frame its episode began with."""

    def __init__(self, env: VectorEnv):
        super().__init__(env)
        self._first: Any = None

    def _filter(self, frames: Any, begins: np.ndarray) -> Any:
        if self._first is None or begins.all():
            self._first = frames.clone() if isinstance(frames, torch.Tensor) else np.array(frames, copy=True)
        elif begins.any():
            idx = np.flatnonzero(begins)
            self._first[idx] = frames[idx]
        return self._first.clone() if isinstance(self._first, torch.Tensor) else self._first.copy()


class OracleFrames(_FrameFilter):
    """Each frame encoded and decoded by `model`'s tokenizer (a WorldModel), streamed per env."""

    def __init__(self, env: VectorEnv, model: Any):
        super().__init__(env)
        if getattr(model, "tokenizer", None) is None:
            raise InputError("OracleFrames needs a loaded world model (its tokenizer draws the frames)")
        if model.tokenizer.config.temporal != 1:
            raise ConfigMismatchError(f"OracleFrames streams one latent per frame; this model's tokenizer folds "
                                      f"{model.tokenizer.config.temporal} frames into one")
        self.model = model
        self._enc: Stream | None = None
        self._dec: Stream | None = None

    @torch.no_grad()
    def _filter(self, frames: Any, begins: np.ndarray) -> Any:
        m, s = self.model, self.model.image_size
        x = torch.as_tensor(frames)
        if x.dtype != torch.uint8 or tuple(x.shape[-3:]) != (s, s, 3) or x.dim() not in (4, 5):
            raise ConfigMismatchError(f"the world model draws uint8 {s}x{s} frames; the env gives {x.dtype} "
                                      f"{tuple(x.shape)}")
        views = x.shape[1] if x.dim() == 5 else 1
        flat = x.reshape(-1, 1, s, s, 3).to(m.device)  # [N*V, 1, H, W, 3]
        if self._enc is None or begins.all():
            self._enc, self._dec = Stream(), Stream()
            restart = None
        else:
            restart = torch.as_tensor(np.repeat(begins, views), device=m.device) if begins.any() else None
        self._enc.restart = self._dec.restart = restart
        try:
            z = m.tokenizer.encode(pixels_to_unit(flat.permute(0, 1, 4, 2, 3)), self._enc)
            y = unit_to_pixels(m.tokenizer.decode(z, self._dec)).permute(0, 1, 3, 4, 2)[:, 0]
        finally:
            self._enc.restart = self._dec.restart = None
        y = y.reshape(x.shape)
        return y if isinstance(frames, torch.Tensor) else y.cpu().numpy()


def filter_frames(env: VectorEnv, kind: str, model: Any = None) -> VectorEnv:
    """`env` with its frames swapped as `kind` ("oracle" or "frozen") says."""
    if kind == "oracle":
        return OracleFrames(env, model)
    if kind == "frozen":
        return FrozenFrames(env)
    raise UnknownChoiceError("frame filter", kind, FRAME_FILTERS)
