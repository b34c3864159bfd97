"""Any Gymnasium env as a world: the source of a learned twin.

`GymEnvWorld` describes a registered Gymnasium env (a `Box` action space and a `Box` or flat `Dict`-of-`Box`
observation, rendered as `rgb_array`) the way a `World` describes a MuJoCo scene: its state vector is the
flattened observation, its actions are normalized to [-1, 1] (the env's own bounds are mapped linearly),
and its name is `env:<id>` (plus the kwargs as JSON), so datasets and models say which env and settings
made them. It has no reward or success code: the env gives them in the data and the world model learns
them (`TaskHead`).

`SourceEnv` runs the env with `PhysicsEnv`'s interface (Dict(pixels, state) observations, actions in
[-1, 1], `info["state"|"success"|"camera"|"diverged"]`), so collection, evaluation and PPO treat it as
one more physics backend ("env"). Frames of Gymnasium's own MuJoCo envs are drawn by `mujoco.Renderer`
from the env's camera settings (a free camera aimed at the scene's middle in the model's reference pose, the same
for every episode), without shadows and reflections (fast on a CPU, and Gymnasium's
offscreen viewer leaves later EGL contexts black once one is freed); other envs' `render()` output is
resized to the requested size when its aspect ratio allows.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cosmos_sim.camera import CameraRange, orbit
from cosmos_sim.errors import ActionError, CosmosSimError, UnknownChoiceError
from cosmos_sim.worlds.base import GYM_ENV, GYM_ENV_PREFIX, StateLayout, World, register_world_resolver

PREFIX = GYM_ENV_PREFIX
SOURCE_BACKEND = "env"
# A fixed, nominal camera: the source env renders from its own camera; the model sees constant rays.
NOMINAL_CAMERA = orbit(90.0, -45.0, 2.0)


class SourceEnvError(CosmosSimError, ValueError):
    """A Gymnasium env that cannot be the source of a learned twin, and why."""


def world_name(env_id: str, env_kwargs: dict | None = None) -> str:
    """"env:Reacher-v5", or "env:Reacher-v5?{...}" with the kwargs as sorted JSON."""
    kw = canonical_kwargs(env_kwargs)
    return f"{PREFIX}{env_id}" + (f"?{kw}" if kw != "{}" else "")


def canonical_kwargs(env_kwargs: dict | str | None) -> str:
    if env_kwargs is None:
        return "{}"
    if isinstance(env_kwargs, str):
        try:
            env_kwargs = json.loads(env_kwargs)
        except json.JSONDecodeError as e:
            raise SourceEnvError(f"env kwargs must be a JSON object, e.g. '{{\"frame_skip\": 2}}': {e}") from None
    if not isinstance(env_kwargs, dict):
        raise SourceEnvError(f"env kwargs must be a JSON object (a dict), got {type(env_kwargs).__name__}")
    for key in ("render_mode", "width", "height"):
        if key in env_kwargs:
            raise SourceEnvError(f"env kwargs may not set {key!r}: collection renders rgb_array frames at "
                                 "--image-size itself")
    return json.dumps(env_kwargs, sort_keys=True, separators=(",", ":"))


def parse_world_name(name: str) -> tuple[str, dict]:
    body = name[len(PREFIX):]
    env_id, _, kw = body.partition("?")
    return env_id, (json.loads(kw) if kw else {})


def check_env_id(env_id: str) -> None:
    """Unregistered ids get an error listing the closest registered ones. "module:Id" imports the module
    first (Gymnasium's own convention), so an env registered by a user's module works in worker processes."""
    if ":" in env_id:
        import importlib

        module, _, env_id = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise SourceEnvError(f"cannot import {module!r}, the module that should register {env_id!r}: {e}") from None
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    extra = ("" if close or "-v" not in env_id else
             " (Gymnasium's MuJoCo envs need `pip install gymnasium[mujoco]`)")
    raise SourceEnvError(f"Gymnasium env {env_id!r} is not registered{hint}{extra}. Import the module that "
                         "registers it, or pass a registered id")


def kwarg_hint(env_id: str, kwargs: dict) -> str:
    """Close matches for a kwarg value the env names from a list: Meta-World's task names (`env_name`)."""
    name = kwargs.get("env_name")
    if not env_id.rpartition(":")[2].startswith("Meta-World/") or not isinstance(name, str):
        return ""
    try:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS
    except ImportError:
        return ""
    close = difflib.get_close_matches(name, list(ALL_V3_ENVIRONMENTS), n=5, cutoff=0.5)
    return (f"; env_name {name!r} is not a Meta-World v3 task" +
            (f", close matches: {', '.join(close)}" if close else f" ({len(ALL_V3_ENVIRONMENTS)} tasks: "
             f"{', '.join(list(ALL_V3_ENVIRONMENTS)[:6])}, ...)")) if name not in ALL_V3_ENVIRONMENTS else ""


def _flat_entries(space: spaces.Space, env_id: str) -> tuple[tuple[str, int], ...]:
    def box_ok(b: spaces.Space) -> bool:
        return isinstance(b, spaces.Box) and np.issubdtype(b.dtype, np.floating) and len(b.shape) <= 1

    if box_ok(space):
        return (("obs", int(np.prod(space.shape, dtype=int))),)
    if isinstance(space, spaces.Dict) and space.spaces and all(box_ok(s) for s in space.spaces.values()):
        return tuple((str(k), int(np.prod(s.shape, dtype=int))) for k, s in space.spaces.items())
    what = ("an image observation" if isinstance(space, spaces.Box) and len(space.shape) >= 2
            else f"a {type(space).__name__} observation space {space}")
    raise SourceEnvError(f"{env_id} has {what}; a learned twin needs a float Box vector observation or a flat "
                         "Dict of float Box vectors (the state it learns), with pixels from render()")


class GymEnvWorld(World, register=False):
    """A registered Gymnasium env described as a world (see the module docstring). Use `get_world("env:<id>")`."""

    description = "a Gymnasium env: reward, termination and success learned from its data"
    kind = GYM_ENV

    def __init__(self, env_id: str, env_kwargs: dict | None = None):
        check_env_id(env_id)
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.name = world_name(env_id, self.env_kwargs)
        env = self.make(render_mode=None)
        try:
            self.observation_source = env.observation_space
            self.action_source = env.action_space
            self.render_modes = tuple(env.metadata.get("render_modes") or ())
            self.control_dt = float(getattr(env.unwrapped, "dt", 0) or 1.0 / (env.metadata.get("render_fps") or 10))
            spec_steps = env.spec.max_episode_steps if env.spec is not None else None
        finally:
            env.close()
        a = self.action_source
        if not isinstance(a, spaces.Box) or not np.issubdtype(a.dtype, np.floating) or len(a.shape) != 1:
            raise SourceEnvError(f"{env_id} has action space {a}; a learned twin needs a continuous Box of shape "
                                 "(A,) (Discrete and MultiDiscrete actions are not supported)")
        if not (np.all(np.isfinite(a.low)) and np.all(np.isfinite(a.high)) and np.all(a.high > a.low)):
            raise SourceEnvError(f"{env_id}'s action Box {a} must have finite bounds low < high: actions are "
                                 "normalized to [-1, 1] between them")
        if "rgb_array" not in self.render_modes:
            raise SourceEnvError(f"{env_id} does not render rgb_array frames (its render modes: "
                                 f"{', '.join(self.render_modes) or 'none'}); a learned twin learns from its pixels")
        self.state_layout = StateLayout(_flat_entries(self.observation_source, env_id))
        self.action_names = tuple(f"a{i}" for i in range(a.shape[0]))
        self.max_episode_steps = int(spec_steps or 1000)
        self.default_camera = NOMINAL_CAMERA
        az, el, dist = NOMINAL_CAMERA.orbit_params()
        self.camera_range = CameraRange(azimuth=(az, az), elevation=(el, el), distance=(dist, dist))
        self.low, self.high = a.low.astype(np.float64), a.high.astype(np.float64)

    def make(self, render_mode: str | None = "rgb_array", **extra) -> gym.Env:
        try:
            return gym.make(self.env_id, render_mode=render_mode, **self.env_kwargs, **extra)
        except gym.error.DependencyNotInstalled as e:
            raise SourceEnvError(f"{self.env_id} cannot be made: {e}") from None
        except (TypeError, ValueError, KeyError, gym.error.Error) as e:
            if extra:  # the caller tries render kwargs the env may not take, and handles the refusal
                raise
            raise SourceEnvError(f"gym.make({self.env_id!r}, **{self.env_kwargs}) failed: {e}"
                                 f"{kwarg_hint(self.env_id, self.env_kwargs)}") from None

    # --- the facts a World holds by code ------------------------------------------------------------
    def definition_hash(self) -> str:
        """Of the id, kwargs and spaces: a model for other settings or another version of the env is refused."""
        h = hashlib.sha256(self.name.encode())
        h.update(repr((self.observation_source, self.action_source)).encode())
        return h.hexdigest()[:16]

    def legacy_definition_hash(self) -> str:
        return self.definition_hash()

    def mjcf_path(self) -> str:
        raise SourceEnvError(f"{self.name} is a Gymnasium env: it has no cosmos_sim MJCF scene")

    def describe(self) -> dict:
        return {**super().describe(), "env_id": self.env_id, "env_kwargs": self.env_kwargs,
                "observation_space": str(self.observation_source), "action_space": str(self.action_source)}

    def reward(self, state, action):
        raise SourceEnvError(f"{self.name}: rewards come from the env (in its data) or from a world model's "
                             "learned reward head, not from code")

    def success(self, state):
        raise SourceEnvError(f"{self.name}: success comes from the env's info or a learned success head")

    def terminated(self, state):
        raise SourceEnvError(f"{self.name}: termination comes from the env or a learned termination head")

    # --- conversions at the source env's boundary --------------------------------------------------
    def to_source_action(self, a: np.ndarray) -> np.ndarray:
        """[-1, 1] -> the env's Box (linear), in its dtype."""
        a = np.clip(np.asarray(a, np.float64), -1.0, 1.0)
        return (self.low + (a + 1.0) * 0.5 * (self.high - self.low)).astype(self.action_source.dtype)

    def from_source_action(self, a) -> np.ndarray:
        """The env's Box -> [-1, 1] (clipped), float32."""
        a = np.asarray(a, np.float64)
        return np.clip(2.0 * (a - self.low) / (self.high - self.low) - 1.0, -1.0, 1.0).astype(np.float32)

    def obs_to_state(self, obs: Any) -> np.ndarray:
        if isinstance(self.observation_source, spaces.Dict):
            parts = [np.asarray(obs[k], np.float32).reshape(-1) for k, _ in self.state_layout.entries]
            return np.concatenate(parts)
        return np.asarray(obs, np.float32).reshape(-1)

    def state_to_obs(self, state: np.ndarray) -> Any:
        """State vectors [..., S] -> observations of the source env's space (its dtypes, shapes and keys), with
        the same leading dimensions (none for one state, [N] for a vector env's batch)."""
        space, state = self.observation_source, np.asarray(state)
        lead = state.shape[:-1]
        if isinstance(space, spaces.Dict):
            return {k: np.asarray(state[..., self.state_layout.slice(k)], s.dtype).reshape(*lead, *s.shape)
                    for k, s in space.spaces.items()}
        return np.asarray(state, space.dtype).reshape(*lead, *space.shape)


@lru_cache(maxsize=64)
def _env_world(name: str) -> GymEnvWorld:
    env_id, kwargs = parse_world_name(name)
    return GymEnvWorld(env_id, kwargs)


def env_world(env_id_or_name: str, env_kwargs: dict | str | None = None) -> GymEnvWorld:
    """The GymEnvWorld of an env id (+ kwargs) or of its world name "env:<id>..."; made once per process."""
    name = env_id_or_name if env_id_or_name.startswith(PREFIX) else world_name(
        env_id_or_name, json.loads(canonical_kwargs(env_kwargs)))
    return _env_world(name)


register_world_resolver(PREFIX, env_world)


# --- frames --------------------------------------------------------------------------------------------
def _is_mujoco_env(env: gym.Env) -> bool:
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
    except Exception:  # gymnasium without its mujoco extra
        return False
    return isinstance(env.unwrapped, MujocoEnv)


class _MujocoFrames:
    """Frames of a Gymnasium MuJoCo env from the env's camera settings, with our fast renderer."""

    def __init__(self, env: gym.Env, size: tuple[int, int]):
        import mujoco

        u = env.unwrapped
        self.model, self.data = u.model, u.data
        h, w = size
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, w)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, h)
        self.model.vis.quality.offsamples = 0
        self.size = (h, w)
        self.renderer = None  # made at the first frame: state-only envs never open a GL context
        self.option = mujoco.MjvOption()
        r = getattr(u, "mujoco_renderer", None)
        self.camera_id = getattr(r, "camera_id", -1)
        self.cam_config = dict(getattr(r, "default_cam_config", None) or {})
        self.cam = self._camera()

    def _camera(self):
        import mujoco

        cam = mujoco.MjvCamera()
        if self.camera_id is not None and self.camera_id >= 0:
            cam.type, cam.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, self.camera_id
            return cam
        # Gymnasium's offscreen viewer: look at the scene's middle, which it takes from the state of the first frame it
        # draws; we take it from the model's reference pose (qpos0), so that the camera, and every frame, does not
        # depend on which episode was drawn first (a resumed or multi-worker collection draws them in another order).
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        ref = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, ref)
        for i in range(3):
            cam.lookat[i] = np.median(ref.geom_xpos[:, i])
        cam.distance = self.model.stat.extent
        for key, value in self.cam_config.items():
            if isinstance(value, np.ndarray):
                getattr(cam, key)[:] = value
            else:
                setattr(cam, key, value)
        return cam

    def render(self) -> np.ndarray:
        import mujoco

        if self.renderer is None:
            from cosmos_sim.envs.mujoco_sim import make_renderer

            self.renderer = make_renderer(self.model, *self.size)
        self.renderer.update_scene(self.data, camera=self.cam, scene_option=self.option)
        scene = self.renderer.scene
        scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        return self.renderer.render().copy()

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None


def resize_frame(frame: np.ndarray, size: tuple[int, int], env_id: str) -> np.ndarray:
    """An env's rendered frame at `size` (area resampling); an aspect ratio it cannot keep is an error."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
        raise SourceEnvError(f"{env_id}.render() returned {frame.dtype} {frame.shape}, not an RGB uint8 image")
    frame = frame[..., :3]
    h, w = frame.shape[:2]
    if (h, w) == tuple(size):
        return frame
    if abs(h / w - size[0] / size[1]) > 0.02:
        raise SourceEnvError(f"{env_id} renders {h}x{w} frames and takes no width/height; they cannot be resized "
                             f"to {size[0]}x{size[1]} without distortion. Pass an image size of the same aspect "
                             "ratio, or make the env render square frames")
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.BOX))


# --- the env -------------------------------------------------------------------------------------------
class SourceEnv(gym.Env):
    """A Gymnasium env behind `PhysicsEnv`'s interface (see the module docstring): the "env" backend."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, world: str | GymEnvWorld, backend: str = SOURCE_BACKEND, obs_mode: str = "both",
                 image_size: int | tuple[int, int] = 64, camera: Any = None, camera_control: bool = False,
                 render_mode: str | None = None):
        from cosmos_sim.envs.physics_env import check_obs_mode, observation_space, parse_image_size

        self.world = world if isinstance(world, GymEnvWorld) else env_world(world)
        if camera not in (None, "default") or camera_control:
            raise SourceEnvError(f"{self.world.name} renders from its own camera: camera= and camera_control "
                                 "apply to cosmos_sim worlds only")
        if render_mode not in (None, "rgb_array"):
            raise UnknownChoiceError("render_mode", render_mode, ["rgb_array"])
        self.backend, self.obs_mode, self.render_mode = SOURCE_BACKEND, check_obs_mode(obs_mode), render_mode
        self.image_size = parse_image_size(image_size)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.world.control_dt)}
        self.observation_space = observation_space(self.world, self.obs_mode, self.image_size)
        self.action_space = spaces.Box(-1.0, 1.0, (self.world.action_dim,), np.float32)
        self.camera = self.world.default_camera
        self.env, self.frames = self._make_env()
        self._state: np.ndarray | None = None
        self._frame: np.ndarray | None = None
        self._success = False

    def _make_env(self):
        w = self.world
        h, wd = self.image_size
        try:
            env = w.make("rgb_array", width=wd, height=h)
        except TypeError:  # the env takes no width/height: its frames are resized
            env = w.make("rgb_array")
        if _is_mujoco_env(env):
            return env, _MujocoFrames(env, self.image_size)
        return env, None

    @property
    def source(self) -> gym.Env:
        """The wrapped Gymnasium env."""
        return self.env

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:  # draw the env's seed from our generator, so reset() after reset(seed=s) is reproducible
            seed = int(self.np_random.integers(2**31 - 1))
        seed_legacy_env(self.env, seed)
        obs, info = self.env.reset(seed=seed, options=options)
        self.env.action_space.seed(seed)
        self._state = self._read(obs)
        self._frame = None
        self._success = _info_success(info)
        return self._observe(), self._info(info, diverged=False)

    def step(self, action):
        from cosmos_sim.envs.physics_env import check_action

        if self._state is None:
            raise RuntimeError("call reset() before step()")
        a = check_action(action, self.action_space.shape)
        obs, reward, terminated, truncated, info = self.env.step(self.world.to_source_action(a))
        state = self._read(obs)
        diverged = not (np.all(np.isfinite(state)) and np.isfinite(reward))
        if diverged:
            return self._observe(), 0.0, False, True, self._info(info, diverged=True)
        self._state, self._frame = state, None
        self._success = _info_success(info)
        return self._observe(), float(reward), bool(terminated), bool(truncated), self._info(info, diverged=False)

    def _read(self, obs) -> np.ndarray:
        return self.world.obs_to_state(obs)

    def render(self):
        if self._state is None:
            raise RuntimeError("call reset() before render()")
        return self._pixels().copy()

    def _pixels(self) -> np.ndarray:
        if self._frame is None:
            if self.frames is not None:
                self._frame = self.frames.render()
            else:
                self._frame = resize_frame(self.env.render(), self.image_size, self.world.env_id)
        return self._frame

    def _observe(self) -> dict[str, np.ndarray]:
        from cosmos_sim.envs.physics_env import observation

        return observation(self.obs_mode, lambda: self._pixels().copy(), self._state.copy())

    def _info(self, info: dict, diverged: bool) -> dict:
        return {"success": self._success, "camera": self.camera, "state": self._state.copy(), "diverged": diverged,
                "has_success": any(k in info for k in SUCCESS_KEYS)}

    def close(self):
        if getattr(self, "frames", None) is not None:
            self.frames.close()
            self.frames = None
        if getattr(self, "env", None) is not None:
            self.env.close()
            self.env = None


def seed_legacy_env(env: gym.Env, seed: int) -> None:
    """Call the env's own `seed(seed)` where it keeps one (the old Gym API; Gymnasium's `Env` has none).

    Such envs may ignore `reset(seed=)` and draw their initial state from an RNG that only `seed()` sets:
    Meta-World v3's `SawyerXYZEnv.reset` ignores the seed, and its task wrapper draws the task (the object and
    goal positions) from the env's RNG before the reset. Without this, episode seed s would not start where
    reset(seed=s) does (a resumed or multi-worker collection would record other episodes than it names)."""
    legacy_seed = getattr(env.unwrapped, "seed", None)
    if callable(legacy_seed):
        legacy_seed(seed)


SUCCESS_KEYS = ("is_success", "success")


def _info_success(info: dict) -> bool:
    for key in SUCCESS_KEYS:
        if key in info:
            return bool(np.asarray(info[key]).any())
    return False


def check_source_action(world: GymEnvWorld, action: Any) -> np.ndarray:
    """An action in the source env's Box (shape, finite) -> normalized [-1, 1]."""
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ActionError(f"action must be numeric with shape {world.action_source.shape}: {e}") from None
    if a.shape != world.action_source.shape:
        raise ActionError(f"action must have shape {world.action_source.shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ActionError(f"action contains NaN or inf: {a.tolist()}")
    return world.from_source_action(a)


def check_render(world: GymEnvWorld, image_size: int | tuple[int, int]) -> None:
    """Render one frame at `image_size` (reset with seed 0): a frame size that cannot be had fails here,
    before any collection."""
    env = SourceEnv(world, obs_mode="pixels", image_size=image_size)
    try:
        env.reset(seed=0)
    finally:
        env.close()
