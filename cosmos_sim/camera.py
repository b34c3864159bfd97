"""Camera poses shared by every backend: one pose, one projection, the same pixels everywhere.

Conventions: world z is up. `orbit` follows MuJoCo's free camera (degrees; elevation < 0 looks
down). `extrinsics` is world->camera in the OpenCV frame (x right, y down, z forward) and
`intrinsics` puts pixel (i, j)'s centre at (j + 0.5, i + 0.5), so a world point lands in pixel
(floor(v), floor(u)) of an image whose row 0 is the top.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from cosmos_sim.errors import CameraError

__all__ = ["CameraCoverage", "CameraPose", "CameraRange", "orbit", "look_at_rotation"]


def _vec3(x, name: str) -> tuple[float, float, float]:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise CameraError(f"camera {name} must be 3 finite numbers, got {x!r}")
    return (float(a[0]), float(a[1]), float(a[2]))


def look_at_rotation(eye, target, up) -> np.ndarray:
    """Rows are the camera's right, down and forward axes in world coordinates (OpenCV)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    fwd = target - eye
    n = np.linalg.norm(fwd)
    if n < 1e-9:
        raise CameraError("camera eye and target coincide; the view direction is undefined")
    fwd = fwd / n
    right = np.cross(fwd, up)
    rn = np.linalg.norm(right)
    if rn < 1e-9:
        raise CameraError("camera up vector is parallel to the view direction")
    right = right / rn
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd])


@dataclass(frozen=True)
class CameraPose:
    """A pinhole camera: where it is, what it looks at, which way is up, vertical field of view."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fovy: float = 45.0

    def __post_init__(self):
        object.__setattr__(self, "eye", _vec3(self.eye, "eye"))
        object.__setattr__(self, "target", _vec3(self.target, "target"))
        object.__setattr__(self, "up", _vec3(self.up, "up"))
        try:
            fovy = float(self.fovy)
        except (TypeError, ValueError):
            raise CameraError(f"camera fovy must be a number of degrees in (0, 180), got {self.fovy!r}") from None
        if not (0.0 < fovy < 180.0):  # NaN fails this too
            raise CameraError(f"camera fovy must lie in (0, 180) degrees, got {self.fovy!r}")
        object.__setattr__(self, "fovy", fovy)
        look_at_rotation(self.eye, self.target, self.up)  # validates eye != target, up not parallel

    # --- geometry -------------------------------------------------------------------------
    @functools.cached_property
    def rotation(self) -> np.ndarray:
        """3x3 world->camera rotation (rows: right, down, forward); computed once, the pose is frozen."""
        R = look_at_rotation(self.eye, self.target, self.up)
        R.setflags(write=False)
        return R

    def extrinsics(self) -> np.ndarray:
        """4x4 world->camera transform, OpenCV convention."""
        R = self.rotation
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = -R @ np.asarray(self.eye)
        return T

    def intrinsics(self, height: int, width: int) -> np.ndarray:
        """3x3 pinhole matrix for an image of the given size (square pixels, centred)."""
        f = 0.5 * height / math.tan(math.radians(self.fovy) / 2.0)
        return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])

    def project(self, points, height: int, width: int) -> np.ndarray:
        """World points [..., 3] -> continuous pixel coordinates [..., 2] as (u=column, v=row)."""
        p = np.asarray(points, dtype=np.float64)
        cam = (p - np.asarray(self.eye)) @ self.rotation.T
        K = self.intrinsics(height, width)
        z = cam[..., 2:3]
        uv = cam[..., :2] / z
        return np.stack([uv[..., 0] * K[0, 0] + K[0, 2], uv[..., 1] * K[1, 1] + K[1, 2]], axis=-1)

    def plucker_rays(self, height: int, width: int) -> np.ndarray:
        """(6, h, w) float32: per-pixel ray direction d and moment eye x d (Plücker coordinates)."""
        K = self.intrinsics(height, width)
        j, i = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        x = (j - K[0, 2]) / K[0, 0]
        y = (i - K[1, 2]) / K[1, 1]
        d_cam = np.stack([x, y, np.ones_like(x)], axis=-1)
        d = d_cam @ self.rotation  # camera -> world (R^T applied on the right)
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        m = np.cross(np.asarray(self.eye), d)
        return np.concatenate([d, m], axis=-1).transpose(2, 0, 1).astype(np.float32)

    # --- serialization ----------------------------------------------------------------------
    def to_array(self) -> np.ndarray:
        """10 float32 numbers: eye, target, up, fovy. The on-disk and in-info form."""
        return np.array([*self.eye, *self.target, *self.up, self.fovy], dtype=np.float32)

    @classmethod
    def from_array(cls, a) -> CameraPose:
        a = np.asarray(a, dtype=np.float64).reshape(-1)
        if a.shape != (10,):
            raise CameraError(f"a camera array has 10 numbers (eye, target, up, fovy), got shape {a.shape}")
        return cls(eye=a[0:3], target=a[3:6], up=a[6:9], fovy=a[9])

    @classmethod
    def from_extrinsics(cls, extrinsics, fovy: float) -> CameraPose:
        """Invert `extrinsics()`; the target lands one metre along the view axis (what datasets store)."""
        T = np.asarray(extrinsics, dtype=np.float64)
        R, t = T[:3, :3], T[:3, 3]
        eye = -R.T @ t
        return cls(eye=eye, target=eye + R[2], up=-R[1], fovy=float(fovy))

    def to_dict(self) -> dict:
        return {"eye": list(self.eye), "target": list(self.target), "up": list(self.up), "fovy": self.fovy}

    # --- orbit parameters (for camera control) -----------------------------------------------
    def orbit_params(self) -> tuple[float, float, float]:
        """(azimuth, elevation, distance) in degrees/metres, MuJoCo's convention."""
        fwd = np.asarray(self.target) - np.asarray(self.eye)
        dist = float(np.linalg.norm(fwd))
        fwd /= dist
        el = math.degrees(math.asin(max(-1.0, min(1.0, fwd[2]))))
        az = math.degrees(math.atan2(fwd[1], fwd[0]))
        return az, el, dist


def orbit(azimuth: float, elevation: float, distance: float, target=(0.0, 0.0, 0.0),
          fovy: float = 45.0) -> CameraPose:
    """A camera on a sphere around `target`, as MuJoCo's free camera (elevation < 0 looks down)."""
    if not (math.isfinite(azimuth) and math.isfinite(elevation)):
        raise CameraError(f"orbit azimuth and elevation must be finite, got {azimuth!r}, {elevation!r}")
    if not distance > 0 or not math.isfinite(distance):
        raise CameraError(f"orbit distance must be a positive number, got {distance!r}")
    if abs(elevation) >= 90.0:
        raise CameraError(f"orbit elevation must lie in (-90, 90) degrees, got {elevation!r}")
    az, el = math.radians(azimuth), math.radians(elevation)
    fwd = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    t = np.asarray(_vec3(target, "target"))
    return CameraPose(eye=t - distance * fwd, target=t, up=(0.0, 0.0, 1.0), fovy=fovy)


@dataclass(frozen=True)
class CameraRange:
    """The poses a world allows for randomization and camera control (orbit parameters)."""

    azimuth: tuple[float, float]
    elevation: tuple[float, float]
    distance: tuple[float, float]
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fovy: float = 45.0
    # Largest change per step under camera control, for normalized actions in [-1, 1].
    max_step: tuple[float, float, float] = field(default=(5.0, 3.0, 0.03))

    def sample(self, rng: np.random.Generator) -> CameraPose:
        return orbit(rng.uniform(*self.azimuth), rng.uniform(*self.elevation), rng.uniform(*self.distance),
                     self.target, self.fovy)

    def clamp(self, azimuth: float, elevation: float, distance: float) -> tuple[float, float, float]:
        return (float(np.clip(azimuth, *self.azimuth)), float(np.clip(elevation, *self.elevation)),
                float(np.clip(distance, *self.distance)))

    def orbit_params(self, pose: CameraPose) -> np.ndarray:
        """The pose's (azimuth, elevation, distance), the azimuth taken as the turn nearest this range."""
        az, el, dist = pose.orbit_params()
        # orbit_params gives azimuth in (-180, 180]; take the turn nearest the range (e.g. 190, not -170).
        mid = 0.5 * (self.azimuth[0] + self.azimuth[1])
        return np.array([mid + (az - mid + 180.0) % 360.0 - 180.0, el, dist])

    def moved(self, pose: CameraPose, delta) -> CameraPose:
        """Apply a normalized (Δazimuth, Δelevation, Δdistance) step, staying inside the range."""
        az, el, dist = self.orbit_params(pose)
        d = np.clip(np.asarray(delta, dtype=np.float64), -1.0, 1.0) * np.asarray(self.max_step)
        az, el, dist = self.clamp(az + d[0], el + d[1], dist + d[2])
        return orbit(az, el, dist, pose.target, pose.fovy)

    def moved_together(self, poses: list[CameraPose], delta) -> list[CameraPose]:
        """One normalized step for several views as a rig: every view changes by the same (Δazimuth,
        Δelevation, Δdistance), shortened so that the views inside the range stay inside it (views placed
        outside it move by the same change, so the rig keeps its shape)."""
        params = np.stack([self.orbit_params(p) for p in poses])
        d = np.clip(np.asarray(delta, dtype=np.float64), -1.0, 1.0) * np.asarray(self.max_step)
        eps = 1e-9
        for k, (lo, hi) in enumerate((self.azimuth, self.elevation, self.distance)):
            inside = params[(params[:, k] >= lo - eps) & (params[:, k] <= hi + eps), k]
            if len(inside):
                d[k] = np.clip(d[k], lo - inside.min(), hi - inside.max())
        return [orbit(az + d[0], float(np.clip(el + d[1], -89.9, 89.9)), max(dist + d[2], 1e-3), p.target, p.fovy)
                for (az, el, dist), p in zip(params, poses, strict=True)]


COVERAGE_MODES = ("fixed", "random", "moving")


@dataclass(frozen=True)
class CameraCoverage:
    """The camera poses a world model was trained on: one fixed pose, or a world's range (a random pose per
    episode, or moving cameras). A learned env asked for a pose outside it warns (or raises): the model has
    never seen the scene from there, and its frames are guesses."""

    mode: str
    pose: CameraPose | None = None
    range: CameraRange | None = None
    # how far a pose may lie outside and still count as seen (degrees, metres)
    tolerance: tuple[float, float] = (0.5, 0.005)

    def __post_init__(self):
        if self.mode not in COVERAGE_MODES:
            raise CameraError(f"camera coverage mode must be one of {COVERAGE_MODES}, got {self.mode!r}")
        if (self.pose is None) == (self.range is None) or (self.mode == "fixed") != (self.pose is not None):
            raise CameraError("a fixed camera coverage has one pose; random and moving ones have a range")

    @classmethod
    def of(cls, mode: str, default: CameraPose, camera_range: CameraRange) -> CameraCoverage:
        """The coverage of data collected with camera mode `mode` in a world (its default camera and range)."""
        return cls(mode, pose=default) if mode == "fixed" else cls(mode, range=camera_range)

    def covers(self, pose: CameraPose) -> bool:
        deg, m = self.tolerance
        if self.pose is not None:
            return (np.allclose(pose.eye, self.pose.eye, atol=m) and np.allclose(pose.target, self.pose.target, atol=m)
                    and abs(pose.fovy - self.pose.fovy) <= deg)
        r = self.range
        az, el, dist = r.orbit_params(pose)
        return (r.azimuth[0] - deg <= az <= r.azimuth[1] + deg and r.elevation[0] - deg <= el <= r.elevation[1] + deg
                and r.distance[0] - m <= dist <= r.distance[1] + m
                and np.allclose(pose.target, r.target, atol=m) and abs(pose.fovy - r.fovy) <= deg)

    def describe(self) -> str:
        if self.pose is not None:
            az, el, dist = self.pose.orbit_params()
            return f"fixed (az {az:.0f}°, el {el:.0f}°, {dist:.2f} m, fovy {self.pose.fovy:g}°)"
        r = self.range
        return (f"{self.mode}: az {r.azimuth[0]:g}..{r.azimuth[1]:g}°, el {r.elevation[0]:g}..{r.elevation[1]:g}°, "
                f"{r.distance[0]:g}..{r.distance[1]:g} m, fovy {r.fovy:g}°")

    def to_dict(self) -> dict:
        d: dict = {"mode": self.mode}
        if self.pose is not None:
            d["pose"] = self.pose.to_dict()
        else:
            r = self.range
            d["range"] = {"azimuth": list(r.azimuth), "elevation": list(r.elevation), "distance": list(r.distance),
                          "target": list(r.target), "fovy": r.fovy}
        return d

    @classmethod
    def from_info(cls, info: dict, world) -> CameraCoverage:
        """A model's training cameras from its info: recorded at training time, or (older models) what its
        data's camera mode means in `world`."""
        if "camera_coverage" in info:
            return cls.from_dict(info["camera_coverage"])
        return cls.of(info.get("camera", "fixed"), world.default_camera, world.camera_range)

    @classmethod
    def from_dict(cls, d: dict) -> CameraCoverage:
        if "pose" in d:
            p = d["pose"]
            return cls(d["mode"], pose=CameraPose(eye=tuple(p["eye"]), target=tuple(p["target"]), up=tuple(p["up"]),
                                                  fovy=float(p["fovy"])))
        r = d["range"]
        return cls(d["mode"], range=CameraRange(azimuth=tuple(r["azimuth"]), elevation=tuple(r["elevation"]),
                                                distance=tuple(r["distance"]), target=tuple(r["target"]),
                                                fovy=float(r["fovy"])))


def plucker_from_extrinsics(extrinsics, fovy, size: int):
    """Batched torch Plücker rays: extrinsics [N, 4, 4] and fovy [N] (degrees) -> [N, 6, size, size].

    Same convention as `CameraPose.plucker_rays`, on whatever device the inputs live.
    """
    import torch

    E = torch.as_tensor(extrinsics, dtype=torch.float32)
    fov = torch.as_tensor(fovy, dtype=torch.float32, device=E.device)
    R, t = E[:, :3, :3], E[:, :3, 3]
    eye = -(R.transpose(1, 2) @ t[..., None])[..., 0]  # [N, 3]
    f = 0.5 * size / torch.tan(torch.deg2rad(fov) / 2)  # [N]
    c = (torch.arange(size, device=E.device, dtype=torch.float32) + 0.5 - size / 2)
    y, x = torch.meshgrid(c, c, indexing="ij")
    d_cam = torch.stack([x[None] / f[:, None, None], y[None] / f[:, None, None],
                         torch.ones_like(x)[None].expand(len(f), -1, -1)], dim=-1)  # [N, s, s, 3]
    d = torch.einsum("nhwc,ncd->nhwd", d_cam, R)  # R^T applied: rows of R are camera axes
    d = d / d.norm(dim=-1, keepdim=True)
    m = torch.cross(eye[:, None, None, :].expand_as(d), d, dim=-1)
    return torch.cat([d, m], dim=-1).permute(0, 3, 1, 2).contiguous()


def ray_plane_hits(rays, sub: int, heights):
    """Where a pinhole camera's rays cross horizontal planes, on a grid `sub` times finer than the rays given.

    rays: Plücker rays [N, 6, h, w] of one pinhole camera per row (`plucker_from_extrinsics`). Returns
    [N, 3 + 2 * len(heights), sub * h, sub * w]: each fine ray's direction, then the (x, y) where it meets
    z = height for each height (clamped to +-3 m; a ray that does not descend is treated as grazing). A state
    renderer reads these beside the state: whether a ray meets an object is then a comparison of the hit point
    with the object's position, not a perspective projection the network must learn. The camera is recovered
    from the rays themselves (its centre: the point nearest every ray; its image plane: directions are affine
    in pixel position once scaled to unit depth), so any model that sees Plücker rays can use it.
    """
    import torch
    import torch.nn.functional as F

    d, m = rays[:, :3], rays[:, 3:]
    n, _, h, w = d.shape
    dd, foot = d.flatten(2), torch.cross(d, m, dim=1).flatten(2)  # foot: each ray's point nearest the origin
    eye3 = torch.eye(3, device=d.device, dtype=d.dtype)
    centre = torch.linalg.solve(dd.shape[-1] * eye3 - dd @ dd.transpose(1, 2), foot.sum(-1))  # [N, 3]
    axis = F.normalize(dd.mean(-1), dim=1)
    unit_depth = d / (d * axis[:, :, None, None]).sum(1, keepdim=True)
    du = (unit_depth[..., :, -1] - unit_depth[..., :, 0]).mean(-1) / max(w - 1, 1)  # per ray cell, along x
    dv = (unit_depth[..., -1, :] - unit_depth[..., 0, :]).mean(-1) / max(h - 1, 1)
    u = (torch.arange(w * sub, device=d.device, dtype=d.dtype) + 0.5) / sub - w / 2
    v = (torch.arange(h * sub, device=d.device, dtype=d.dtype) + 0.5) / sub - h / 2
    fine = F.normalize(unit_depth.mean((2, 3))[:, :, None, None] + u[None, None, None, :] * du[:, :, None, None]
                       + v[None, None, :, None] * dv[:, :, None, None], dim=1)
    dz = fine[:, 2:3].clamp(max=-1e-2)
    out = [fine]
    for z in heights:
        out.append((centre[:, :2, None, None] + (z - centre[:, 2, None, None, None]) / dz * fine[:, :2]).clamp(-3, 3))
    return torch.cat(out, 1)
