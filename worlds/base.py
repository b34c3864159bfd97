"""The World: a task declared once, backend-free, and the registry of worlds.

A world owns its facts: state-vector layout, action meaning and scale, initial-state distribution,
reward, success, camera range, and its scripted expert. Backends only implement the small `Sim`
protocol below, so a reward or a state error means the same thing in MuJoCo, PyBullet and the learned world.

`reward`, `success` and `terminated` take batched state arrays `[..., S]` and use only slicing and
arithmetic, so they run unchanged on numpy arrays and on torch tensors (the learned world).

A world is one module and one MJCF file (`assets/<asset>` beside the module). Defining a subclass with
a `name` registers it in `WORLDS`; numbers that the scene fixes (sizes, masses, joint limits) are read
from the MJCF (`self.mjcf`), never copied into code.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from cosmos_sim.camera import CameraPose, CameraRange
from cosmos_sim.errors import InputError, MissingPathError, UnknownChoiceError
from cosmos_sim.worlds.mjcf import Element, Mjcf, load_mjcf

SCENE, GYM_ENV, DATASET = "scene", "gym_env", "dataset"  # World.kind
GYM_ENV_PREFIX, DATASET_PREFIX = "env:", "lerobot:"  # world names of a Gymnasium env's twin, of a recorded dataset
KIND_PREFIXES = {GYM_ENV_PREFIX: GYM_ENV, DATASET_PREFIX: DATASET}
# A velocity coordinate (m/s of a free body or slide joint, rad/s of a hinge) beyond this means the solver
# blew up. Both backends apply it: PyBullet clamps each velocity coordinate at 100 instead of producing
# NaN, so its blow-ups read as ~100; MuJoCo resets its data and warns (caught separately). Nothing in
# our worlds moves near this fast (a fall from 10 m reaches 14 m/s).
MAX_SPEED = 90.0


class Sim(Protocol):
    """What a world needs from a physics backend. Names refer to MJCF bodies, joints and sites."""

    def body_position(self, body: str) -> np.ndarray: ...  # (3,)
    def body_quaternion(self, body: str) -> np.ndarray: ...  # (4,) w, x, y, z
    def body_linear_velocity(self, body: str) -> np.ndarray: ...  # (3,)
    def body_angular_velocity(self, body: str) -> np.ndarray: ...  # (3,) world frame, free bodies
    def set_body_pose(self, body: str, pos, quat=(1.0, 0.0, 0.0, 0.0)) -> None: ...  # free/mocap bodies
    def set_body_velocity(self, body: str, linear, angular=(0.0, 0.0, 0.0)) -> None: ...
    def joint_position(self, joint: str) -> float: ...
    def joint_velocity(self, joint: str) -> float: ...
    def set_joint(self, joint: str, position: float, velocity: float = 0.0) -> None: ...
    def set_joint_velocity_target(self, joint: str, velocity: float) -> None: ...
    def set_body_force(self, body: str, force) -> None: ...  # held for the whole control step
    def site_position(self, site: str) -> np.ndarray: ...  # (3,)


@dataclass(frozen=True)
class StateLayout:
    """Named, contiguous entries of the state vector: ("block_pos", 2), ("goal", 2), ..."""

    entries: tuple[tuple[str, int], ...]

    @property
    def size(self) -> int:
        return sum(n for _, n in self.entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.entries)

    def slice(self, name: str) -> slice:
        start = 0
        for entry, n in self.entries:
            if entry == name:
                return slice(start, start + n)
            start += n
        raise KeyError(f"no state entry {name!r}; entries: {', '.join(self.names)}")

    def get(self, state, name: str):
        return state[..., self.slice(name)]

    def labels(self) -> list[str]:
        """One label per scalar, e.g. block_pos[0], block_pos[1]."""
        return [f"{name}[{i}]" if n > 1 else name for name, n in self.entries for i in range(n)]

    def pack(self, values: dict[str, Any]) -> np.ndarray:
        parts = []
        for name, n in self.entries:
            v = np.asarray(values[name], dtype=np.float32).reshape(-1)
            if v.shape != (n,):
                raise InputError(f"state entry {name!r} expects {n} numbers, got {v.shape[0]}")
            parts.append(v)
        return np.concatenate(parts)


def norm(x):
    """Euclidean norm over the last axis, for numpy arrays and torch tensors alike."""
    return ((x * x).sum(-1)) ** 0.5


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class World:
    """Base class: subclasses fill in the class attributes and the task methods below.

    Subclassing with a `name` registers the world (see `WORLDS`); classes without their own `name` are
    abstract helpers and stay out of the registry, as do throwaway worlds declared with
    `class Probe(World, register=False)` (used directly, never by name).
    """

    name: ClassVar[str]
    asset: ClassVar[str]  # MJCF file in assets/ next to the module that defines the world
    action_names: ClassVar[tuple[str, ...]]
    state_layout: ClassVar[StateLayout]
    control_dt: ClassVar[float]
    max_episode_steps: ClassVar[int]
    default_camera: ClassVar[CameraPose]
    camera_range: ClassVar[CameraRange]
    description: ClassVar[str] = ""
    # State entries holding object positions: "did anything move?" in dataset reports.
    object_entries: ClassVar[tuple[str, ...]] = ()
    # (actuator position entry, object position entry) for ContactExplorer to push through; None: smooth
    # random actions (the action already acts on the object, or there is no object).
    contact_targets: ClassVar[tuple[str, str] | None] = None
    # What the world is: SCENE, an MJCF scene of ours (MuJoCo and PyBullet backends; reward, success and the expert
    # as code); GYM_ENV, a Gymnasium env's twin (envs/source_env.py); DATASET, recorded data alone, with no
    # simulator (worlds/dataset.py). `world_kind` reads it from a world's name too, without building the world.
    kind: ClassVar[str] = "scene"
    # Falling objects (state entries of their positions) whose drops, bounces and rests the physics-alignment
    # section of a comparison measures; none: the section does not apply.
    falling_objects: ClassVar[tuple[str, ...]] = ()

    # The scripted expert (`expert` below) and how `ScriptedPolicy` makes it sloppy as skill falls to 0:
    expert_miss: ClassVar[tuple[float, float] | None] = None  # length range (m) of a mistaken episode's aim error
    expert_noise: ClassVar[float] = 0.5  # Gaussian action noise std at skill 0
    expert_random_prob: ClassVar[float] = 0.5  # probability of a uniformly random action per step at skill 0
    expert_min_success: ClassVar[float | None] = None  # the skill-1 success rate benchmarks/policy_ladder.py expects
    # Policies off the ranking ladder (specs, policies/modifiers.py): the full expert slowed, acting on a share of
    # steps, noisy, and slowed and sparse at once -- small, slow, rare and jittery motions the ladder does not
    # exercise. Values per world, so that their MuJoCo success rates spread over the range (how much slowing a
    # task tolerates is the world's own: Drop's ball rolls home on a few percent of the force).
    off_ladder: ClassVar[tuple[str, ...]] = (
        "scripted:1@speed=0.25", "scripted:1@speed=0.5", "scripted:1@act=0.25", "scripted:1@act=0.5",
        "scripted:1@noise=1", "scripted:1@noise=0.5", "scripted:1@speed=0.5@act=0.5")

    @property
    def learned_task(self) -> bool:
        """Reward, termination and success come from data and a world model's learned heads, not from code."""
        return self.kind != SCENE

    @property
    def simulator(self) -> bool:
        """False for a world known from recorded data alone: whatever needs physics refuses it."""
        return self.kind != DATASET

    def __init_subclass__(cls, register: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        if register and "name" in cls.__dict__:
            register_world(cls)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    @property
    def state_dim(self) -> int:
        return self.state_layout.size

    @classmethod
    def has_expert(cls) -> bool:
        return cls.expert is not World.expert

    # --- the scene ---------------------------------------------------------------------------
    def mjcf_path(self) -> str:
        module = sys.modules[type(self).__module__]
        if getattr(module, "__file__", None) is None:
            raise MissingPathError(f"world {self.name}: its module {module.__name__!r} has no file, so its MJCF "
                                    f"(assets/{self.asset} beside the module) cannot be found; override mjcf_path")
        return str(Path(module.__file__).parent / "assets" / self.asset)

    def mjcf_text(self) -> str:
        return Path(self.mjcf_path()).read_text()

    @property
    def mjcf(self) -> Mjcf:
        """The world's MJCF, parsed once per process."""
        return load_mjcf(self.mjcf_path())

    def geom(self, name: str) -> Element:
        return self.mjcf.geom(name)

    def definition_hash(self) -> str:
        """Changes whenever the scene or the task code (expert included) changes, and not when a comment or a
        docstring does: of the MJCF without its comments and the world module's syntax tree without its
        docstrings. Stored with datasets and models; `accepts_hash` also takes files from before this form."""
        import ast
        import inspect

        scene = re.sub(r"<!--.*?-->", "", self.mjcf_text(), flags=re.DOTALL)
        h = hashlib.sha256(" ".join(scene.split()).encode())
        tree = ast.parse(inspect.getsource(inspect.getmodule(type(self))))  # class and module constants
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        h.update(ast.dump(tree, include_attributes=False).encode())
        return h.hexdigest()[:16]

    def legacy_definition_hash(self) -> str:
        """The hash datasets and models recorded before `definition_hash` ignored comments (raw text)."""
        import inspect

        h = hashlib.sha256(self.mjcf_text().encode())
        h.update(inspect.getsource(inspect.getmodule(type(self))).encode())
        return h.hexdigest()[:16]

    def accepts_hash(self, recorded: str | None) -> bool:
        """Whether a dataset's or model's recorded definition hash is this world's (either form)."""
        return recorded is not None and recorded in (self.definition_hash(), self.legacy_definition_hash())

    # --- the task, declared once -------------------------------------------------------------
    def sample_initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw the episode's initial configuration (positions, velocities, goal) from `rng`."""
        raise NotImplementedError

    def apply_initial_state(self, sim: Sim, init: dict[str, np.ndarray]) -> None:
        """Place the sampled configuration in a backend."""
        raise NotImplementedError

    def apply_action(self, sim: Sim, action: np.ndarray) -> None:
        """Map a normalized action in [-1, 1]^A onto actuator targets or forces."""
        raise NotImplementedError

    def read_state(self, sim: Sim) -> np.ndarray:
        """The state vector (float32, layout `state_layout`)."""
        raise NotImplementedError

    def reward(self, state, action):
        """Reward for arriving in `state` [..., S] after `action` [..., A]."""
        raise NotImplementedError

    def success(self, state):
        """Boolean [...]: is the task solved in `state`?"""
        raise NotImplementedError

    def terminated(self, state):
        """Episodes end when the task is solved."""
        return self.success(state)

    def planar_distance(self, state, a: str, b: str):
        """Distance in the table plane between two state entries' (x, y), e.g. a fingertip and its target."""
        L = self.state_layout
        return norm(L.get(state, a)[..., :2] - L.get(state, b)[..., :2])

    def expert(self, state: np.ndarray, aim: np.ndarray) -> np.ndarray:
        """The scripted expert: float64 states `[N, S]` -> actions `[N, A]` in [-1, 1].

        `aim` `[N, 2]` (metres) is the episode's subgoal error: zero on a good episode; on a mistaken one
        its length lies in `expert_miss`, and the expert should aim that far off so the episode fails.
        """
        raise NotImplementedError(f"world {self.name} has no scripted expert")

    def describe(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "action": list(self.action_names),
            "state": [[n, k] for n, k in self.state_layout.entries],
            "control_hz": round(1.0 / self.control_dt, 3),
            "max_episode_steps": self.max_episode_steps,
        }


# --- the registry ----------------------------------------------------------------------------------
WORLDS: dict[str, type[World]] = {}  # name -> class, in registration (import) order
_watchers: list[tuple[Callable[[type[World]], None], Callable[[type[World]], None] | None]] = []
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def register_world(cls: type[World]) -> type[World]:
    """Add a world class to `WORLDS` (done by subclassing World with a `name`).

    Names are unique case-insensitively (the CLI takes "push"). Re-defining the same class (same module and
    qualified name, e.g. a module reload) replaces it; another class under a taken name is an error.
    """
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(f"world class {cls.__qualname__}: name must be an identifier such as 'Push' "
                         f"(it becomes the gym id cosmos_sim/<name>-v0), got {name!r}")
    for key, other in WORLDS.items():
        if key.lower() == name.lower() and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
            raise InputError(f"world name {name!r} is taken by {other.__module__}.{other.__qualname__}; "
                             f"{cls.__module__}.{cls.__qualname__} needs another name")
    WORLDS[name] = cls  # a re-definition keeps its place
    for on_add, _ in _watchers:
        on_add(cls)
    return cls


def unregister_world(name: str) -> None:
    """Remove a world (case-insensitive name) from the registry, and its gym id with it."""
    cls = type(get_world(name))
    del WORLDS[cls.name]
    for _, on_remove in _watchers:
        if on_remove is not None:
            on_remove(cls)


def watch_worlds(on_add: Callable[[type[World]], None], on_remove: Callable[[type[World]], None] | None = None) -> None:
    """Call `on_add` for every world registered now and later, `on_remove` when one is unregistered.

    How the gym ids follow the registry: the envs layer watches it, so worlds stay free of gym and backends.
    """
    _watchers.append((on_add, on_remove))
    for cls in list(WORLDS.values()):
        on_add(cls)


def world_names() -> list[str]:
    return list(WORLDS)


def world_list(values: Sequence[str] | None) -> list[World]:
    """Worlds from `--worlds push reach` or `--worlds push,reach` (case-insensitive, no repeats); all when empty."""
    names = [n.strip() for v in (values or []) for n in v.split(",") if n.strip()]
    worlds: list[World] = []
    for w in (get_world(n) for n in (names or WORLDS)):  # UnknownChoiceError names the valid choices
        if w.name not in [x.name for x in worlds]:
            worlds.append(w)
    return worlds


# prefix -> function from a full name to a World: worlds that are not classes in the registry, such as the
# learned twin of a Gymnasium env ("env:Reacher-v5", cosmos_sim.envs.source_env), which needs gym to build.
_RESOLVERS: dict[str, Callable[[str], World]] = {}


def world_kind(world: str | World) -> str:
    """SCENE, GYM_ENV or DATASET (see `World.kind`), from a world or from its name alone: the names of twins and
    datasets carry their kind's prefix, so a manifest's or model's world name is read without building it."""
    if isinstance(world, World):
        return world.kind
    for prefix, kind in KIND_PREFIXES.items():
        if isinstance(world, str) and world.startswith(prefix):
            return kind
    return SCENE


def register_world_resolver(prefix: str, resolve: Callable[[str], World]) -> None:
    """Names starting with `prefix` are made into worlds by `resolve` (see `_RESOLVERS`)."""
    _RESOLVERS[prefix] = resolve


def get_world(name: str | World) -> World:
    """A world instance from its name, case-insensitive ("push" or "Push"), or a resolver's name ("env:...")."""
    if isinstance(name, World):
        return name
    if isinstance(name, str):
        for prefix, resolve in _RESOLVERS.items():
            if name.startswith(prefix):
                return resolve(name)
    for key, cls in WORLDS.items():
        if isinstance(name, str) and key.lower() == name.lower():
            return cls()
    raise UnknownChoiceError("world", name, [k.lower() for k in WORLDS])
