"""The batched core of every learned env: N rollouts of one `WorldModel` on one device, stepped together.

`BatchedLearnedCore` holds the rollouts' frames, states, cameras and step counts as torch tensors on the
model's device and steps them all in one forward pass; the env classes (envs/world_model_env.py,
envs/learned_env.py) are faces on it that convert at the gym boundary. Rewards, success and termination come
from the world's own functions applied to the predicted state (a Gymnasium env's twin: the model's learned task
head), so they mean what they mean in physics. With an ensemble state model the core reports the members'
disagreement (`uncertainty`) and, where the model was calibrated at training, each step's trust score over all
its ensemble parts (`trust_score`, cosmos_sim.trust: above 1 the step is off the data); it shapes nothing
(MOPO's penalty and MOReL's halting: envs/shaping.py).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cosmos_sim.camera import CameraPose
from cosmos_sim.device import resolve_device
from cosmos_sim.envs.learned_config import NO_MODEL, PRETRAINED, LearnedEnvConfig
from cosmos_sim.envs.physics_env import DIVERGENCE_BOUND, check_obs_mode, parse_cameras
from cosmos_sim.envs.reset_sources import DatasetResets, PhysicsResets
from cosmos_sim.errors import ActionError, CameraError, ConfigMismatchError, InputError, MissingPathError
from cosmos_sim.worlds import World, get_world


class CameraCoverageWarning(UserWarning):
    """A learned env was asked for a camera pose outside its model's training cameras."""


def resolve_model(model: Any, world: World, image_size: tuple[int, int] | None, device: torch.device):
    """A WorldModel for `world` on `device`, from a path, an instance, or None / "pretrained" (the world's
    shipped model); mismatches name both sides."""
    from cosmos_sim.shipped import pretrained_path
    from cosmos_sim.world_model import WorldModel

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


class BatchedLearnedCore:
    """N rollouts of a WorldModel stepped together, made from a `LearnedEnvConfig`. Inputs and outputs are
    torch tensors on `device`.

    `render`: frames are decoded even for obs_mode="state" (render_mode="rgb_array"). The config's
    `sampling` options go to the model family for every step, e.g. `{"steps": 4}` (diffusion) or
    `{"temperature": 0.0}` (autoregressive); the family rejects options it does not have, here.
    """

    def __init__(self, config: LearnedEnvConfig, num_envs: int, render: bool = False):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise InputError(f"num_envs must be a positive int, got {num_envs!r}")
        c = self.config = config
        self.ensemble = c.ensemble
        self.world = get_world(c.world)
        self.learned_task = self.world.learned_task  # a Gymnasium env's twin: rewards from the task head
        # time_limit=False (gym.make's envs): no limit of the env's own, gym.make's TimeLimit rules
        self.max_episode_steps = (c.max_episode_steps or self.world.max_episode_steps) if c.time_limit else 2**62
        self.obs_mode = check_obs_mode(c.obs_mode or "both")
        self.device = resolve_device(c.device)
        self.model = resolve_model(c.model, self.world, c.image_size, self.device)
        self.image_size = (self.model.image_size, self.model.image_size)
        if self.learned_task and self.model.task_head is None:
            raise ConfigMismatchError(f"{self.world.name}: this world model has no learned reward/termination head "
                                      "(retrain it with this version of cosmos_sim)")
        self.sampling = self.model.sampling_options(**(c.sampling or {}))
        # cameras=[...]: V views of each env, V latent rollouts conditioned on the env's one state (the state
        # model runs before the dynamics, which sees the state each action leads to), so any V works with a
        # model trained on single views. Rows of the batch are env-major: row i * V + v is env i's view v.
        self.views: int | None = None
        cameras = None
        if c.cameras is not None:
            specs, size = parse_cameras(c.cameras, self.image_size if c.image_size is None else c.image_size)
            if size != self.image_size:
                raise ConfigMismatchError(f"this world model makes {self.image_size[0]}x{self.image_size[1]} frames; "
                                          f"the views ask for {size[0]}x{size[1]}")
            self.views = len(specs)
            cameras = [s.value for s in specs]
        V = self.views or 1
        self.camera_control = c.camera_control
        self.coverage = self.model.camera_coverage(self.world)
        self.strict_camera = c.strict_camera
        self._camera_warned = np.zeros(num_envs, bool)
        self.num_envs = num_envs
        self.decode = self.obs_mode in ("pixels", "both") or render
        self.source = self._reset_source(c, cameras)
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
        # the last step's trust score (cosmos_sim.trust: > 1 is off the data); 0 where the model has no calibration
        self.trust = self.model.trust
        self.trust_score = torch.zeros(N, device=dev)
        self.learned_success = torch.zeros(N, dtype=torch.bool, device=dev)
        self.diverged = torch.zeros(N, dtype=torch.bool, device=dev)  # the last step's prediction was not finite
        self.rollout = None
        self.camera_arrays = np.zeros((N * V, 10), dtype=np.float32)  # info["camera"], kept in step with cameras
        self.started = False

    def _reset_source(self, c: LearnedEnvConfig, cameras: list | None):
        source = c.reset_source
        if hasattr(source, "sample"):  # a source object, e.g. the Dyna loop's recorded states
            if self.decode:
                raise InputError("a reset source object serves obs_mode='state' envs; pixels need 'physics' or a "
                                 "dataset directory")
            return source
        if source == "physics":
            backend = self.model.info.get("backend", "mujoco")
            return PhysicsResets(self.world, backend, self.image_size, c.camera, render=self.decode, cameras=cameras)
        if Path(source).is_dir():
            if c.camera is not None or c.cameras is not None:
                raise CameraError("camera= and cameras= need reset_source='physics'; recorded episodes keep their "
                                  "one camera")
            return DatasetResets(source, self.world, self.image_size, start=c.reset_start)
        raise InputError(f"reset_source must be 'physics' or a dataset directory, got {source!r}")

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
        self.trust_score = self.trust_score.index_put((ix,), torch.zeros(len(idx), device=dev))
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
        spread: dict[str, torch.Tensor] = {}
        if self.learned_task:  # no reward code: the model's task head says what the env would have
            (reward, terminated, self.learned_success), spread = self.model.task_with_spread(prev, actions[:, :A],
                                                                                           self.states)
            reward = reward.float()
        else:
            reward = torch.as_tensor(self.world.reward(self.states, actions[:, :A]), dtype=torch.float32)
            terminated = torch.as_tensor(self.world.terminated(self.states), dtype=torch.bool)
        # the members' disagreement, reported; MOPO's penalty and MOReL's halting are wrappers (envs/shaping.py)
        self.uncertainty = self.rollout.extra["uncertainty"].float()[::V]
        if self.trust is not None:
            from cosmos_sim.trust import signals, trust_score

            score = trust_score(self.trust, signals(self.model, self.uncertainty, spread))
            if score is not None:
                self.trust_score = torch.where(bad, torch.zeros_like(score), score.float())
        terminated = terminated & ~bad
        reward = torch.where(bad.to(reward.device), torch.zeros_like(reward), reward)
        truncated = ((self.t >= self.max_episode_steps) | bad) & ~terminated
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
