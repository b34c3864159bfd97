"""The learned world as Gymnasium environments.

Two thin faces sit on `BatchedLearnedCore` (envs/learned_core.py: N rollouts of one `WorldModel` on one
device, stepped in one batched forward pass, torch tensors inside), both made from one `LearnedEnvConfig`
(envs/learned_config.py):

- `WorldModelEnv(config)` (`gym.Env`, N = 1): what `gym.make(id, backend="world_model", model=RUN)` returns;
- `WorldModelVectorEnv(config, num_envs)` (`gym.vector.VectorEnv`): what `gym.make_vec(id, num_envs=N,
  backend="world_model")` returns, with per-env autoreset in Gymnasium's NEXT_STEP mode (or SAME_STEP,
  DISABLED) and numpy or torch outputs.

Rewards, success and termination come from the world's own functions applied to the predicted state, so
they mean what they mean in physics. Resets start from the physics backend the model was trained on (same
seed => same initial state and first frame as a physics env), or from recorded episodes of a dataset
(envs/reset_sources.py). `info["uncertainty"]` is an ensemble state model's disagreement; MOPO's penalty and
MOReL's halting are wrappers (envs/shaping.py) that `gym.make` puts around these envs when asked.
`info["trust_score"]` compares every ensemble part's disagreement with held-out data's (cosmos_sim.trust) and
`info["off_data"]` says the step passed it (both 0 / False for a model without that calibration).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from cosmos_sim.device import resolve_device
from cosmos_sim.envs.learned_config import ARRAY_TYPES, LearnedEnvConfig, parse_autoreset_mode
from cosmos_sim.envs.learned_core import BatchedLearnedCore, CameraCoverageWarning, resolve_model
from cosmos_sim.envs.physics_env import check_action, observation, observation_space, side_by_side
from cosmos_sim.envs.shaping import env_row
from cosmos_sim.errors import EpisodeOverError, InputError, UnknownChoiceError
from cosmos_sim.worlds import World

RENDER_MODES = ["rgb_array"]


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A host copy: `.cpu().numpy()` of a CPU tensor would share memory with buffers the env reuses."""
    return x.detach().to("cpu", copy=True).numpy()


def _single_spaces(world: World, obs_mode: str, image_size: tuple[int, int], camera_control: bool,
                   views: int | None = None):
    n = world.action_dim + (3 if camera_control else 0)
    return observation_space(world, obs_mode, image_size, views), spaces.Box(-1.0, 1.0, (n,), np.float32)


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode not in (None, *RENDER_MODES):
        raise UnknownChoiceError("render_mode", render_mode, RENDER_MODES)


# --- gym.Env ------------------------------------------------------------------------------------------
class WorldModelEnv(gym.Env):
    """One env in a learned world; same spaces, keywords and info as `PhysicsEnv`. A camera pose outside the
    model's training cameras (`model.camera_coverage`) warns once (`CameraCoverageWarning`), or raises
    `CameraError` with `strict_camera=True`. `WorldModelEnv(LearnedEnvConfig(world="push", model=RUN))`;
    a config asking for shaping is refused (the wrappers shape: `make_learned(config)` applies them)."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 10}
    reward_dtype = np.float32  # rewards are computed in float32, handed out as floats (the shaping wrappers' too)
    default_obs_mode = "both"

    def __init__(self, config: LearnedEnvConfig, render_mode: str | None = None):
        _check_render_mode(render_mode)
        config.check_unshaped(type(self))
        self.config, self.render_mode = config, render_mode
        self.obs_mode = config.obs_mode or self.default_obs_mode
        self.core = self._make_core(config, 1)
        self.world, self.backend, self.image_size = self.core.world, "world_model", self.core.image_size
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt)}
        self.observation_space, self.action_space = self._spaces()

    def _make_core(self, config: LearnedEnvConfig, num_envs: int) -> BatchedLearnedCore:
        config.check_world_env()
        return BatchedLearnedCore(config, num_envs, render=self.render_mode is not None)

    def _spaces(self) -> tuple[spaces.Space, spaces.Space]:
        return _single_spaces(self.world, self.obs_mode, self.image_size, self.config.camera_control,
                              self.core.views)

    @property
    def model(self):
        return self.core.model

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.core.rngs[0] = self.np_random
        self.core.reset([0], options, seeds=[seed])  # a Gymnasium env's twin resets its source with `seed`
        # Sampling noise is seeded from the env RNG after the initial state is drawn, so the initial
        # state matches a physics env seeded the same way.
        self.core.seed([None], int(self.np_random.integers(2**62)))
        return self._observe(), self._info()

    def step(self, action):
        if not self.core.started:
            raise RuntimeError("call reset() before step()")
        if isinstance(action, torch.Tensor):
            action = action.detach().cpu().numpy()
        a = self.core.check_actions(self._normalized_action(action)[None])
        reward, terminated, truncated = self.core.step(a)
        return self._observe(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._info()

    def _normalized_action(self, action) -> np.ndarray:
        """The action as the model takes it: checked, in [-1, 1] (a twin converts from its source's Box)."""
        return check_action(action, self.action_space.shape)

    def render(self):
        if not self.core.started:
            raise RuntimeError("call reset() before render()")
        px = to_numpy(self.core.env_frames()[0])
        return px if self.core.views is None else side_by_side(px)

    def close(self):
        if getattr(self, "core", None) is not None:
            self.core.close()

    def _observe(self):
        return observation(self.obs_mode, lambda: to_numpy(self.core.env_frames()[0]),
                           to_numpy(self.core.states[0].float()))

    def _info(self) -> dict:
        return {"success": bool(self.core.success()[0]), "camera": self.core.env_cameras(0),
                "uncertainty": float(self.core.uncertainty[0]), "halted": False,  # HaltOnUncertainty sets it
                "state": to_numpy(self.core.states[0].float()), "diverged": bool(self.core.diverged[0]),
                "trust_score": float(self.core.trust_score[0]), "off_data": bool(self.core.trust_score[0] > 1)}


# --- gym.vector.VectorEnv -----------------------------------------------------------------------------
class WorldModelVectorEnv(gym.vector.VectorEnv):
    """N learned envs stepped in one forward pass; per-env autoreset on the step after an episode ends
    (Gymnasium's NEXT_STEP), within the same step with `autoreset_mode="same_step"`, or never with
    `autoreset_mode="disabled"` (the caller resets finished envs with `reset_mask`; torchrl's GymWrapper does).

    `array_type="torch"` returns observations, rewards and flags as tensors on the model's device
    (and accepts tensor actions there), so a GPU training loop never copies to the host.
    `info` holds per-env arrays: success [N], state [N, S], and camera [N, 10] (`CameraPose.to_array`).
    `max_episode_steps`: episodes truncate after this many steps (default: the world's); short, with
    `reset_start="any"`, for many short branched rollouts. With an ensemble state model, `info` also holds
    `uncertainty` [N] (the members' disagreement), which the shaping wrappers use (`uncertainty_penalty=λ`:
    reward minus λ × uncertainty, MOPO; `halt_uncertainty=τ`: truncate where it passes τ, MOReL,
    `info["halted"]` [N]); `ensemble="sample"` steps with one member drawn per env and step instead of the
    members' mean. `strict_camera` as in `WorldModelEnv`.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 10, "autoreset_mode": AutoresetMode.NEXT_STEP}
    default_obs_mode = "both"

    def __init__(self, config: LearnedEnvConfig, num_envs: int = 1, render_mode: str | None = None):
        _check_render_mode(render_mode)
        config.check_unshaped(type(self))
        self.config, self.render_mode = config, render_mode
        self.obs_mode = config.obs_mode or self.default_obs_mode
        self.autoreset_mode = parse_autoreset_mode(config.autoreset_mode)
        self.array_type = config.array_type
        self.core = self._make_core(config, num_envs)
        self.world, self.backend, self.num_envs = self.core.world, "world_model", num_envs
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt),
                         "autoreset_mode": self.autoreset_mode}
        self.single_observation_space, self.single_action_space = self._spaces()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._done = torch.zeros(num_envs, dtype=torch.bool, device=self.core.device)
        self._rules: list[tuple[str, Callable]] = []  # truncation rules joined to the step (add_truncation)
        self._flags: dict[str, torch.Tensor] = {}  # each rule's last mask, info[name]

    autoreset_mode = AutoresetMode.NEXT_STEP
    _make_core = WorldModelEnv._make_core

    def _spaces(self) -> tuple[spaces.Space, spaces.Space]:
        return _single_spaces(self.world, self.obs_mode, self.core.image_size, self.config.camera_control,
                              self.core.views)

    @property
    def model(self):
        return self.core.model

    def add_truncation(self, name: str, rule: Callable[[dict, Any], Any]) -> None:
        """Truncate, within `step` and before any autoreset, the envs where `rule(info, terminated)` holds (the
        step's info and terminated flags, in this env's array type; a bool mask back), reporting the mask as
        `info[name]`: how `HaltOnUncertainty` halts this env, so halted envs start over with the env's own
        finished ones (an outside wrapper could not join its autoreset)."""
        self._rules.append((name, rule))
        self._flags[name] = torch.zeros(self.num_envs, dtype=torch.bool, device=self.core.device)

    def _clear_flags(self, idx: list[int]) -> None:
        """The rules' flags of envs that start over (after `core.reset`, called where the caller is: its camera
        warnings point at the caller's line)."""
        ix = torch.as_tensor(idx, dtype=torch.long, device=self.core.device)
        for name, flags in self._flags.items():  # out of place: tensors handed out stay as they were
            self._flags[name] = flags.index_put((ix,), torch.zeros(len(idx), dtype=torch.bool, device=flags.device))

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        N = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * N
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(N)]
        else:
            seeds = list(seed)
            if len(seeds) != N:
                raise InputError(f"reset(seed=list) needs {N} seeds, got {len(seeds)}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            idx = list(range(N))
        else:
            m = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask, dtype=bool)
            if m.shape != (N,):
                raise InputError(f"reset_mask must have shape ({N},), got {m.shape}")
            idx = np.flatnonzero(m).tolist()
        self.core.seed(seeds, seeds[0])  # the batch's sampling noise follows the first env's seed
        if idx:
            self.core.reset(idx, options or None, seeds=[seeds[i] for i in idx])
            self._clear_flags(idx)
        self._done[torch.as_tensor(idx, dtype=torch.long, device=self.core.device)] = False
        return self._observe(), self._info()

    def step(self, actions):
        a = self.core.check_actions(self._normalized_actions(actions))
        done_before = self._done
        if self.autoreset_mode == AutoresetMode.DISABLED and bool(done_before.any()):
            done = done_before.nonzero().flatten().tolist()
            raise EpisodeOverError(f"envs {done} have finished their episodes; with autoreset_mode='disabled' reset "
                                   "them (reset(options={'reset_mask': mask})) before stepping them again")
        reward, terminated, truncated = self.core.step(a)
        if bool(done_before.any()):  # NEXT_STEP autoreset: these envs start over instead of stepping
            idx = done_before.nonzero().flatten().tolist()
            self.core.reset(idx)
            self._clear_flags(idx)
            reward = torch.where(done_before, torch.zeros_like(reward), reward)
            terminated = terminated & ~done_before
            truncated = truncated & ~done_before
        for name, rule in self._rules:  # e.g. MOReL's halting: truncations that autoreset as the env's own
            hit = rule(self._info(), self._out(terminated))
            hit = torch.as_tensor(hit, dtype=torch.bool).to(self.core.device) & ~done_before
            self._flags[name], truncated = hit, truncated | hit
        self._done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and bool(self._done.any()):
            return self._same_step_reset(reward, terminated, truncated)
        return (self._observe(), self._out(reward), self._out(terminated), self._out(truncated), self._info())

    def _same_step_reset(self, reward, terminated, truncated):
        """SAME_STEP autoreset, Gymnasium's convention: the finished envs start over within this step; their
        last observation and info are `info["final_obs"]` / `info["final_info"]` (object arrays, None where
        an env goes on; `_final_obs` / `_final_info` mark which)."""
        done = self._done
        final_obs, final_info = self._observe(), self._info()
        idx = done.nonzero().flatten().tolist()
        self.core.reset(idx)
        self._clear_flags(idx)
        self._done = torch.zeros_like(done)
        info = self._info()
        mask = to_numpy(done)
        info["final_obs"] = np.array([None] * self.num_envs, dtype=object)
        info["final_info"] = np.array([None] * self.num_envs, dtype=object)
        for i in idx:
            info["final_obs"][i] = env_row(final_obs, i)
            info["final_info"][i] = env_row(final_info, i)
        info["_final_obs"], info["_final_info"] = mask, mask.copy()
        return (self._observe(), self._out(reward), self._out(terminated), self._out(truncated), info)

    def render(self):
        if self.render_mode is None:
            raise RuntimeError("render() needs render_mode='rgb_array'")
        px = to_numpy(self.core.env_frames())
        return tuple(px if self.core.views is None else [side_by_side(p) for p in px])

    def close_extras(self, **kwargs):
        self.core.close()

    def _normalized_actions(self, actions):
        """Actions as the model takes them (`check_actions` checks and clips; a twin converts first)."""
        return actions

    def _out(self, x: torch.Tensor):
        return x if self.array_type == "torch" else to_numpy(x)

    def _observe(self):
        return observation(self.obs_mode, lambda: self._out(self.core.env_frames()),
                           self._out(self.core.states.float()))

    def _flag_info(self) -> dict:
        """info of the truncation rules: `halted` (all False without HaltOnUncertainty) and any other."""
        flags = {"halted": torch.zeros(self.num_envs, dtype=torch.bool, device=self.core.device)} | self._flags
        return {name: self._out(f) for name, f in flags.items()}

    def _info(self) -> dict:
        flags = self._flag_info()
        info = {"success": self._out(self.core.success()), "state": self._out(self.core.states.float()),
                "camera": self.core.env_camera_arrays(), "uncertainty": self._out(self.core.uncertainty),
                "halted": flags.pop("halted"), "diverged": self._out(self.core.diverged),
                "trust_score": self._out(self.core.trust_score), "off_data": self._out(self.core.trust_score > 1)}
        return info | flags


__all__ = ["WorldModelEnv", "WorldModelVectorEnv", "LearnedEnvConfig", "BatchedLearnedCore", "CameraCoverageWarning",
           "ARRAY_TYPES", "env_row", "parse_autoreset_mode", "resolve_device", "resolve_model", "to_numpy"]
