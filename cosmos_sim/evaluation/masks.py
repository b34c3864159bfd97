"""Object masks: pixels where a frame differs from the empty scene seen by the same camera.

Whole-frame PSNR is dominated by the plain table, so fidelity is also reported on object pixels.
The empty scene is rendered by MuJoCo with every geom of a moving body (and the goal markers)
made transparent, so the mask follows whatever camera the frame was taken with.
"""

from __future__ import annotations

import numpy as np

from cosmos_sim.camera import CameraPose
from cosmos_sim.worlds import World, get_world


def pose_key(extrinsics: np.ndarray, fovy: float) -> bytes:
    """A camera pose as a hashable key, equal for poses that render the same empty scene."""
    return np.round(np.asarray(extrinsics, np.float32), 5).tobytes() + np.float32(fovy).tobytes()


class BackgroundRenderer:
    """Renders the world without its bodies (table, walls and ramp only) at any pose."""

    def __init__(self, world: str | World, image_size: tuple[int, int]):
        import mujoco

        from cosmos_sim.envs.mujoco_sim import MujocoSim

        self.sim = MujocoSim(get_world(world), image_size)
        m = self.sim.model
        m.geom_rgba[m.geom_bodyid != 0, 3] = 0.0
        mujoco.mj_forward(m, self.sim.data)  # place the static geoms
        self._cache: dict[bytes, np.ndarray] = {}

    def render(self, extrinsics: np.ndarray, fovy: float) -> np.ndarray:
        key = pose_key(extrinsics, fovy)
        if key not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = self.sim.render(CameraPose.from_extrinsics(extrinsics, fovy))
        return self._cache[key]

    def masks(self, frames: np.ndarray, extrinsics: np.ndarray, fovy: np.ndarray, threshold: int = 24) -> np.ndarray:
        """frames uint8 [N, H, W, 3] -> bool [N, H, W]: pixels that show an object."""
        out = np.empty(frames.shape[:3], dtype=bool)
        for i in range(len(frames)):
            bg = self.render(extrinsics[i], fovy[i])
            out[i] = np.abs(frames[i].astype(np.int16) - bg).max(-1) > threshold
        return out

    def close(self) -> None:
        self.sim.close()


class MedianBackground:
    """For a Gymnasium env's world, which has no scene of ours to render empty: the background is the per-pixel
    median of the frames being masked (what stays put), and objects are the pixels that differ from it."""

    def masks(self, frames: np.ndarray, extrinsics: np.ndarray, fovy: np.ndarray, threshold: int = 24) -> np.ndarray:
        bg = np.median(frames, axis=0).astype(np.int16)
        return np.abs(frames.astype(np.int16) - bg).max(-1) > threshold

    def close(self) -> None:
        return None


def background_renderer(world: str | World, image_size: tuple[int, int]) -> BackgroundRenderer | MedianBackground:
    """The empty-scene renderer of a world (a median background for a Gymnasium env's or a dataset's world)."""
    w = get_world(world)
    return MedianBackground() if w.learned_task else BackgroundRenderer(w, image_size)
