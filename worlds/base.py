"""The World: a task declared once, backend-free.

A world owns its facts: state-vector layout, action meaning and scale, initial-state distribution,
reward, success and camera range. Backends only implement the small `Sim` protocol below, so a
reward or a state error means the same thing in MuJoCo, PyBullet and the learned world.

`reward`, `success` and `terminated` take batched state arrays `[..., S]` and use only slicing and
arithmetic, so they run unchanged on numpy arrays and on torch tensors (the learned world).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar, Protocol

import numpy as np

from cosmos_sim.camera import CameraPose, CameraRange


class Sim(Protocol):
    """What a world needs from a physics backend. Names refer to MJCF bodies, joints and sites."""

    def body_position(self, body: str) -> np.ndarray: ...  # (3,)
    def body_quaternion(self, body: str) -> np.ndarray: ...  # (4,) w, x, y, z
    def body_linear_velocity(self, body: str) -> np.ndarray: ...  # (3,)
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
                raise ValueError(f"state entry {name!r} expects {n} numbers, got {v.shape[0]}")
            parts.append(v)
        return np.concatenate(parts)


def norm(x):
    """Euclidean norm over the last axis, for numpy arrays and torch tensors alike."""
    return ((x * x).sum(-1)) ** 0.5


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class World:
    """Base class: subclasses fill in the class attributes and the five methods below."""

    name: ClassVar[str]
    asset: ClassVar[str]  # MJCF file in worlds/assets/
    action_names: ClassVar[tuple[str, ...]]
    state_layout: ClassVar[StateLayout]
    control_dt: ClassVar[float]
    max_episode_steps: ClassVar[int]
    default_camera: ClassVar[CameraPose]
    camera_range: ClassVar[CameraRange]
    description: ClassVar[str] = ""
    # State entries holding object positions: "did anything move?" in dataset reports.
    object_entries: ClassVar[tuple[str, ...]] = ()

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    @property
    def state_dim(self) -> int:
        return self.state_layout.size

    def mjcf_path(self) -> str:
        return str(resources.files("cosmos_sim.worlds") / "assets" / self.asset)

    def mjcf_text(self) -> str:
        return (resources.files("cosmos_sim.worlds") / "assets" / self.asset).read_text()

    def definition_hash(self) -> str:
        """Changes whenever the scene or the task code changes; stored with datasets and models."""
        import inspect

        h = hashlib.sha256(self.mjcf_text().encode())
        h.update(inspect.getsource(inspect.getmodule(type(self))).encode())  # class and module constants
        return h.hexdigest()[:16]

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

    def describe(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "action": list(self.action_names),
            "state": [[n, k] for n, k in self.state_layout.entries],
            "control_hz": round(1.0 / self.control_dt, 3),
            "max_episode_steps": self.max_episode_steps,
        }
