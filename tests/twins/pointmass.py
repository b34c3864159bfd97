"""A tiny Gymnasium env for the learned-twin tests: a point mass pushed toward the origin, drawn as a dot.

`register()` adds `cosmos_test/PointMass-v0` (takes width/height), `cosmos_test/PointMassFixed-v0` (renders
48x48 whatever is asked: resized), `cosmos_test/PointMassWide-v0` (renders 32x48: cannot be resized to a
square) and the unsupported `cosmos_test/PointMassDiscrete-v0`, `cosmos_test/PointMassImage-v0` and
`cosmos_test/PointMassNoRender-v0`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

GOAL_RADIUS = 0.1


class PointMass(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None, width: int = 32, height: int = 32, gain: float = 0.1):
        self.render_mode, self.size, self.gain = render_mode, (height, width), gain
        self.observation_space = spaces.Box(-np.inf, np.inf, (4,), np.float64)
        self.action_space = spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.dt = 0.1
        self.pos = np.zeros(2)
        self.vel = np.zeros(2)

    def _obs(self):
        return np.concatenate([self.pos, self.vel])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.8, 0.8, 2)
        self.vel = np.zeros(2)
        return self._obs(), {"is_success": False}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64), -2, 2)
        self.vel = 0.8 * self.vel + self.gain * a
        self.pos = np.clip(self.pos + self.vel, -1, 1)
        dist = float(np.linalg.norm(self.pos))
        done = dist < GOAL_RADIUS
        return self._obs(), -dist, done, False, {"is_success": done}

    def render(self):
        h, w = self.size
        img = np.full((h, w, 3), 40, np.uint8)
        cy, cx = int((1 - (self.pos[1] + 1) / 2) * (h - 1)), int((self.pos[0] + 1) / 2 * (w - 1))
        img[max(cy - 2, 0):cy + 3, max(cx - 2, 0):cx + 3] = (250, 200, 40)
        img[h // 2, w // 2] = (80, 200, 80)
        return img


class FixedSize(PointMass):
    def __init__(self, render_mode=None, size=(48, 48)):
        super().__init__(render_mode, width=size[1], height=size[0])


class Wide(FixedSize):
    def __init__(self, render_mode=None):
        super().__init__(render_mode, size=(32, 48))


class DiscreteActions(PointMass):
    def __init__(self, render_mode=None, width: int = 32, height: int = 32):
        super().__init__(render_mode, width, height)
        self.action_space = spaces.Discrete(4)


class ImageObs(PointMass):
    def __init__(self, render_mode=None, width: int = 32, height: int = 32):
        super().__init__(render_mode, width, height)
        self.observation_space = spaces.Box(0, 255, (32, 32, 3), np.uint8)


class NoRender(PointMass):
    metadata = {"render_modes": ["human"], "render_fps": 10}


IDS = {"PointMass": PointMass, "PointMassFixed": FixedSize, "PointMassWide": Wide,
       "PointMassDiscrete": DiscreteActions, "PointMassImage": ImageObs, "PointMassNoRender": NoRender}


def register() -> None:
    for name, cls in IDS.items():
        env_id = f"cosmos_test/{name}-v0"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=cls, max_episode_steps=40)


def full_throttle(obs: np.ndarray) -> np.ndarray:
    """Full action toward one corner on every step: speeds that random and explore data never reach (off the data)."""
    return np.array([2.0, 2.0], np.float32)


def to_goal(obs: np.ndarray) -> np.ndarray:
    """A gentle pull toward the origin, damped: the kind of motion the random data covers."""
    return np.clip(-0.8 * obs[:2] - 1.0 * obs[2:], -1.0, 1.0).astype(np.float32)
