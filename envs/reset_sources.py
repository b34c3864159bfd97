"""Where a learned env's episodes start: the physics backend its model was trained on, or recorded episodes.

A reset source has `sample(rng, options) -> (frame, state, camera)` and `close()`. `PhysicsResets` draws the
initial state and first frame exactly as a physics env seeded the same way does (`seeded = True`: a Gymnasium
env's twin resets its source env with the episode's seed). `DatasetResets` starts from recorded episodes: their
first steps, or any recorded step (`start="any"`, MBPO's branched rollouts: with a short `max_episode_steps`,
many short imagined rollouts off real states). Any object with `sample` serves state-only envs (the Dyna
loop's recorded states).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cosmos_sim.camera import CameraPose
from cosmos_sim.envs.learned_config import RESET_STARTS
from cosmos_sim.envs.physics import make_physics_env
from cosmos_sim.envs.physics_env import PHYSICS_BACKENDS
from cosmos_sim.envs.source_env import SOURCE_BACKEND
from cosmos_sim.errors import CameraError, UnknownChoiceError
from cosmos_sim.worlds import World


class PhysicsResets:
    """Initial states and first frames from the physics backend the model was trained on."""

    seeded = True  # the core hands it the episode seeds (a Gymnasium env's twin resets its source)

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


class DatasetResets:
    """Frames, states and cameras of recorded episodes: each episode's first step (`start="episode"`,
    episodes drawn uniformly), or any recorded step that an action followed (`start="any"`, steps drawn
    uniformly), so short imagined rollouts branch off real states as in MBPO."""

    def __init__(self, directory: str | os.PathLike, world: World, image_size: tuple[int, int],
                 start: str = "episode"):
        from cosmos_sim.data.dataset import EpisodeDataset
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
