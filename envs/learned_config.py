"""`LearnedEnvConfig`: everything a learned env is made from, in one frozen record that JSON keeps.

`gym.make(id, backend="world_model", **kwargs)` and `gym.make_vec(...)` build one from their keywords
(`LearnedEnvConfig.from_kwargs`: an unknown keyword is an `UnknownKeywordError` naming it), so the keywords
and the fields are the same names. The four learned env classes and their batched core take it as it is:

    config = LearnedEnvConfig(world="push", model="runs/push", obs_mode="state", ensemble="sample")
    env = WorldModelVectorEnv(config, num_envs=64)          # or make_learned(config, num_envs=64)

Every value is checked once, here, and every error names its field. What depends on the model (image
sizes, sampling options, the world it was trained on) is checked when the env loads it.

Objects: `model` may be a `WorldModel`, `world` a `World` and `reset_source` an object with `sample()`
(the Dyna loop's recorded states) instead of a name or path. The config keeps the object and `to_dict`
writes a name in its place (the world's name; `"<WorldModel object>"` for an in-memory model), so a config
on disk says how the env was made; `from_dict` of such a label needs the object back as a keyword
(`LearnedEnvConfig.from_dict(d, model=wm)`).

`uncertainty_penalty` and `halt_uncertainty` are applied by the shaping wrappers (envs/shaping.py), which
`gym.make`/`gym.make_vec` and `make_learned` put around the env; an env class given a config with either
set refuses it rather than ignore it.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from cosmos_sim.camera import CameraPose
from cosmos_sim.config import arg
from cosmos_sim.errors import CameraError, CosmosSimError, InputError, UnknownChoiceError

LEARNED_ID = "cosmos_sim/Learned-v0"  # the learned twin of any Gymnasium env (envs/learned_env.py)
OBS_MODES = ("pixels", "state", "both")
RESET_STARTS = ("episode", "any")
ENSEMBLE_MODES = ("mean", "sample", "member")
ARRAY_TYPES = ("numpy", "torch")
AUTORESET_MODES = ("next_step", "same_step", "disabled")
TWIN_SOURCES = ("physics", "env")  # a twin's "physics" is its source env
PRETRAINED = "pretrained"
NO_MODEL = ("model= is a run directory or world_model.safetensors, a WorldModel, or 'pretrained' (the shipped "
            "model, also what no model= means); make one with `cosmos-sim train --data DIR --out RUN`")
# fields a Gymnasium env's twin does not take (it renders from its source env's camera at the model's size)
WORLD_ONLY = ("image_size", "camera", "cameras", "camera_control", "strict_camera")


class UnknownKeywordError(CosmosSimError, TypeError):
    """A keyword that a learned env does not take (a TypeError, as an unexpected keyword argument is)."""


def parse_autoreset_mode(mode: Any):
    """The `AutoresetMode` named "next_step", "same_step" or "disabled" (Gymnasium's own values are accepted
    too). "disabled": nothing resets by itself; the caller resets finished envs with
    `reset(options={"reset_mask": mask})` before stepping them again (what torchrl's GymWrapper does)."""
    from gymnasium.vector import AutoresetMode

    modes: dict = {name: AutoresetMode[name.upper()] for name in AUTORESET_MODES}
    for m in modes.copy().values():
        modes[m.value] = modes[m] = m
    if not isinstance(mode, (str, AutoresetMode)) or mode not in modes:
        raise UnknownChoiceError("autoreset_mode", mode, AUTORESET_MODES)
    return modes[mode]


def _label(obj: Any) -> str:
    return f"<{type(obj).__name__} object>"


def _is_label(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("<") and value.endswith(" object>")


def _view(view: Any) -> Any:
    """One entry of `cameras` as the config keeps it: a pose, a name, or (view, image_size)."""
    if isinstance(view, Mapping):
        return CameraPose(**view)
    if isinstance(view, (list, tuple)) and len(view) == 2 and not isinstance(view[0], (int, float)):
        size = view[1]
        return (_view(view[0]), tuple(size) if isinstance(size, list) else size)
    return view


def _view_json(view: Any) -> Any:
    if isinstance(view, CameraPose):
        return view.to_dict()
    if isinstance(view, tuple):
        return [_view_json(view[0]), list(view[1]) if isinstance(view[1], tuple) else view[1]]
    return view


@dataclass(frozen=True)
class LearnedEnvConfig:
    """How a learned env is made (module docstring). Defaults are what `gym.make(id, backend="world_model")`
    gives; `world=None` is a Gymnasium env's twin (`cosmos_sim/Learned-v0`), whose world the model names."""

    world: Any = arg(None, "the cosmos_sim world (a name or World; gym ids fill it in); None: a Gymnasium "
                           "env's twin, whose world the model names")
    env: str | None = arg(None, "a twin's source env id, checked against the model's (cosmos_sim/Learned-v0)")
    model: Any = arg(None, "a run directory or world_model.safetensors, 'pretrained' (also None: the world's "
                           "shipped model), or a WorldModel")
    device: str | None = arg(None, "torch device of the model and every tensor; None: cuda when available, else cpu")
    obs_mode: str | None = arg(None, "'both' (Dict of pixels and state), 'state' or 'pixels'; None: 'both' "
                                     "('state' for a twin: its source env's observation)")
    image_size: tuple[int, int] | None = arg(None, "frame size, (height, width); None: the model's")
    camera: Any = arg(None, "one view: None (the world's), 'default', 'random' (sampled per reset) or a CameraPose")
    cameras: tuple | None = arg(None, "several views of each env: CameraPose, 'default', 'random' or "
                                      "(view, image_size); pixels are [V, H, W, 3]")
    camera_control: bool = arg(False, "append 3 action dims that move the camera (azimuth, elevation, distance)")
    strict_camera: bool = arg(False, "a camera pose outside the model's training cameras raises instead of warning")
    reset_source: Any = arg("physics", "where episodes start: 'physics' (the backend the model was trained on; a "
                                       "twin: its source env, also 'env'), a dataset directory, or an object "
                                       "with sample() (state-only envs)")
    reset_start: str = arg("episode", "with a dataset: 'episode' (first steps) or 'any' (any recorded step, "
                                      "MBPO's branched rollouts)")
    sampling: dict | None = arg(None, "the model family's sampling options for every step, e.g. {'steps': 4}")
    ensemble: str = arg("mean", "an ensemble state model steps with the members' 'mean', one member drawn "
                                "per env and step ('sample'), or env i with member i mod K throughout ('member': "
                                "each member rolls out its own world, cosmos_sim.trust's return disagreement)")
    max_episode_steps: int | None = arg(None, "episodes truncate after this many steps; None: the world's")
    time_limit: bool = arg(True, "False: no time limit of the env's own (gym.make adds its TimeLimit)")
    autoreset_mode: str = arg("next_step", "vector envs: 'next_step', 'same_step' or 'disabled'")
    array_type: str = arg("numpy", "vector envs: 'numpy', or 'torch' (tensors on the model's device)")
    uncertainty_penalty: float = arg(0.0, "MOPO: reward minus this x info['uncertainty'] "
                                          "(the UncertaintyPenalty wrapper)")
    halt_uncertainty: float | str | None = arg(None, "MOReL: truncate where info['uncertainty'] passes this "
                                                     "(the HaltOnUncertainty wrapper); 'data': the largest it was on "
                                                     "the model's held-out episodes (their 0.99 quantile, stored "
                                                     "at training); None: never")

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("world", self._checked_world(self.world))
        if self.env is not None and not isinstance(self.env, str):
            raise InputError(f"env must be a Gymnasium env id (a str), got {type(self.env).__name__}")
        put("model", self._checked_model(self.model))
        if self.device is not None:
            from cosmos_sim.device import resolve_device

            put("device", str(resolve_device(self.device)))
        if self.obs_mode is not None and self.obs_mode not in OBS_MODES:
            raise UnknownChoiceError("obs_mode", self.obs_mode, OBS_MODES)
        if self.image_size is not None:
            from cosmos_sim.envs.physics_env import parse_image_size

            put("image_size", parse_image_size(self.image_size))
        self._check_cameras(put)
        for name in ("camera_control", "strict_camera", "time_limit"):
            put(name, bool(getattr(self, name)))
        self._check_resets(put)
        if self.sampling is not None:
            if not isinstance(self.sampling, Mapping):
                raise TypeError(f"sampling must be a dict of the model family's sampling options, e.g. "
                                f"{{'steps': 4}} for diffusion, got {type(self.sampling).__name__}")
            put("sampling", {str(k): v for k, v in self.sampling.items()})
        if self.ensemble not in ENSEMBLE_MODES:
            raise UnknownChoiceError("ensemble", self.ensemble, ENSEMBLE_MODES)
        if self.cameras is not None and self.ensemble in ("sample", "member"):
            raise InputError(f"ensemble={self.ensemble!r} steps each rollout with its own member, so several views "
                             "of one env would step different states: use ensemble='mean' with cameras=[...]")
        m = self.max_episode_steps
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise InputError(f"max_episode_steps must be a positive int, got {m!r}")
        put("autoreset_mode", parse_autoreset_mode(self.autoreset_mode).name.lower())
        if self.array_type not in ARRAY_TYPES:
            raise UnknownChoiceError("array_type", self.array_type, ARRAY_TYPES)
        self._check_shaping(put)

    # --- the checks, field by field -----------------------------------------------------------------------
    @staticmethod
    def _checked_world(world: Any) -> Any:
        from cosmos_sim.worlds import World, get_world

        if world is None or isinstance(world, World):
            return world
        if not isinstance(world, str):
            raise InputError(f"world must be a world's name or a World, got {type(world).__name__}")
        return get_world(world).name  # an unknown world: UnknownChoiceError("world", ...)

    @staticmethod
    def _checked_model(model: Any) -> Any:
        if model is None or isinstance(model, str):
            if _is_label(model):
                raise InputError(f"model {model} stands for an object that JSON does not keep: pass the WorldModel "
                                 "itself (LearnedEnvConfig.from_dict(d, model=wm)) or its path")
            return model
        if isinstance(model, os.PathLike):
            return os.fspath(model)
        from cosmos_sim.world_model import WorldModel

        if not isinstance(model, WorldModel):
            raise TypeError(f"model must be a path or a WorldModel, got {type(model).__name__}. {NO_MODEL}")
        return model

    def _check_cameras(self, put) -> None:
        from cosmos_sim.envs.physics_env import CameraSpec, parse_cameras

        if isinstance(self.camera, Mapping):
            put("camera", CameraPose(**self.camera))
        CameraSpec(self.camera)  # None, "default", "random" or a pose
        if self.cameras is None:
            return
        if self.camera is not None:
            raise CameraError("give camera= (one view) or cameras= (several), not both")
        if isinstance(self.cameras, (str, CameraPose)) or not hasattr(self.cameras, "__len__"):
            parse_cameras(self.cameras, 1)  # raises: cameras= is a list
        views = tuple(_view(v) for v in self.cameras)
        sized = [v[1] for v in views if isinstance(v, tuple)]
        parse_cameras(views, self.image_size or (sized[0] if sized else 1))  # the model's size is checked later
        put("cameras", views)

    def _check_resets(self, put) -> None:
        source = self.reset_source
        if isinstance(source, os.PathLike):
            put("reset_source", source := os.fspath(source))
        if not isinstance(source, str) and not hasattr(source, "sample"):
            raise InputError(f"reset_source must be 'physics', a dataset directory or an object with sample(), "
                             f"got {type(source).__name__}")
        if _is_label(source):
            raise InputError(f"reset_source {source} stands for an object that JSON does not keep: pass it "
                             "(LearnedEnvConfig.from_dict(d, reset_source=obj))")
        if self.reset_start not in RESET_STARTS:
            raise UnknownChoiceError("reset_start", self.reset_start, RESET_STARTS)
        if isinstance(source, str) and source in TWIN_SOURCES and self.reset_start != "episode":
            raise InputError(f"reset_start={self.reset_start!r} needs reset_source=DATASET (a dataset's recorded "
                             "steps)")

    def _check_shaping(self, put) -> None:
        p = self.uncertainty_penalty
        try:
            ok = not isinstance(p, bool) and math.isfinite(float(p)) and float(p) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"uncertainty_penalty must be a finite number >= 0, got {p!r}")
        put("uncertainty_penalty", float(p))
        h = self.halt_uncertainty
        if h is not None and h != "data":
            try:
                ok = not isinstance(h, bool) and float(h) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"halt_uncertainty must be > 0, 'data' (the held-out disagreement stored with the "
                                 f"model) or None (never halt), got {h!r}")
            put("halt_uncertainty", float(h))

    # --- who may use what ---------------------------------------------------------------------------------
    @property
    def shaped(self) -> bool:
        """Whether the shaping wrappers have work to do (a zero penalty changes nothing: no wrapper)."""
        return bool(self.uncertainty_penalty) or self.halt_uncertainty is not None

    def check_world_env(self) -> None:
        """What a cosmos_sim world's learned env (WorldModelEnv, WorldModelVectorEnv) cannot take."""
        if self.world is None:
            raise InputError("world must name a cosmos_sim world (None is a Gymnasium env's twin: "
                             f"{LEARNED_ID})")
        if self.env is not None:
            raise UnknownKeywordError(f"env={self.env!r} applies to {LEARNED_ID} only (it checks a twin's "
                                      "source env); a cosmos_sim world's learned env takes world=")

    def check_twin(self) -> None:
        """What a Gymnasium env's twin (LearnedEnv, LearnedVectorEnv) cannot take."""
        if self.world is not None:
            raise UnknownKeywordError(f"world applies to cosmos_sim worlds; {LEARNED_ID} reads its env from the "
                                      "model (env= checks it)")
        defaults = {f.name: f.default for f in fields(self)}
        for name in WORLD_ONLY:
            if getattr(self, name) != defaults[name]:
                raise UnknownKeywordError(f"{name} does not apply to {LEARNED_ID}: a twin renders its source env's "
                                          "camera at the model's image size")
        if self.array_type != "numpy":
            raise UnknownKeywordError(f"array_type={self.array_type!r} does not apply to {LEARNED_ID}: its "
                                      "observations are in the source env's (numpy) spaces")

    def check_unshaped(self, cls: type) -> None:
        """An env class given a config that asks for shaping refuses it: only the wrappers shape."""
        for name, wrapper in (("uncertainty_penalty", "UncertaintyPenalty"), ("halt_uncertainty", "HaltOnUncertainty")):
            value = getattr(self, name)
            if value is not None and value != 0:
                raise InputError(f"{name}={value} is applied by the {wrapper} wrapper, not by {cls.__name__}: "
                                 "make the env with cosmos_sim.envs.registration.make_learned(config) (or gym.make), "
                                 "or wrap it (cosmos_sim.envs.shaping)")

    # --- keywords and JSON --------------------------------------------------------------------------------
    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], where: str = "a learned env") -> LearnedEnvConfig:
        """The config of `gym.make(..., **kwargs)`; a keyword that is no field is an UnknownKeywordError."""
        names = [f.name for f in fields(cls)]
        for key in kwargs:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise UnknownKeywordError(f"{where} takes no keyword {key!r}{hint}; its fields: {', '.join(names)}")
        return cls(**kwargs)

    def to_dict(self) -> dict:
        """JSON-able: a World as its name, a pose as a dict, an object (model, reset source) as a label."""
        from cosmos_sim.worlds import World

        d = {f.name: getattr(self, f.name) for f in fields(self)}  # not asdict: it would deep-copy a model
        d["sampling"] = None if self.sampling is None else dict(self.sampling)
        if isinstance(self.world, World):
            d["world"] = self.world.name
        for name in ("model", "reset_source"):
            if not (d[name] is None or isinstance(d[name], str)):
                d[name] = _label(d[name])
        if isinstance(self.camera, CameraPose):
            d["camera"] = self.camera.to_dict()
        if self.cameras is not None:
            d["cameras"] = [_view_json(v) for v in self.cameras]
        if self.image_size is not None:
            d["image_size"] = list(self.image_size)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], **objects: Any) -> LearnedEnvConfig:
        """The config `to_dict` wrote; `objects` (model=, reset_source=, world=) put back what JSON holds as a
        label. Keys that are no field are an UnknownKeywordError (a config of another version says so)."""
        return cls.from_kwargs(dict(d) | objects, where="a LearnedEnvConfig")


__all__ = ["LearnedEnvConfig", "UnknownKeywordError", "parse_autoreset_mode", "LEARNED_ID"]
