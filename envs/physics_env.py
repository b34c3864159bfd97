"""PhysicsEnv: one Gymnasium env for every world on the MuJoCo and PyBullet backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cosmos_sim.camera import CameraPose
from cosmos_sim.errors import ActionError, CameraError, InputError, UnknownChoiceError
from cosmos_sim.worlds import World, get_world

OBS_MODES = ("pixels", "state", "both")
PHYSICS_BACKENDS = ("mujoco", "pybullet")
MAX_IMAGE_SIZE = 256
# A state entry beyond this magnitude means the simulation blew up (positions in m, speeds in m/s).
DIVERGENCE_BOUND = 1e3


def parse_image_size(image_size) -> tuple[int, int]:
    """64 or (64, 64) -> (height, width), checked against 1..256."""
    def ok(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and 1 <= v <= MAX_IMAGE_SIZE

    if isinstance(image_size, (int, np.integer)):
        hw = (image_size, image_size)
    elif isinstance(image_size, (tuple, list)):
        hw = tuple(image_size)
    else:
        hw = ()
    if len(hw) != 2 or not all(ok(v) for v in hw):
        raise InputError(f"image_size must be an int or (height, width) of ints in 1..{MAX_IMAGE_SIZE}, "
                         f"got {image_size!r}")
    return int(hw[0]), int(hw[1])


def check_obs_mode(obs_mode: str) -> str:
    if obs_mode not in OBS_MODES:
        raise UnknownChoiceError("obs_mode", obs_mode, OBS_MODES)
    return obs_mode


def observation_space(world: World, obs_mode: str, image_size: tuple[int, int], views: int | None = None
                      ) -> spaces.Box | spaces.Dict:
    """The state `Box` ("state"), the image `Box` ("pixels"), or `Dict(pixels, state)` ("both"): one-part
    observations are the array itself, so libraries that expect a flat vector or an image take them.
    `views=V` (several cameras): pixels are `[V, H, W, 3]`."""
    pixels = spaces.Box(0, 255, ((views,) if views else ()) + (*image_size, 3), np.uint8)
    state = spaces.Box(-DIVERGENCE_BOUND, DIVERGENCE_BOUND, (world.state_dim,), np.float32)
    return {"pixels": pixels, "state": state}.get(obs_mode) or spaces.Dict({"pixels": pixels, "state": state})


def make_sim(backend: str, world: World, image_size: tuple[int, int]):
    if backend == "mujoco":
        from cosmos_sim.envs.mujoco_sim import MujocoSim

        return MujocoSim(world, image_size)
    if backend == "pybullet":
        from cosmos_sim.envs.pybullet_sim import PybulletSim

        return PybulletSim(world, image_size)
    raise UnknownChoiceError("physics backend", backend, PHYSICS_BACKENDS)


def check_action(action, shape: tuple[int, ...]) -> np.ndarray:
    """Shape and finiteness checked, then clipped to [-1, 1]."""
    try:
        a = np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ActionError(f"action must be numeric with shape {shape}: {e}") from None
    if a.shape != shape:
        raise ActionError(f"action must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ActionError(f"action contains NaN or inf: {a.tolist()}")
    return np.clip(a, -1.0, 1.0)


MAX_VIEWS = 8


def side_by_side(views: np.ndarray) -> np.ndarray:
    """Views [V, H, W, 3] as one picture [H, V * W, 3], left to right in `cameras` order: what render() shows."""
    return np.concatenate(list(views), axis=1)


def parse_cameras(cameras: Any, image_size: Any) -> tuple[list[CameraSpec], tuple[int, int]]:
    """`cameras=[view, ...]`, each a `CameraPose`, "default", "random", or `(view, image_size)`: the views'
    specs and their one image size (one observation array holds every view, so the sizes must agree)."""
    if isinstance(cameras, (str, CameraPose)) or not hasattr(cameras, "__len__"):
        raise CameraError(f"cameras must be a list of views (CameraPose, 'default' or 'random'), got {cameras!r}; "
                          "camera= takes one view")
    if not 1 <= len(cameras) <= MAX_VIEWS:
        raise CameraError(f"cameras must hold 1 to {MAX_VIEWS} views, got {len(cameras)}")
    specs, sizes = [], set()
    for view in cameras:  # a view without its own size has the env's image_size
        size = image_size
        if isinstance(view, tuple) and len(view) == 2 and not isinstance(view[0], (int, float)):
            view, size = view
        sizes.add(parse_image_size(size))
        specs.append(CameraSpec(view))
    if len(sizes) > 1:
        raise CameraError(f"the views mix image sizes {', '.join(f'{h}x{w}' for h, w in sorted(sizes))}; one "
                          "observation holds every view, so give them one size")
    return specs, sizes.pop()


class CameraSpec:
    """What `camera=` means: None (world default), "random" (sampled per reset) or a fixed pose."""

    def __init__(self, camera):
        if camera is None or isinstance(camera, CameraPose) or (isinstance(camera, str)
                                                                and camera in ("default", "random")):
            self.value = camera
        else:
            raise CameraError(f"camera must be None, 'default', 'random' or a CameraPose, got {camera!r}")

    def pose(self, world: World, rng: np.random.Generator) -> CameraPose:
        if self.value == "random":
            return world.camera_range.sample(rng)
        if isinstance(self.value, CameraPose):
            return self.value
        return world.default_camera


def observation(obs_mode: str, pixels: Callable[[], Any], state: Any) -> Any:
    """The observation of `obs_mode` (see `observation_space`); `pixels()` renders only when the mode shows
    them. Arrays are returned as given: callers pass copies or fresh arrays."""
    if obs_mode == "state":
        return state
    if obs_mode == "pixels":
        return pixels()
    return {"pixels": pixels(), "state": state}


class PhysicsEnv(gym.Env):
    """A world simulated by MuJoCo or PyBullet. Observations by `obs_mode`: the state, the frame, or both."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, world: str | World = "Push", backend: str = "mujoco", obs_mode: str = "both",
                 image_size: int | tuple[int, int] = 64, camera: Any = None, camera_control: bool = False,
                 render_mode: str | None = None, time_limit: bool = True, cameras: Any = None):
        if backend not in PHYSICS_BACKENDS:
            raise UnknownChoiceError("backend", backend, PHYSICS_BACKENDS)
        if render_mode not in (None, "rgb_array"):
            raise UnknownChoiceError("render_mode", render_mode, ["rgb_array"])
        self.world = get_world(world)
        self.backend = backend
        self.obs_mode = check_obs_mode(obs_mode)
        self.image_size = parse_image_size(image_size)
        self.camera_spec = CameraSpec(camera)
        self.views: list[CameraSpec] | None = None  # cameras=[...]: several views of one scene
        if cameras is not None:
            if camera is not None:
                raise CameraError("give camera= (one view) or cameras= (several), not both")
            self.views, self.image_size = parse_cameras(cameras, image_size)
        self.camera_control = bool(camera_control)
        self.render_mode = render_mode
        # False under gym.make: its TimeLimit (the registered max_episode_steps, or the caller's) is the one limit
        self.time_limit = bool(time_limit)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt)}
        self.observation_space = observation_space(self.world, self.obs_mode, self.image_size,
                                                   None if self.views is None else len(self.views))
        n = self.world.action_dim + (3 if self.camera_control else 0)
        self.action_space = spaces.Box(-1.0, 1.0, (n,), np.float32)
        self.sim = make_sim(backend, self.world, self.image_size)
        self.cameras: list[CameraPose] = [self.world.default_camera] * len(self.views or [None])
        self._state: np.ndarray | None = None
        self._frame: np.ndarray | None = None
        self._t = 0
        self._diverged = False

    # --- gym API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        init = self.world.sample_initial_state(self.np_random)
        options = options or {}
        if self.views is None:
            spec = CameraSpec(options["camera"]) if "camera" in options else self.camera_spec
            self.cameras = [spec.pose(self.world, self.np_random)]
        else:
            views = self.views
            if "cameras" in options:
                views, size = parse_cameras(options["cameras"], self.image_size)
                if len(views) != len(self.views) or size != self.image_size:
                    raise CameraError(f"reset options cameras must keep the env's {len(self.views)} views at "
                                      f"{self.image_size[0]}x{self.image_size[1]}")
            self.cameras = [v.pose(self.world, self.np_random) for v in views]
        self.sim.reset(init)
        self._state = self.world.read_state(self.sim)
        self._frame = None
        self._t = 0
        self._diverged = False
        return self._observe(), self._info(diverged=False)

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        a = check_action(action, self.action_space.shape)
        if self._diverged:  # the simulation is gone; only reset() brings it back
            return self._observe(), 0.0, False, True, self._info(diverged=True)
        A = self.world.action_dim
        cameras = self.cameras
        if self.camera_control:  # several views move together, as one rig
            rng = self.world.camera_range
            cameras = [rng.moved(cameras[0], a[A:])] if self.views is None else rng.moved_together(cameras, a[A:])
        ok = self.sim.step(a[:A])
        state = self.world.read_state(self.sim)
        self._t += 1
        if not ok or not np.all(np.isfinite(state)) or np.abs(state).max() >= DIVERGENCE_BOUND:
            # Keep the last good observation and camera: a learner never sees NaN, and the episode ends.
            self._diverged = True
            return self._observe(), 0.0, False, True, self._info(diverged=True)
        self.cameras = cameras
        self._state = state
        self._frame = None
        reward = float(self.world.reward(state, a[:A]))
        terminated = bool(self.world.terminated(state))
        truncated = self.time_limit and self._t >= self.world.max_episode_steps and not terminated
        return self._observe(), reward, terminated, truncated, self._info(diverged=False)

    @property
    def camera(self) -> CameraPose:
        """The (first) view's pose."""
        return self.cameras[0]

    def render(self):
        """The frame; with several views, side by side (left to right in `cameras` order)."""
        if self._state is None:
            raise RuntimeError("call reset() before render()")
        px = self._pixels()
        return side_by_side(px) if self.views is not None else px.copy()

    def close(self):
        if getattr(self, "sim", None) is not None:
            self.sim.close()
            self.sim = None

    # --- helpers -------------------------------------------------------------------------------
    def _pixels(self) -> np.ndarray:
        if self._frame is None:
            frames = [self.sim.render(c) for c in self.cameras]
            self._frame = np.stack(frames) if self.views is not None else frames[0]
        return self._frame

    def _observe(self) -> dict[str, np.ndarray]:
        return observation(self.obs_mode, lambda: self._pixels().copy(), self._state.copy())

    def _info(self, diverged: bool) -> dict:
        camera = self.camera if self.views is None else tuple(self.cameras)
        return {"success": bool(self.world.success(self._state)), "camera": camera,
                "state": self._state.copy(), "diverged": diverged}
