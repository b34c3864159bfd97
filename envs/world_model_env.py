"""The learned world as Gymnasium environments.

`LearnedWorlds` holds N rollouts of one `WorldModel` on one device and steps them in one batched
forward pass; everything inside is a torch tensor. Two thin faces sit on it:

- `WorldModelEnv` (`gym.Env`, N = 1): what `gym.make(id, backend="world_model", model=RUN)` returns;
- `WorldModelVectorEnv` (`gym.vector.VectorEnv`): what `gym.make_vec(id, num_envs=N, backend="world_model")`
  returns, with per-env autoreset in Gymnasium's NEXT_STEP mode and numpy or torch outputs.

Rewards, success and termination come from the world's own functions applied to the predicted
state, so they mean what they mean in physics. Resets start from the physics backend the model was
trained on (same seed => same initial state and first frame as a physics env), or from recorded
episodes of a dataset: their first steps, or any recorded step (`reset_start="any"`, MBPO's branched
rollouts: with a short `max_episode_steps`, many short imagined rollouts off real states).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from cosmos_sim.camera import CameraPose
from cosmos_sim.envs.physics_env import (
    DIVERGENCE_BOUND,
    PHYSICS_BACKENDS,
    CameraSpec,
    check_action,
    check_obs_mode,
    make_physics_env,
    observation,
    observation_space,
    parse_cameras,
    parse_image_size,
    side_by_side,
)
from cosmos_sim.envs.source_env import SOURCE_BACKEND
from cosmos_sim.errors import (
    ActionError,
    CameraError,
    ConfigMismatchError,
    EpisodeOverError,
    InputError,
    MissingPathError,
    UnknownChoiceError,
)
from cosmos_sim.worlds import World, get_world

ARRAY_TYPES = ("numpy", "torch")


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A host copy: `.cpu().numpy()` of a CPU tensor would share memory with buffers the env reuses."""
    return x.detach().to("cpu", copy=True).numpy()
NO_MODEL = ("model= is a run directory or world_model.safetensors, a WorldModel, or 'pretrained' (the shipped "
            "model, also what no model= means); make one with `cosmos-sim train --data DIR --out RUN`")


# --- construction helpers --------------------------------------------------------------------------
def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r} but CUDA is not available on this machine (torch "
                         f"{torch.__version__}); use device='cpu'")
    return dev


def resolve_model(model: Any, world: World, image_size: tuple[int, int] | None, device: torch.device):
    """A WorldModel for `world` on `device`, from a path, an instance, or None / "pretrained" (the world's
    shipped model); mismatches name both sides."""
    from cosmos_sim.world_model import WorldModel
    from cosmos_sim.zoo import PRETRAINED, pretrained_path

    if model is None or (isinstance(model, str) and model == PRETRAINED):
        model = pretrained_path(world)
    if isinstance(model, (str, os.PathLike)):
        if not Path(model).exists():
            raise MissingPathError(f"world model {str(model)!r} does not exist. {NO_MODEL}")
        model = WorldModel.load(model, device=device)
    elif not isinstance(model, WorldModel):
        raise TypeError(f"model must be a path or a WorldModel, got {type(model).__name__}. {NO_MODEL}")
    size = None
    if image_size is not None:
        if image_size[0] != image_size[1]:
            raise ConfigMismatchError(f"world model frames are square ({model.image_size}x{model.image_size}); "
                                      f"caller asked for image_size {image_size}")
        size = image_size[0]
    model.check_compatible(world=world.name, image_size=size, action_dim=world.action_dim)
    recorded = model.info.get("world_hash")  # models trained since the hash was stored; older ones lack it
    if recorded is not None and not world.accepts_hash(recorded):
        raise ConfigMismatchError(f"world model was trained on another definition of {world.name} (hash {recorded}, "
                                  f"installed {world.definition_hash()}): retrain it on data from this version")
    return model.to(device)


def check_sampling(sampling: Any) -> dict[str, Any]:
    """`sampling=` as keyword arguments for `WorldModel.sampling_options` (the family checks the options)."""
    if sampling is None:
        return {}
    if not isinstance(sampling, Mapping):
        raise TypeError(f"sampling must be a dict of the model family's sampling options, e.g. {{'steps': 4}} "
                        f"for diffusion, got {type(sampling).__name__}")
    return {str(k): v for k, v in sampling.items()}


class PhysicsResets:
    """Initial states and first frames from the physics backend the model was trained on."""

    seeded = True  # `LearnedWorlds.reset` hands it the episode seeds (a Gymnasium env's twin resets its source)

    def __init__(self, world: World, backend: str, image_size: tuple[int, int], camera: Any, render: bool = True,
                 cameras: Any = None):
        if backend not in (*PHYSICS_BACKENDS, SOURCE_BACKEND):
            raise UnknownChoiceError("reset backend", backend, (*PHYSICS_BACKENDS, SOURCE_BACKEND))
        self.render, self.image_size = render, tuple(image_size)
        self.views = None if cameras is None else len(cameras)
        views = {} if cameras is None else {"cameras": [(c, tuple(image_size)) for c in cameras]}
        self.env = make_physics_env(world, backend=backend, obs_mode="both" if render else "state",
                                    image_size=image_size, camera=camera, **views)

    def sample(self, rng: np.random.Generator, options: dict | None, seed: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, CameraPose]:
        """`seed` (a Gymnasium env's twin, reset with a seed): the source env is reset with it, so the twin
        starts where `gym.make(id).reset(seed=seed)` does."""
        if seed is not None and hasattr(self.env, "source"):
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            self.env.np_random = rng  # draws exactly what a physics env seeded the same way draws
            obs, info = self.env.reset(options=options)
        if not self.render:  # state-only envs never show a frame; obs_mode="state": obs is the state
            return np.zeros(((self.views,) if self.views else ()) + (*self.image_size, 3), np.uint8), obs, \
                info["camera"]
        return obs["pixels"], obs["state"], info["camera"]

    def close(self) -> None:
        self.env.close()


RESET_STARTS = ("episode", "any")
ENSEMBLE_MODES = ("mean", "sample")


class DatasetResets:
    """Frames, states and cameras of recorded episodes: each episode's first step (`start="episode"`,
    episodes drawn uniformly), or any recorded step that an action followed (`start="any"`, steps drawn
    uniformly), so short imagined rollouts branch off real states as in MBPO."""

    def __init__(self, directory: str | os.PathLike, world: World, image_size: tuple[int, int],
                 start: str = "episode"):
        from cosmos_sim.data import EpisodeDataset
        from cosmos_sim.errors import DatasetMismatchError

        if start not in RESET_STARTS:
            raise UnknownChoiceError("reset_start", start, RESET_STARTS)
        self.start = start
        self.data = EpisodeDataset(directory, world=world.name)
        if tuple(self.data.spec.image_size) != tuple(image_size):
            raise DatasetMismatchError(f"{directory} holds {tuple(self.data.spec.image_size)} frames, the env "
                                       f"uses {tuple(image_size)}")
        if len(self.data) == 0:
            raise DatasetMismatchError(f"{directory} holds no episodes")
        if start == "any":  # first step index of each episode in the flat list of steps
            self.offsets = np.cumsum([0] + [self.data.num_steps(i) for i in range(len(self.data))])
            if self.offsets[-1] == 0:
                raise DatasetMismatchError(f"{directory} holds no steps to start from")

    def sample(self, rng: np.random.Generator, options: dict | None) -> tuple[np.ndarray, np.ndarray, CameraPose]:
        if options and "camera" in options:
            raise CameraError("reset(options={'camera': ...}) needs reset_source='physics'; a recorded episode "
                              "starts from the camera it was recorded with")
        if self.start == "episode":
            e, t = int(rng.integers(len(self.data))), 0
        else:
            k = int(rng.integers(self.offsets[-1]))
            e = int(np.searchsorted(self.offsets, k, side="right")) - 1
            t = k - int(self.offsets[e])
        ep = self.data[e]
        px, ext, fov = ep["pixels"][t], ep["extrinsics"][t], ep["fovy"][t]
        if self.data.spec.views > 1:  # a multi-view recording: the episode starts from its first view
            px, ext, fov = px[0], ext[0], fov[0]
        return px, ep["states"][t], CameraPose.from_extrinsics(ext, float(fov))

    def close(self) -> None:
        self.data.close()


class CameraCoverageWarning(UserWarning):
    """A learned env was asked for a camera pose outside its model's training cameras."""


# --- the batched core --------------------------------------------------------------------------------
class LearnedWorlds:
    """N rollouts of a WorldModel stepped together. Inputs and outputs are torch tensors on `device`.

    `sampling`: the model family's sampling options for every step, e.g. `{"steps": 4}` (diffusion) or
    `{"temperature": 0.0}` (autoregressive); the family rejects options it does not have, when the env is made.
    """

    def __init__(self, world: str | World, model: Any, num_envs: int, *, obs_mode: str = "both",
                 image_size: int | tuple[int, int] | None = None, camera: Any = None, camera_control: bool = False,
                 reset_source: str | os.PathLike = "physics", device: str | torch.device | None = None,
                 sampling: Mapping[str, Any] | None = None, render: bool = False, reset_start: str = "episode",
                 max_episode_steps: int | None = None, ensemble: str = "mean", uncertainty_penalty: float = 0.0,
                 halt_uncertainty: float | None = None, strict_camera: bool = False, cameras: Any = None):
        if not isinstance(num_envs, int) or num_envs < 1:
            raise InputError(f"num_envs must be a positive int, got {num_envs!r}")
        if max_episode_steps is not None and (not isinstance(max_episode_steps, int) or max_episode_steps < 1):
            raise InputError(f"max_episode_steps must be a positive int, got {max_episode_steps!r}")
        if ensemble not in ENSEMBLE_MODES:
            raise UnknownChoiceError("ensemble", ensemble, ENSEMBLE_MODES)
        if not np.isfinite(uncertainty_penalty) or uncertainty_penalty < 0:
            raise InputError(f"uncertainty_penalty must be a finite number >= 0, got {uncertainty_penalty!r}")
        if halt_uncertainty is not None and not halt_uncertainty > 0:
            raise InputError(f"halt_uncertainty must be > 0 (or None: never halt), got {halt_uncertainty!r}")
        self.ensemble, self.penalty, self.halt_at = ensemble, float(uncertainty_penalty), halt_uncertainty
        self.world = get_world(world)
        self.learned_task = self.world.learned_task  # a Gymnasium env's twin: rewards from the task head
        self.max_episode_steps = max_episode_steps or self.world.max_episode_steps
        self.obs_mode = check_obs_mode(obs_mode)
        self.device = resolve_device(device)
        requested = parse_image_size(image_size) if image_size is not None else None
        self.model = resolve_model(model, self.world, requested, self.device)
        self.image_size = (self.model.image_size, self.model.image_size)
        if self.learned_task and self.model.task_head is None:
            raise ConfigMismatchError(f"{self.world.name}: this world model has no learned reward/termination head "
                                      "(retrain it with this version of cosmos_sim)")
        self.sampling = self.model.sampling_options(**check_sampling(sampling))
        self.camera_spec = CameraSpec(camera)
        # cameras=[...]: V views of each env, V latent rollouts conditioned on the env's one state (the state
        # model runs before the dynamics, which sees the state each action leads to), so any V works with a
        # model trained on single views. Rows of the batch are env-major: row i * V + v is env i's view v.
        self.views: int | None = None
        if cameras is not None:
            if camera is not None:
                raise CameraError("give camera= (one view) or cameras= (several), not both")
            specs, size = parse_cameras(cameras, self.image_size if image_size is None else image_size)
            if size != self.image_size:
                raise ConfigMismatchError(f"this world model makes {self.image_size[0]}x{self.image_size[1]} frames; "
                                          f"the views ask for {size[0]}x{size[1]}")
            if ensemble == "sample":
                raise InputError("ensemble='sample' draws a member per rollout, so several views of one env would "
                                 "step different states: use ensemble='mean' with cameras=[...]")
            self.views = len(specs)
            cameras = [s.value for s in specs]
        V = self.views or 1
        self.camera_control = bool(camera_control)
        self.coverage = self.model.camera_coverage(self.world)
        self.strict_camera = bool(strict_camera)
        self._camera_warned = np.zeros(num_envs, bool)
        self.num_envs = num_envs
        self.decode = obs_mode in ("pixels", "both") or render
        if str(reset_source) == "physics" and reset_start != "episode":
            raise InputError(f"reset_start={reset_start!r} needs reset_source=DATASET (a dataset's recorded steps)")
        if hasattr(reset_source, "sample"):  # a source object, e.g. the Dyna loop's recorded states
            if self.decode:
                raise InputError("a reset source object serves obs_mode='state' envs; pixels need 'physics' or a "
                                 "dataset directory")
            self.source = reset_source
        elif str(reset_source) == "physics":
            backend = self.model.info.get("backend", "mujoco")
            self.source: PhysicsResets | DatasetResets = PhysicsResets(self.world, backend, self.image_size, camera,
                                                                       render=self.decode, cameras=cameras)
        elif Path(reset_source).is_dir():
            if camera is not None or cameras is not None:
                raise CameraError("camera= and cameras= need reset_source='physics'; recorded episodes keep their "
                                  "one camera")
            self.source = DatasetResets(reset_source, self.world, self.image_size, start=reset_start)
        else:
            raise InputError(f"reset_source must be 'physics' or a dataset directory, got {str(reset_source)!r}")
        N, S, dev = num_envs, self.world.state_dim, self.device
        self.rngs = [np.random.default_rng() for _ in range(N)]
        self.generator = torch.Generator(device=dev)
        self.generator.manual_seed(int(np.random.default_rng().integers(2**62)))
        self.cameras: list[CameraPose] = [self.world.default_camera] * (N * V)  # per row, as the frames
        self.extrinsics = torch.zeros(N * V, 4, 4, device=dev)
        self.fovy = torch.zeros(N * V, device=dev)
        self.rays: torch.Tensor | None = None
        self.frames = torch.zeros(N * V, *self.image_size, 3, dtype=torch.uint8, device=dev)
        self.states = torch.zeros(N, S, device=dev)
        self.t = torch.zeros(N, dtype=torch.long, device=dev)
        self.uncertainty = torch.zeros(N, device=dev)  # the state model's members' disagreement at the last step
        self.halted = torch.zeros(N, dtype=torch.bool, device=dev)
        self.learned_success = torch.zeros(N, dtype=torch.bool, device=dev)
        self.diverged = torch.zeros(N, dtype=torch.bool, device=dev)  # the last step's prediction was not finite
        self.rollout = None
        self.camera_arrays = np.zeros((N * V, 10), dtype=np.float32)  # info["camera"], kept in step with cameras
        self.started = False

    @property
    def action_dim(self) -> int:
        return self.world.action_dim + (3 if self.camera_control else 0)

    def seed(self, seeds: list[int | None], generator_seed: int | None) -> None:
        for i, s in enumerate(seeds):
            if s is not None:
                self.rngs[i] = np.random.default_rng(s)
        if generator_seed is not None:
            self.generator.manual_seed(int(generator_seed))

    def reset(self, idx: list[int], options: dict | None = None, seeds: list[int | None] | None = None) -> None:
        """Start the envs at positions `idx` from fresh initial states (each drawn from its own RNG; `seeds`,
        one per position, reset a Gymnasium env's source env with that seed)."""
        frames, states, cams = [], [], []
        seeded = getattr(self.source, "seeded", False)  # only sources that reset a seeded env take the seed
        for j, i in enumerate(idx):
            seed = None if seeds is None or not seeded else seeds[j]
            f, s, c = (self.source.sample(self.rngs[i], options) if seed is None
                       else self.source.sample(self.rngs[i], options, seed))
            frames.append(f if self.views else f[None])
            states.append(s)
            cams.extend(c if self.views else [c])
        dev, V = self.device, self.views or 1
        frames_t = torch.from_numpy(np.concatenate(frames)).to(dev)  # rows
        ext = torch.from_numpy(np.stack([c.extrinsics() for c in cams]).astype(np.float32)).to(dev)
        fov = torch.tensor([c.fovy for c in cams], dtype=torch.float32, device=dev)
        states_t = torch.from_numpy(np.stack(states)).to(dev).float()
        rows_state = states_t.repeat_interleave(V, 0)
        if self.decode:
            new = self.model.start(frames_t[:, None], ext[:, None], fov[:, None], states=rows_state)
        else:  # state-only: no frames to encode, the state evolves alone (see WorldModel.step)
            new = self.model.start_states(rows_state)
        rays = self.model.rays(ext, fov)
        ix = torch.as_tensor(idx, dtype=torch.long, device=dev)
        rx = (ix[:, None] * V + torch.arange(V, device=dev)).flatten()
        if self.rollout is None:
            if len(idx) != self.num_envs:
                raise RuntimeError("the first reset must start every env")
            self.rollout, self.rays = new, rays
        else:
            self.rollout.assign(rx, new)
            self.rays[rx] = rays
        if self.decode:
            self.check_cameras(cams, rx.tolist())
        for r, c in zip(rx.tolist(), cams, strict=True):
            self.cameras[r] = c
            self.camera_arrays[r] = c.to_array()
        self.extrinsics[rx], self.fovy[rx] = ext, fov
        # out of place: tensors handed out by earlier steps (array_type="torch") must not change under the caller
        self.frames = self.frames.index_put((rx,), frames_t)
        self.states = self.states.index_put((ix,), states_t)
        self.t[ix] = 0
        self.uncertainty = self.uncertainty.index_put((ix,), torch.zeros(len(idx), device=dev))
        self.halted = self.halted.index_put((ix,), torch.zeros(len(idx), dtype=torch.bool, device=dev))
        self.learned_success = self.learned_success.index_put((ix,), torch.zeros(len(idx), dtype=torch.bool,
                                                                                 device=dev))
        self.diverged = self.diverged.index_put((ix,), torch.zeros(len(idx), dtype=torch.bool, device=dev))
        self.started = True

    def check_actions(self, actions: Any) -> torch.Tensor:
        """[N, A] numbers, finite -> float32 tensor on the device, clipped to [-1, 1]."""
        shape = (self.num_envs, self.action_dim)
        if isinstance(actions, torch.Tensor):
            a = actions.detach().to(self.device, torch.float32)
        else:
            try:
                a = torch.from_numpy(np.asarray(actions, dtype=np.float32)).to(self.device)
            except (TypeError, ValueError) as e:
                raise ActionError(f"actions must be numeric with shape {shape}: {e}") from None
        if tuple(a.shape) != shape:
            raise ActionError(f"actions must have shape {shape}, got {tuple(a.shape)}")
        if not bool(torch.isfinite(a).all()):
            bad = (~torch.isfinite(a)).any(1).nonzero().flatten().tolist()
            raise ActionError(f"actions contain NaN or inf (envs {bad})")
        return a.clamp(-1.0, 1.0)

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Checked actions [N, A] -> reward [N], terminated [N], truncated [N]; frames/states updated."""
        if not self.started:
            raise RuntimeError("call reset() before step()")
        A = self.world.action_dim
        if self.camera_control:
            self._move_cameras(actions[:, A:])
        # state-only observers skip the latent dynamics: the state evolves on its own (see StateHead)
        V = self.views or 1
        rows_a = actions[:, :A].repeat_interleave(V, 0) if V > 1 else actions[:, :A]
        frames, states = self.model.step(self.rollout, rows_a, generator=self.generator, decode=self.decode,
                                         rays=self.rays, sampling=self.sampling, latents=self.decode,
                                         ensemble=self.ensemble)
        states = states[::V]  # the views' rows step the same state: the env's is its first row's
        if frames is not None:
            self.frames = frames
        prev = self.states
        # a non-finite or out-of-bound prediction ends that env's episode (truncated, info["diverged"]), as a
        # blown-up physics step does; it keeps its last good state, so a learner never sees NaN
        bad = ~torch.isfinite(states).all(-1) | (states.abs() >= DIVERGENCE_BOUND).any(-1)
        self.diverged = bad
        self.states = torch.where(bad[:, None], prev, states)
        self.t += 1
        if self.learned_task:  # no reward code: the model's task head says what the env would have
            reward, terminated, self.learned_success = self.model.task(prev, actions[:, :A], self.states)
            reward = reward.float()
        else:
            reward = torch.as_tensor(self.world.reward(self.states, actions[:, :A]), dtype=torch.float32)
            terminated = torch.as_tensor(self.world.terminated(self.states), dtype=torch.bool)
        self.uncertainty = self.rollout.extra["uncertainty"].float()[::V]
        if self.penalty:  # MOPO: the reward minus lambda x the ensemble's disagreement
            reward = reward - self.penalty * self.uncertainty.to(reward.device)
        self.halted = torch.zeros_like(terminated)
        if self.halt_at is not None:  # MOReL: stop where the members disagree too much
            self.halted = (self.uncertainty.to(terminated.device) > self.halt_at) & ~terminated
        terminated = terminated & ~bad
        reward = torch.where(bad.to(reward.device), torch.zeros_like(reward), reward)
        truncated = ((self.t >= self.max_episode_steps) | self.halted | bad) & ~terminated
        return reward, terminated, truncated

    def _move_cameras(self, delta: torch.Tensor) -> None:
        d = delta.detach().cpu().numpy()
        rng, V = self.world.camera_range, self.views
        if V is None:
            self.cameras = [rng.moved(c, d[i]) for i, c in enumerate(self.cameras)]
        else:  # each env's views move together, as one rig
            self.cameras = [c for i in range(self.num_envs) for c in rng.moved_together(self.cameras[i * V:(i + 1) * V],
                                                                                           d[i])]
        if self.decode:
            self.check_cameras(self.cameras, range(len(self.cameras)))
        self.camera_arrays = np.stack([c.to_array() for c in self.cameras])
        ext = np.stack([c.extrinsics() for c in self.cameras]).astype(np.float32)
        self.extrinsics = torch.from_numpy(ext).to(self.device)
        self.fovy = torch.tensor([c.fovy for c in self.cameras], dtype=torch.float32, device=self.device)
        self.rays = self.model.rays(self.extrinsics, self.fovy)

    def check_cameras(self, cams: list[CameraPose], rows) -> None:
        """Poses the model never saw: a warning once per env, or `CameraError` with `strict_camera=True`."""
        V = self.views or 1
        for c, r in zip(cams, rows, strict=True):
            i = r // V
            if self.coverage.covers(c) or (self._camera_warned[i] and not self.strict_camera):
                continue
            az, el, dist = c.orbit_params()
            view = f" view {r % V}" if self.views else ""
            msg = (f"env {i}{view}: camera at az {az:.1f}°, el {el:.1f}°, {dist:.2f} m (fovy {c.fovy:g}°) lies "
                   f"outside what this world model was trained on ({self.coverage.describe()}); its frames there "
                   "are guesses")
            if self.strict_camera:
                raise CameraError(msg + " (strict_camera=True)")
            warnings.warn(msg, CameraCoverageWarning, stacklevel=4)
            self._camera_warned[i] = True

    def env_frames(self) -> torch.Tensor:
        """Frames per env: [N, H, W, 3], or [N, V, H, W, 3] with several views."""
        f = self.frames
        return f if self.views is None else f.view(self.num_envs, self.views, *f.shape[1:])

    def env_cameras(self, i: int) -> CameraPose | tuple[CameraPose, ...]:
        """Env i's camera pose, or its views' poses."""
        return self.cameras[i] if self.views is None else tuple(self.cameras[i * self.views:(i + 1) * self.views])

    def env_camera_arrays(self) -> np.ndarray:
        """info["camera"] of a vector env: [N, 10], or [N, V, 10] with several views."""
        a = self.camera_arrays.copy()
        return a if self.views is None else a.reshape(self.num_envs, self.views, 10)

    def success(self) -> torch.Tensor:
        if self.learned_task:
            return self.learned_success
        return torch.as_tensor(self.world.success(self.states), dtype=torch.bool)

    def close(self) -> None:
        self.source.close()


def _single_spaces(world: World, obs_mode: str, image_size: tuple[int, int], camera_control: bool,
                   views: int | None = None):
    n = world.action_dim + (3 if camera_control else 0)
    return observation_space(world, obs_mode, image_size, views), spaces.Box(-1.0, 1.0, (n,), np.float32)


# --- gym.Env ------------------------------------------------------------------------------------------
class WorldModelEnv(gym.Env):
    """One env in a learned world; same spaces, keywords and info as `PhysicsEnv`. A camera pose outside the
    model's training cameras (`model.camera_coverage`) warns once (`CameraCoverageWarning`), or raises
    `CameraError` with `strict_camera=True`."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, world: str | World = "Push", model: Any = None, obs_mode: str = "both",
                 image_size: int | tuple[int, int] | None = None, camera: Any = None, camera_control: bool = False,
                 render_mode: str | None = None, device: str | torch.device | None = None,
                 reset_source: str | os.PathLike = "physics", sampling: Mapping[str, Any] | None = None,
                 reset_start: str = "episode", ensemble: str = "mean", uncertainty_penalty: float = 0.0,
                 halt_uncertainty: float | None = None, time_limit: bool = True, strict_camera: bool = False,
                 cameras: Any = None):
        if render_mode not in (None, "rgb_array"):
            raise UnknownChoiceError("render_mode", render_mode, ["rgb_array"])
        self.core = LearnedWorlds(world, model, 1, obs_mode=obs_mode, image_size=image_size, camera=camera,
                                  camera_control=camera_control, reset_source=reset_source, device=device,
                                  sampling=sampling, render=render_mode is not None, reset_start=reset_start,
                                  ensemble=ensemble, uncertainty_penalty=uncertainty_penalty,
                                  halt_uncertainty=halt_uncertainty, strict_camera=strict_camera, cameras=cameras,
                                  max_episode_steps=None if time_limit else 2**62)  # gym.make's TimeLimit rules
        self.world, self.obs_mode, self.render_mode = self.core.world, obs_mode, render_mode
        self.backend = "world_model"
        self.image_size = self.core.image_size
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt)}
        self.observation_space, self.action_space = _single_spaces(self.world, obs_mode, self.image_size,
                                                                   camera_control, self.core.views)

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
                "uncertainty": float(self.core.uncertainty[0]), "halted": bool(self.core.halted[0]),
                "state": to_numpy(self.core.states[0].float()), "diverged": bool(self.core.diverged[0])}


# --- gym.vector.VectorEnv -----------------------------------------------------------------------------
AUTORESET_MODES = ("next_step", "same_step", "disabled")


def parse_autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    """The `AutoresetMode` named "next_step", "same_step" or "disabled" (Gymnasium's own values are accepted
    too). "disabled": nothing resets by itself; the caller resets finished envs with
    `reset(options={"reset_mask": mask})` before stepping them again (what torchrl's GymWrapper does)."""
    modes: dict = {name: AutoresetMode[name.upper()] for name in AUTORESET_MODES}
    for m in modes.copy().values():
        modes[m.value] = modes[m] = m
    if not isinstance(mode, (str, AutoresetMode)) or mode not in modes:
        raise UnknownChoiceError("autoreset_mode", mode, AUTORESET_MODES)
    return modes[mode]


def env_row(x: Any, i: int) -> Any:
    """Env i's part of a batched observation or info entry (a copy)."""
    if isinstance(x, dict):
        return {k: env_row(v, i) for k, v in x.items()}
    return x[i].clone() if isinstance(x, torch.Tensor) else np.array(x[i], copy=True)


class WorldModelVectorEnv(gym.vector.VectorEnv):
    """N learned envs stepped in one forward pass; per-env autoreset on the step after an episode ends
    (Gymnasium's NEXT_STEP), within the same step with `autoreset_mode="same_step"`, or never with
    `autoreset_mode="disabled"` (the caller resets finished envs with `reset_mask`; torchrl's GymWrapper does).

    `array_type="torch"` returns observations, rewards and flags as tensors on the model's device
    (and accepts tensor actions there), so a GPU training loop never copies to the host.
    `info` holds per-env arrays: success [N], state [N, S], and camera [N, 10] (`CameraPose.to_array`).
    `max_episode_steps`: episodes truncate after this many steps (default: the world's); short, with
    `reset_start="any"`, for many short branched rollouts. With an ensemble state model, `info` also holds
    `uncertainty` [N] (the members' disagreement) and `halted` [N]; `uncertainty_penalty=λ` subtracts
    λ × uncertainty from the reward (MOPO), `halt_uncertainty=τ` truncates where it passes τ (MOReL), and
    `ensemble="sample"` steps with one member drawn per env and step instead of the members' mean.
    `strict_camera` as in `WorldModelEnv`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, world: str | World = "Push", num_envs: int = 1, model: Any = None, obs_mode: str = "both",
                 image_size: int | tuple[int, int] | None = None, camera: Any = None, camera_control: bool = False,
                 render_mode: str | None = None, device: str | torch.device | None = None,
                 reset_source: str | os.PathLike = "physics", sampling: Mapping[str, Any] | None = None,
                 array_type: str = "numpy", reset_start: str = "episode", max_episode_steps: int | None = None,
                 ensemble: str = "mean", uncertainty_penalty: float = 0.0, halt_uncertainty: float | None = None,
                 autoreset_mode: str | AutoresetMode = "next_step", strict_camera: bool = False,
                 cameras: Any = None):
        if array_type not in ARRAY_TYPES:
            raise UnknownChoiceError("array_type", array_type, ARRAY_TYPES)
        if render_mode not in (None, "rgb_array"):
            raise UnknownChoiceError("render_mode", render_mode, ["rgb_array"])
        self._set_autoreset_mode(autoreset_mode)
        self.core = LearnedWorlds(world, model, num_envs, obs_mode=obs_mode, image_size=image_size, camera=camera,
                                  camera_control=camera_control, reset_source=reset_source, device=device,
                                  sampling=sampling, render=render_mode is not None, reset_start=reset_start,
                                  max_episode_steps=max_episode_steps, ensemble=ensemble,
                                  uncertainty_penalty=uncertainty_penalty, halt_uncertainty=halt_uncertainty,
                                  strict_camera=strict_camera, cameras=cameras)
        self.world, self.obs_mode, self.render_mode = self.core.world, obs_mode, render_mode
        self.array_type = array_type
        self.num_envs = num_envs
        self.backend = "world_model"
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt),
                         "autoreset_mode": self.autoreset_mode}
        self.single_observation_space, self.single_action_space = _single_spaces(
            self.world, obs_mode, self.core.image_size, camera_control, self.core.views)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._done = torch.zeros(num_envs, dtype=torch.bool, device=self.core.device)

    autoreset_mode = AutoresetMode.NEXT_STEP

    def _set_autoreset_mode(self, mode: str | AutoresetMode) -> None:
        self.autoreset_mode = parse_autoreset_mode(mode)

    @property
    def model(self):
        return self.core.model

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
            reward = torch.where(done_before, torch.zeros_like(reward), reward)
            terminated = terminated & ~done_before
            truncated = truncated & ~done_before
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

    def _info(self) -> dict:
        return {"success": self._out(self.core.success()), "state": self._out(self.core.states.float()),
                "camera": self.core.env_camera_arrays(), "uncertainty": self._out(self.core.uncertainty),
                "halted": self._out(self.core.halted), "diverged": self._out(self.core.diverged)}
