"""A world known from recorded data alone: a dataset with no simulator behind it (a real robot's LeRobot data).

`DatasetWorld` is what `cosmos_sim.data.lerobot.import_lerobot` makes of a dataset that is not one of ours and
fits none of our worlds. It is described from the dataset's features, as `GymEnvWorld` is from a Gymnasium env's
spaces: the state vector is `observation.state` (one entry per name where the dataset names its entries), the
actions are `action`, mapped linearly from the range the data spans ([low, high] per dimension) onto [-1, 1],
the control rate is the dataset's fps, and there is one camera per video key (V keys: V views, each given a
nominal pose at evenly spaced azimuths; the poses label the views for a world model, they are no calibration).

Its name is `lerobot:<dataset>?<spec as canonical JSON>`, so the name alone -- in a dataset's manifest or a
model's file -- rebuilds the world (`get_world` resolves the prefix). Reward, termination and success are not
code: they come from the data, and a world model learns them (`TaskHead`), as for `GymEnvWorld`. Anything that
needs a simulator (a physics backend, collection, closed-loop evaluation) raises `NoSimulatorError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import Any

import numpy as np

from cosmos_sim.camera import CameraPose, CameraRange, orbit
from cosmos_sim.errors import InputError, NoSimulatorError
from cosmos_sim.worlds.base import DATASET, DATASET_PREFIX, StateLayout, World, register_world_resolver

PREFIX = DATASET_PREFIX
SPEC_KEYS = ("state", "actions", "low", "high", "fps", "cameras", "max_steps")
NOMINAL_ELEVATION, NOMINAL_DISTANCE, NOMINAL_AZIMUTH = -45.0, 2.0, 90.0
OPEN_LOOP_HINT = "compare a world model of it open loop against its episodes: cosmos-sim compare --model RUN --data DIR"


def dataset_label(name: str) -> str:
    """A dataset's name as it appears in a world name (no '?', which starts the spec)."""
    label = re.sub(r"[^\w.\-/]+", "_", str(name)).strip("_")
    return label or "dataset"


def canonical_spec(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def world_name(dataset: str, spec: dict) -> str:
    """"lerobot:<dataset>?{...}": the dataset's label and its spec as sorted, compact JSON."""
    return f"{PREFIX}{dataset_label(dataset)}?{canonical_spec(spec)}"


def parse_world_name(name: str) -> tuple[str, dict]:
    body = name[len(PREFIX):]
    dataset, sep, spec = body.partition("?")
    try:
        parsed = json.loads(spec) if sep else None
    except json.JSONDecodeError as e:
        raise InputError(f"world name {name[:80]!r}...: its spec is not JSON ({e})") from None
    if not isinstance(parsed, dict):
        raise InputError(f"world name {name[:80]!r}... has no spec: a dataset's world is named "
                         "'lerobot:<dataset>?{...}' (see its manifest)")
    return dataset, parsed


def nominal_poses(views: int) -> tuple[CameraPose, ...]:
    """V nominal camera poses at evenly spaced azimuths: labels that tell a world model the views apart."""
    return tuple(orbit(NOMINAL_AZIMUTH + 360.0 * v / views, NOMINAL_ELEVATION, NOMINAL_DISTANCE)
                 for v in range(views))


def _check_spec(spec: dict) -> None:
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise InputError(f"a dataset world's spec needs {', '.join(missing)}")
    state, actions = spec["state"], spec["actions"]
    if not (isinstance(state, list) and state and all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
                                                      and isinstance(e[1], int) and e[1] >= 1 for e in state)):
        raise InputError(f"a dataset world's state must be a list of [name, size] entries, got {state!r}")
    if len({e[0] for e in state}) != len(state):
        raise InputError(f"a dataset world's state entries must have distinct names, got {[e[0] for e in state]}")
    if not (isinstance(actions, list) and actions and all(isinstance(a, str) for a in actions)):
        raise InputError(f"a dataset world's actions must be a list of names, got {actions!r}")
    low, high = np.asarray(spec["low"], np.float64), np.asarray(spec["high"], np.float64)
    if low.shape != (len(actions),) or high.shape != low.shape or not np.all(np.isfinite(low)) or \
            not np.all(np.isfinite(high)) or not np.all(high > low):
        raise InputError(f"a dataset world's action bounds must be {len(actions)} finite pairs low < high")
    if not (isinstance(spec["fps"], (int, float)) and spec["fps"] > 0):
        raise InputError(f"a dataset world's fps must be a positive number, got {spec['fps']!r}")
    cams = spec["cameras"]
    if not (isinstance(cams, list) and cams and all(isinstance(c, str) for c in cams)):
        raise InputError(f"a dataset world's cameras must be a list of video keys, got {cams!r}")
    if not (isinstance(spec["max_steps"], int) and spec["max_steps"] >= 1):
        raise InputError(f"a dataset world's max_steps must be an int >= 1, got {spec['max_steps']!r}")


class DatasetWorld(World, register=False):
    """A recorded dataset described as a world (see the module docstring). Use `get_world("lerobot:...")`."""

    description = "a recorded dataset with no simulator: reward, termination and success learned from its data"
    kind = DATASET

    def __init__(self, dataset: str, spec: dict):
        _check_spec(spec)
        self.dataset, self.spec = dataset_label(dataset), json.loads(canonical_spec(spec))
        self.name = world_name(self.dataset, self.spec)
        self.state_layout = StateLayout(tuple((str(n), int(k)) for n, k in self.spec["state"]))
        self.action_names = tuple(self.spec["actions"])
        self.control_dt = 1.0 / float(self.spec["fps"])
        self.max_episode_steps = int(self.spec["max_steps"])
        self.video_keys = tuple(self.spec["cameras"])
        self.cameras = nominal_poses(len(self.video_keys))
        self.default_camera = self.cameras[0]
        az, el, dist = self.default_camera.orbit_params()
        self.camera_range = CameraRange(azimuth=(az, az), elevation=(el, el), distance=(dist, dist))
        self.low = np.asarray(self.spec["low"], np.float64)
        self.high = np.asarray(self.spec["high"], np.float64)

    @property
    def short_name(self) -> str:
        """`lerobot:<dataset>`, for messages (the full name carries the spec)."""
        return f"{PREFIX}{self.dataset}"

    def no_simulator(self, what: str) -> NoSimulatorError:
        return NoSimulatorError(f"{self.short_name} is a recorded dataset with no simulator: {what} needs one; "
                                f"{OPEN_LOOP_HINT}")

    # --- the facts a World holds by code ------------------------------------------------------------
    def definition_hash(self) -> str:
        """Of the name (dataset label and spec): a model for another layout, range or camera set is refused."""
        return hashlib.sha256(self.name.encode()).hexdigest()[:16]

    def legacy_definition_hash(self) -> str:
        return self.definition_hash()

    def mjcf_path(self) -> str:
        raise self.no_simulator("a physics scene (MuJoCo or PyBullet)")

    def describe(self) -> dict:
        return {**super().describe(), "name": self.short_name, "world": self.name, "dataset": self.dataset,
                "cameras": list(self.video_keys), "action_low": self.low.tolist(), "action_high": self.high.tolist(),
                "simulator": False}

    def sample_initial_state(self, rng):
        raise self.no_simulator("an initial state drawn for a reset")

    def apply_initial_state(self, sim, init):
        raise self.no_simulator("placing an initial state")

    def apply_action(self, sim, action):
        raise self.no_simulator("acting")

    def read_state(self, sim):
        raise self.no_simulator("reading a state")

    def reward(self, state, action):
        raise NoSimulatorError(f"{self.short_name}: rewards come from the data or from a world model's learned "
                               "reward head, not from code")

    def success(self, state):
        raise NoSimulatorError(f"{self.short_name}: success comes from the data or a learned success head")

    def terminated(self, state):
        raise NoSimulatorError(f"{self.short_name}: termination comes from the data or a learned termination head")

    # --- conversions at the dataset's boundary -----------------------------------------------------
    def to_source_action(self, a: Any) -> np.ndarray:
        """[-1, 1] -> the dataset's own action units (linear), float32."""
        a = np.clip(np.asarray(a, np.float64), -1.0, 1.0)
        return (self.low + (a + 1.0) * 0.5 * (self.high - self.low)).astype(np.float32)

    def from_source_action(self, a: Any) -> np.ndarray:
        """The dataset's action units -> [-1, 1] (clipped), float32."""
        a = np.asarray(a, np.float64)
        return np.clip(2.0 * (a - self.low) / (self.high - self.low) - 1.0, -1.0, 1.0).astype(np.float32)


@lru_cache(maxsize=64)
def _dataset_world(name: str) -> DatasetWorld:
    return DatasetWorld(*parse_world_name(name))


def dataset_world(name_or_label: str, spec: dict | None = None) -> DatasetWorld:
    """The DatasetWorld of a world name "lerobot:<dataset>?{...}", or of a dataset label and its spec; made once
    per process."""
    name = name_or_label if spec is None else world_name(name_or_label, spec)
    if not name.startswith(PREFIX):
        raise InputError(f"a dataset world's name starts with {PREFIX!r}, got {name[:80]!r}")
    return _dataset_world(name)


register_world_resolver(PREFIX, dataset_world)


def require_simulator(world: str | World, what: str) -> None:
    """Raise NoSimulatorError when `world` is known from recorded data alone and `what` needs physics."""
    from cosmos_sim.worlds.base import get_world

    w = get_world(world)
    if not w.simulator:
        if isinstance(w, DatasetWorld):
            raise w.no_simulator(what)
        raise NoSimulatorError(f"{w.name} has no simulator: {what} needs one")
