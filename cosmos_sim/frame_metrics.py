"""How a frame is scored, below training and evaluation alike (the tokenizer's held-out check and the reports
use the same code): image metrics and object masks.

Image metrics in batched torch, computed in-house (nothing downloaded). Images are `[..., C, H, W]` tensors in
[0, data_range]. Every function returns one value per image (the leading dims), so callers average over
whatever they like.

Object masks: pixels where a frame differs from the empty scene seen by the same camera. Whole-frame PSNR is
dominated by the plain table, so fidelity is also reported on object pixels. The empty scene is rendered by
MuJoCo with every geom of a moving body (and the goal markers) made transparent, so the mask follows whatever
camera the frame was taken with.

`cosmos_sim.evaluation.metrics` and `cosmos_sim.evaluation.masks` are the same names, for evaluation code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cosmos_sim.camera import CameraPose
from cosmos_sim.errors import InputError
from cosmos_sim.worlds import World, get_world


# --- image metrics ------------------------------------------------------------------------------------
def _flat(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    if x.dim() < 3:
        raise InputError(f"images must be [..., C, H, W], got shape {tuple(x.shape)}")
    lead = tuple(x.shape[:-3])
    return x.reshape(-1, *x.shape[-3:]).double(), lead


def _same_shape(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise InputError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")


def mse(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per image; with `mask` [..., H, W] (bool), over masked pixels only."""
    _same_shape(x, y)
    d = (x.double() - y.double()) ** 2
    if mask is None:
        return d.mean(dim=(-3, -2, -1))
    m = mask.unsqueeze(-3).expand_as(d).double()
    return (d * m).sum(dim=(-3, -2, -1)) / m.sum(dim=(-3, -2, -1)).clamp_min(1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, mask: torch.Tensor | None = None,
         eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (mask: over masked pixels only)."""
    return 10.0 * torch.log10(data_range**2 / (mse(x, y, mask) + eps))


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64) -> torch.Tensor:
    r = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004): Gaussian 11x11 window, sigma 1.5, valid region,
    averaged over pixels and channels. Images smaller than the window use a window of their size."""
    _same_shape(x, y)
    a, lead = _flat(x)
    b, _ = _flat(y)
    C, H, W = a.shape[-3:]
    size = min(window, H, W)
    g = gaussian_window(size, sigma).to(a.device)
    kh = g.view(1, 1, size, 1).repeat(C, 1, 1, 1)
    kw = g.view(1, 1, 1, size).repeat(C, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kh, groups=C), kw, groups=C)

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return (num / den).mean(dim=(-3, -2, -1)).reshape(lead)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] frames -> float [..., 3, H, W] in [0, 1]."""
    return images.movedim(-1, -3).float() / 255.0


# --- object masks -------------------------------------------------------------------------------------
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
