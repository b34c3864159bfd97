"""MuJoCo backend: the world's MJCF, stepped at the world's control rate, rendered at any pose."""

from __future__ import annotations

import os
import sys

if sys.platform.startswith("linux"):  # as cosmos_sim/__init__.py: only where the user chose nothing
    os.environ.setdefault("MUJOCO_GL", "egl")
elif sys.platform == "darwin":
    os.environ.setdefault("MUJOCO_GL", "cgl")
# Without a GPU, EGL renders through Mesa's llvmpipe, whose worker threads do not survive fork(): an
# AsyncVectorEnv forked after any render hung for ever. Single-threaded llvmpipe is fork-safe and, for
# our small frames, faster. Read when the first EGL display opens; a user's own setting wins.
os.environ.setdefault("LP_NUM_THREADS", "0")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from cosmos_sim.camera import CameraPose  # noqa: E402
from cosmos_sim.worlds.base import (
    MAX_SPEED,  # noqa: E402
    World,  # noqa: E402
)

_NEAR, _FAR = 0.01, 20.0
# MuJoCo resets the data (and raises one of these) when positions, velocities or accelerations blow up.
_INSTABILITY = tuple(int(w) for w in (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                                      mujoco.mjtWarning.mjWARN_BADQACC))


def make_renderer(model, height: int, width: int):
    """A `mujoco.Renderer`, or a RenderError saying which GL backend failed and what to try."""
    from cosmos_sim.errors import RenderError

    try:
        return mujoco.Renderer(model, height, width)
    except Exception as e:  # mujoco raises FatalError, RuntimeError or ImportError by platform
        gl = os.environ.get("MUJOCO_GL", "(unset)")
        raise RenderError(f"MuJoCo cannot render with MUJOCO_GL={gl} ({type(e).__name__}: {e}). Set MUJOCO_GL to a "
                          "backend this machine has: egl (Linux, headless), osmesa (software), glfw (a display), "
                          "cgl (macOS)") from None


class MujocoSim:
    """Implements the worlds' `Sim` protocol on one MjModel/MjData pair."""

    backend = "mujoco"

    def __init__(self, world: World, image_size: tuple[int, int] = (64, 64)):
        self.world = world
        self.model = mujoco.MjModel.from_xml_path(world.mjcf_path())
        self.data = mujoco.MjData(self.model)
        self.n_substeps = max(1, round(world.control_dt / self.model.opt.timestep))
        self.image_size = image_size
        self._renderer: mujoco.Renderer | None = None
        self._act = {self._name(mujoco.mjtObj.mjOBJ_JOINT, self.model.actuator_trnid[i, 0]): i
                     for i in range(self.model.nu)}
        # Velocity entries bounded by MAX_SPEED: slide/hinge dofs and the linear part of free joints.
        speed_dofs = []
        for j in range(self.model.njnt):
            da, jt = int(self.model.jnt_dofadr[j]), int(self.model.jnt_type[j])
            if jt == mujoco.mjtJoint.mjJNT_FREE:
                speed_dofs += [da, da + 1, da + 2]
            elif jt in (mujoco.mjtJoint.mjJNT_SLIDE, mujoco.mjtJoint.mjJNT_HINGE):
                speed_dofs.append(da)
        self._speed_dofs = np.asarray(speed_dofs, dtype=np.int64)
        # Setters change qpos/mocap; positions read back (and renders) need forward kinematics first.
        self._dirty = False

    def _name(self, kind, idx) -> str:
        return mujoco.mj_id2name(self.model, kind, int(idx))

    def _body(self, name: str) -> int:
        i = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)
        if i < 0:
            raise KeyError(f"{self.world.name} has no body {name!r}")
        return i

    def _joint(self, name: str) -> int:
        i = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if i < 0:
            raise KeyError(f"{self.world.name} has no joint {name!r}")
        return i

    def _free_adr(self, body: int) -> tuple[int, int]:
        j = self.model.body_jntadr[body]
        if j < 0 or self.model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE:
            raise KeyError(f"body {self._name(mujoco.mjtObj.mjOBJ_BODY, body)!r} is not a free body")
        return self.model.jnt_qposadr[j], self.model.jnt_dofadr[j]

    def _sync(self) -> None:
        if self._dirty:
            mujoco.mj_forward(self.model, self.data)
            self._dirty = False

    # --- Sim protocol ------------------------------------------------------------------------
    def body_position(self, body):
        self._sync()
        return self.data.xpos[self._body(body)].copy()

    def body_quaternion(self, body):
        self._sync()
        return self.data.xquat[self._body(body)].copy()

    def body_linear_velocity(self, body):
        b = self._body(body)
        qa, da = self._free_adr(b)
        return self.data.qvel[da:da + 3].copy()

    def body_angular_velocity(self, body):
        qa, da = self._free_adr(self._body(body))
        return self._rot(qa) @ self.data.qvel[da + 3:da + 6]  # the free joint's is in the body frame

    def set_body_pose(self, body, pos, quat=(1.0, 0.0, 0.0, 0.0)):
        b = self._body(body)
        mocap = self.model.body_mocapid[b]
        if mocap >= 0:
            self.data.mocap_pos[mocap] = pos
            self.data.mocap_quat[mocap] = quat
        else:
            qa, da = self._free_adr(b)
            omega = self._rot(qa) @ self.data.qvel[da + 3:da + 6]  # keep the world-frame spin, as PyBullet does
            self.data.qpos[qa:qa + 3] = pos
            self.data.qpos[qa + 3:qa + 7] = np.asarray(quat) / np.linalg.norm(quat)
            self.data.qvel[da + 3:da + 6] = self._rot(qa).T @ omega
        self._dirty = True

    def _rot(self, qa: int) -> np.ndarray:
        """World rotation of the free joint whose quaternion starts at qpos[qa + 3]."""
        R = np.empty(9)
        mujoco.mju_quat2Mat(R, self.data.qpos[qa + 3:qa + 7])
        return R.reshape(3, 3)

    def set_body_velocity(self, body, linear, angular=(0.0, 0.0, 0.0)):
        qa, da = self._free_adr(self._body(body))
        self.data.qvel[da:da + 3] = linear
        # A free joint's angular velocity is in the body frame; the protocol's is in the world frame.
        self.data.qvel[da + 3:da + 6] = self._rot(qa).T @ np.asarray(angular, dtype=np.float64)
        self._dirty = True

    def joint_position(self, joint):
        return float(self.data.qpos[self.model.jnt_qposadr[self._joint(joint)]])

    def joint_velocity(self, joint):
        return float(self.data.qvel[self.model.jnt_dofadr[self._joint(joint)]])

    def set_joint(self, joint, position, velocity=0.0):
        j = self._joint(joint)
        self.data.qpos[self.model.jnt_qposadr[j]] = position
        self.data.qvel[self.model.jnt_dofadr[j]] = velocity
        self._dirty = True

    def set_joint_velocity_target(self, joint, velocity):
        self.data.ctrl[self._act[joint]] = velocity

    def set_body_force(self, body, force):
        b = self._body(body)
        self.data.xfrc_applied[b, :3] = force

    def site_position(self, site):
        i = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, site)
        if i < 0:
            raise KeyError(f"{self.world.name} has no site {site!r}")
        self._sync()
        return self.data.site_xpos[i].copy()

    # --- episode control -----------------------------------------------------------------------
    def reset(self, init: dict) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self.world.apply_initial_state(self, init)
        mujoco.mj_forward(self.model, self.data)
        self._dirty = False

    def step(self, action: np.ndarray) -> bool:
        """Advance one control step; False if the simulation went unstable.

        MuJoCo answers NaN or huge values by resetting the data and raising a warning, so a blow-up
        shows as a warning (not as NaN in qpos); we clear the counters first and look at them after.
        """
        self.data.xfrc_applied[:] = 0.0
        self.world.apply_action(self, action)
        for w in _INSTABILITY:
            self.data.warning[w].number = 0
        for _ in range(self.n_substeps):
            mujoco.mj_step(self.model, self.data)
        mujoco.mj_forward(self.model, self.data)
        self._dirty = False
        if any(self.data.warning[w].number > 0 for w in _INSTABILITY):
            return False
        if not (np.all(np.isfinite(self.data.qpos)) and np.all(np.isfinite(self.data.qvel))):
            return False
        return not (self._speed_dofs.size and np.abs(self.data.qvel[self._speed_dofs]).max() > MAX_SPEED)

    def render(self, pose: CameraPose) -> np.ndarray:
        h, w = self.image_size
        if self._renderer is None:
            self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, w)
            self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, h)
            self._renderer = make_renderer(self.model, h, w)
        r = self._renderer
        self._sync()
        r.update_scene(self.data)
        R = pose.rotation  # rows: right, down, forward
        top = _NEAR * np.tan(np.radians(pose.fovy) / 2)
        for cam in r.scene.camera:  # both eyes: mono rendering averages them
            cam.pos[:] = pose.eye
            cam.forward[:] = R[2]
            cam.up[:] = -R[1]
            cam.frustum_center = 0.0
            cam.frustum_width = 0.0
            cam.frustum_bottom = -top
            cam.frustum_top = top
            cam.frustum_near = _NEAR
            cam.frustum_far = _FAR
            cam.orthographic = 0
        return r.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
