"""The camera's pose as an observation, for pixel policies that see the world from cameras that vary.

Every cosmos_sim env reports the pose it rendered from in `info["camera"]` (a physics vector env: one
`CameraPose`, or a tuple of them with views, per env; a learned vector env: the poses' `to_array` form). A
policy trained under random cameras needs the pose beside the frames: `CameraObservation(vector_env)` adds
`obs["camera"]`, each view's world->camera extrinsics' top three rows and its fovy / 90 (`POSE_FEATURES`
numbers per view, views one after the other). Datasets store the same two things per frame (`extrinsics`,
`fovy`), so BC reads the pose where the env gives it (`pose_features`), in one form whatever the pose's
look-at target.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper

from cosmos_sim.camera import CameraPose
from cosmos_sim.errors import InputError

POSE_FEATURES = 13


def pose_features(extrinsics: Any, fovy: Any) -> np.ndarray:
    """Extrinsics [..., 4, 4] and fovy [...] (degrees) -> [..., 13] float32."""
    e = np.asarray(extrinsics, np.float32)
    f = np.asarray(fovy, np.float32)
    return np.concatenate([e[..., :3, :4].reshape(*e.shape[:-2], 12), f[..., None] / 90.0], -1).astype(np.float32)


def _pose(p: Any) -> CameraPose:
    return p if isinstance(p, CameraPose) else CameraPose.from_array(p)


def info_camera_features(camera: Any, views: int = 1) -> np.ndarray:
    """A vector env's `info["camera"]` -> [N, 13 * views]."""
    if isinstance(camera, torch.Tensor):
        camera = camera.detach().cpu().numpy()
    rows = []
    for c in camera:
        poses = list(c) if isinstance(c, (tuple, list)) or (isinstance(c, np.ndarray) and c.ndim == 2) else [c]
        if len(poses) != views:
            raise InputError(f"the env reports {len(poses)} camera view(s) per step, the policy takes {views}")
        rows.append(np.concatenate([pose_features(q.extrinsics(), q.fovy) for q in map(_pose, poses)]))
    return np.stack(rows).astype(np.float32)


class CameraObservation(VectorWrapper):
    """Adds `obs["camera"]` (module docstring) to a vector env's observations; a bare array observation
    becomes a dict ("pixels" or "state" beside "camera")."""

    def __init__(self, env: VectorEnv, views: int = 1):
        from cosmos_sim.policies.base import space_dict

        super().__init__(env)
        self.views = int(views)
        box = spaces.Box(-np.inf, np.inf, (POSE_FEATURES * self.views,), np.float32)
        self.single_observation_space = spaces.Dict(space_dict(env.single_observation_space) | {"camera": box})
        self.observation_space = spaces.Dict(
            space_dict(env.observation_space) | {"camera": spaces.Box(-np.inf, np.inf, (env.num_envs, *box.shape),
                                                                      np.float32)})

    def _add(self, obs: Any, info: dict) -> dict:
        from cosmos_sim.policies.base import obs_dict

        if "camera" not in info:
            raise InputError("CameraObservation: the env reports no info['camera']")
        out = obs_dict(obs)
        cam = info_camera_features(info["camera"], self.views)
        first = next(iter(out.values()))
        out["camera"] = torch.as_tensor(cam, device=first.device) if isinstance(first, torch.Tensor) else cam
        return out

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._add(obs, info), info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return self._add(obs, info), reward, terminated, truncated, info
