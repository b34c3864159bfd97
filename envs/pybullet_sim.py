"""PyBullet backend: the same MJCF scene, rebuilt body by body in Bullet.

The MJCF stays the one place for dimensions, masses, frictions and colours: we compile it with
MuJoCo and translate the compiled model (boxes, spheres, capsules, cylinders; free, slide and
hinge joints; mocap bodies; sites; velocity actuators). Contact models differ between the two
engines, which is the point of a twin: MuJoCo-vs-PyBullet is our physics-vs-physics yardstick.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import mujoco
import numpy as np
import pybullet as p

from cosmos_sim.camera import CameraPose
from cosmos_sim.worlds.base import MAX_SPEED, World

_NEAR, _FAR = 0.01, 20.0
# Plain ints: compiled-model arrays hold numpy ints, which do not compare equal to the enums.
_BOX, _SPHERE, _CAPSULE, _CYLINDER = (int(t) for t in (mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_SPHERE,
                                                       mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER))
_FREE, _SLIDE, _HINGE = (int(t) for t in (mujoco.mjtJoint.mjJNT_FREE, mujoco.mjtJoint.mjJNT_SLIDE,
                                          mujoco.mjtJoint.mjJNT_HINGE))


def _xyzw(q_wxyz) -> list[float]:
    w, x, y, z = (float(v) for v in q_wxyz)
    return [x, y, z, w]


def _wxyz(q_xyzw) -> np.ndarray:
    x, y, z, w = q_xyzw
    return np.array([w, x, y, z])


def _restitution(solref) -> float:
    """Coefficient of restitution for a contact with MuJoCo's `solref` (timeconst, dampratio).

    A MuJoCo contact is a soft constraint whose reference acceleration makes the penetration a damped
    spring of damping ratio `dampratio`; its regulariser scales with the pair's inverse inertia, so the
    same spring acts on object-table and object-object contacts whatever the masses. A
    linear damped spring returns to zero penetration at exp(-zeta*pi/sqrt(1-zeta^2)) of the impact
    speed, which this returns. MuJoCo rebounds a little faster (the constraint lets go when the spring
    force reaches zero, before the penetration does) and Bullet's penetration recovery adds about as
    much to its rebound, so this is the combined coefficient the twin gives Bullet;
    tests/envs/test_restitution.py checks the two engines' bounces against each other per pair type.
    """
    if solref[0] <= 0:  # direct stiffness/damping form: no bounce mapping
        return 0.0
    zeta = float(solref[1])
    return 0.0 if zeta >= 1.0 else math.exp(-zeta * math.pi / math.sqrt(1.0 - zeta * zeta))


@functools.lru_cache(maxsize=64)
def _round_mesh(radius: float, half_length: float, capsule: bool, n: int = 24):
    """A smooth-shaded cylinder or capsule along z as (vertices, indices, normals) lists.

    TinyRenderer draws Bullet's own capsules and cylinders with pointed ends and broken cap normals,
    so visual capsules and cylinders are meshes with explicit normals, tessellated like MuJoCo's.
    """
    verts: list[list[float]] = []
    norms: list[list[float]] = []
    idx: list[int] = []
    ang = [2 * math.pi * k / n for k in range(n)]

    def ring(z: float, r: float, nz: float, nr: float) -> int:
        start = len(verts)
        for a in ang:
            c, s = math.cos(a), math.sin(a)
            verts.append([r * c, r * s, z])
            norms.append([nr * c, nr * s, nz])
        return start

    def band(lo: int, hi: int) -> None:  # quads between two rings, counter-clockwise seen from outside
        for k in range(n):
            k1 = (k + 1) % n
            idx.extend([lo + k, lo + k1, hi + k1, lo + k, hi + k1, hi + k])

    if capsule:
        rings = []
        n_lat = 6
        for i in range(-n_lat, n_lat + 1):  # bottom pole to top pole; the equator is doubled for the side
            phi = 0.5 * math.pi * i / n_lat
            z0 = half_length if i > 0 else -half_length
            rings.append(ring(z0 + radius * math.sin(phi), radius * math.cos(phi), math.sin(phi), math.cos(phi)))
            if i == 0:
                rings.append(ring(half_length, radius, 0.0, 1.0))
        for lo, hi in zip(rings[:-1], rings[1:], strict=True):
            band(lo, hi)
    else:
        band(ring(-half_length, radius, 0.0, 1.0), ring(half_length, radius, 0.0, 1.0))
        for z, nz in ((half_length, 1.0), (-half_length, -1.0)):
            centre = len(verts)
            verts.append([0.0, 0.0, z])
            norms.append([0.0, 0.0, nz])
            rim = ring(z, radius, nz, 0.0)
            for k in range(n):
                a, b = rim + k, rim + (k + 1) % n
                idx.extend([centre, a, b] if nz > 0 else [centre, b, a])
    return verts, idx, norms


@dataclass
class _Ref:
    uid: int
    link: int = -1  # -1: the multibody's base


class PybulletSim:
    """Implements the worlds' `Sim` protocol on a PyBullet DIRECT client."""

    backend = "pybullet"

    def __init__(self, world: World, image_size: tuple[int, int] = (64, 64)):
        self.world = world
        self.mj = mujoco.MjModel.from_xml_path(world.mjcf_path())
        self.dt = float(self.mj.opt.timestep)
        self.n_substeps = max(1, round(world.control_dt / self.dt))
        self.image_size = image_size
        self.cid = p.connect(p.DIRECT)
        self._forces: dict[str, np.ndarray] = {}
        self._build()

    # --- scene translation ---------------------------------------------------------------------
    def _name(self, kind, i) -> str:
        return mujoco.mj_id2name(self.mj, kind, int(i)) or ""

    def _shape(self, g: int, visual: bool):
        m, _c = self.mj, self.cid
        t, size = int(m.geom_type[g]), m.geom_size[g]
        if t == _BOX:
            kw = {"shapeType": p.GEOM_BOX, "halfExtents": size.tolist()}
        elif t == _SPHERE:
            kw = {"shapeType": p.GEOM_SPHERE, "radius": float(size[0])}
        elif t in (_CAPSULE, _CYLINDER) and visual:
            verts, idx, norms = _round_mesh(float(size[0]), float(size[1]), t == _CAPSULE)
            kw = {"shapeType": p.GEOM_MESH, "vertices": verts, "indices": idx, "normals": norms}
        elif t in (_CAPSULE, _CYLINDER):
            st = p.GEOM_CAPSULE if t == _CAPSULE else p.GEOM_CYLINDER
            kw = {"shapeType": st, "radius": float(size[0]), ("length" if visual else "height"): 2 * float(size[1])}
        else:
            raise NotImplementedError(f"PyBullet twin: geom type {t} of {self._name(mujoco.mjtObj.mjOBJ_GEOM, g)!r} "
                                      "is not supported (box, sphere, capsule, cylinder are)")
        return kw

    def _geoms(self, body: int, world_frame: bool = False):
        """(collision_id, visual_id, geom list) for a body's geoms, framed relative to the body."""
        m, c = self.mj, self.cid
        geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == body]
        if not geoms:
            return -1, -1, []
        if len(geoms) > 1:
            raise NotImplementedError(f"PyBullet twin: body {self._name(mujoco.mjtObj.mjOBJ_BODY, body)!r} "
                                      "has several geoms; give each its own body")
        g = geoms[0]
        pos, quat = m.geom_pos[g].tolist(), _xyzw(m.geom_quat[g])
        vis = p.createVisualShape(**self._shape(g, True), rgbaColor=m.geom_rgba[g].tolist(),
                                  visualFramePosition=pos, visualFrameOrientation=quat, physicsClientId=c)
        collides = m.geom_contype[g] != 0 or m.geom_conaffinity[g] != 0
        col = -1
        if collides:
            col = p.createCollisionShape(**self._shape(g, False), collisionFramePosition=pos,
                                         collisionFrameOrientation=quat, physicsClientId=c)
        return col, vis, geoms

    def _contact_dynamics(self, uid: int, link: int, geoms: list[int]):
        m, c = self.mj, self.cid
        p.changeDynamics(uid, link, linearDamping=0.0, angularDamping=0.0, physicsClientId=c)
        if not geoms:
            return
        g = geoms[0]
        f = m.geom_friction[g]
        condim = int(m.geom_condim[g])
        e = _restitution(m.geom_solref[g])
        # Bullet multiplies the two bodies' coefficients where MuJoCo takes the max (friction) or mixes
        # the two solrefs (restitution); for worlds whose geoms share one value, square roots make the
        # product equal that value. Restitution takes the square root on every body, static ones
        # included: an object-table pair then combines to the same coefficient as an object-object pair,
        # as in MuJoCo. (With different solrefs the product is the geometric mean of the geoms' values,
        # an approximation of MuJoCo's mixed solref.)
        p.changeDynamics(uid, link, lateralFriction=math.sqrt(float(f[0])),
                         spinningFriction=float(f[1]) if condim >= 4 else 0.0,
                         rollingFriction=float(f[2]) if condim >= 6 else 0.0,
                         restitution=math.sqrt(e), physicsClientId=c)
        if e > 0:
            # Bullet also solves contacts that are still a gap apart, asking the rebound to close the gap
            # within the step, which takes gap/dt off the bounce: a sphere landing on a box (table, ramp,
            # wall or a box object) would bounce lower by an amount that depends on where the step
            # boundary falls. Solving only touching contacts (Bullet uses the smaller threshold of the
            # pair) gives the full restitution, as sphere-sphere and box-box contacts already get.
            p.changeDynamics(uid, link, contactProcessingThreshold=0.0, physicsClientId=c)

    def _build(self) -> None:
        m, c = self.mj, self.cid
        p.resetSimulation(physicsClientId=c)
        p.setGravity(*m.opt.gravity.tolist(), physicsClientId=c)
        p.setTimeStep(self.dt, physicsClientId=c)
        # Bullet drops restitution below an approach speed (0.2 m/s by default); MuJoCo's soft contacts
        # have no such threshold, so slow collisions bounce too. Nothing changes where restitution is 0.
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, restitutionVelocityThreshold=0.0,
                                    physicsClientId=c)
        self.bodies: dict[str, _Ref] = {}
        self.joints: dict[str, _Ref] = {}
        self.sites: dict[str, tuple[str, np.ndarray]] = {}
        self.free: set[str] = set()
        self.force_limit: dict[str, float] = {}
        for a in range(m.nu):
            jname = self._name(mujoco.mjtObj.mjOBJ_JOINT, m.actuator_trnid[a, 0])
            limited = m.actuator_forcelimited[a]
            self.force_limit[jname] = float(np.abs(m.actuator_forcerange[a]).max()) if limited else 1e3
        for s in range(m.nsite):
            self.sites[self._name(mujoco.mjtObj.mjOBJ_SITE, s)] = (
                self._name(mujoco.mjtObj.mjOBJ_BODY, m.site_bodyid[s]), m.site_pos[s].copy())

        # Static geoms of the world body: one fixed multibody each.
        for g in range(m.ngeom):
            if m.geom_bodyid[g] != 0:
                continue
            pos, quat = m.geom_pos[g].tolist(), _xyzw(m.geom_quat[g])
            vis = p.createVisualShape(**self._shape(g, True), rgbaColor=m.geom_rgba[g].tolist(), physicsClientId=c)
            collides = m.geom_contype[g] != 0 or m.geom_conaffinity[g] != 0
            col = p.createCollisionShape(**self._shape(g, False), physicsClientId=c) if collides else -1
            uid = p.createMultiBody(0.0, col, vis, pos, quat, physicsClientId=c)
            self._contact_dynamics(uid, -1, [g])

        for b in range(1, m.nbody):
            if m.body_parentid[b] != 0:
                continue
            name = self._name(mujoco.mjtObj.mjOBJ_BODY, b)
            jnt = [m.body_jntadr[b] + k for k in range(m.body_jntnum[b])]
            if m.body_mocapid[b] >= 0 or (not jnt and not self._subtree_has_joints(b)):
                col, vis, geoms = self._geoms(b)
                uid = p.createMultiBody(0.0, col, vis, m.body_pos[b].tolist(), _xyzw(m.body_quat[b]),
                                        physicsClientId=c)
                self._contact_dynamics(uid, -1, geoms)
                self.bodies[name] = _Ref(uid)
            elif jnt and int(m.jnt_type[jnt[0]]) == _FREE:
                if np.abs(m.body_ipos[b]).max() > 1e-9 or np.abs(m.body_iquat[b] - [1, 0, 0, 0]).max() > 1e-9:
                    raise NotImplementedError(f"PyBullet twin: free body {name!r} needs its centre of mass "
                                              "at the body origin with principal axes aligned")
                col, vis, geoms = self._geoms(b)
                uid = p.createMultiBody(float(m.body_mass[b]), col, vis, m.body_pos[b].tolist(),
                                        _xyzw(m.body_quat[b]), physicsClientId=c)
                p.changeDynamics(uid, -1, localInertiaDiagonal=m.body_inertia[b].tolist(), physicsClientId=c)
                self._contact_dynamics(uid, -1, geoms)
                self.bodies[name] = _Ref(uid)
                self.free.add(name)
            else:
                self._build_chain(b)

    def _subtree_has_joints(self, root: int) -> bool:
        m = self.mj
        return any(m.body_jntnum[b] > 0 for b in range(m.nbody) if self._is_in_subtree(b, root))

    def _is_in_subtree(self, b: int, root: int) -> bool:
        while b > 0:
            if b == root:
                return True
            b = self.mj.body_parentid[b]
        return False

    def _build_chain(self, root: int) -> None:
        """A jointed subtree -> one multibody with a fixed base and one link per MuJoCo joint.

        A body with several joints becomes a chain of massless-ish links, its geoms on the last.
        """
        m, c = self.mj, self.cid
        links: list[dict] = []
        last_link_of: dict[int, int] = {}  # mujoco body -> 1-based index of its last link
        for b in (b for b in range(m.nbody) if self._is_in_subtree(b, root)):  # parents come first
            parent_link = 0 if b == root else last_link_of[int(m.body_parentid[b])]
            col, vis, geoms = self._geoms(b)
            jnt = [int(m.body_jntadr[b]) + k for k in range(m.body_jntnum[b])] or [-1]
            for k, j in enumerate(jnt):
                jt = -1 if j < 0 else int(m.jnt_type[j])
                if jt not in (-1, _SLIDE, _HINGE):
                    raise NotImplementedError("PyBullet twin: only slide and hinge joints inside a chain")
                if j >= 0 and np.abs(m.jnt_pos[j]).max() > 1e-9:
                    raise NotImplementedError("PyBullet twin: joints must sit at their body's origin")
                last = k == len(jnt) - 1
                links.append({
                    "body": b if last else -1, "joint": j, "geoms": geoms if last else [],
                    "mass": float(m.body_mass[b]) if last else 1e-3,
                    "col": col if last else -1, "vis": vis if last else -1,
                    "pos": m.body_pos[b].tolist() if k == 0 else [0.0, 0.0, 0.0],
                    "orn": _xyzw(m.body_quat[b]) if k == 0 else [0.0, 0.0, 0.0, 1.0],
                    "ipos": m.body_ipos[b].tolist() if last else [0.0, 0.0, 0.0],
                    "iorn": _xyzw(m.body_iquat[b]) if last else [0.0, 0.0, 0.0, 1.0],
                    "parent": parent_link,
                    "type": {-1: p.JOINT_FIXED, _SLIDE: p.JOINT_PRISMATIC,
                             _HINGE: p.JOINT_REVOLUTE}[jt],
                    "axis": m.jnt_axis[j].tolist() if j >= 0 else [0.0, 0.0, 1.0],
                })
                parent_link = len(links)
            last_link_of[b] = len(links)
        uid = p.createMultiBody(
            baseMass=0.0, basePosition=[0.0, 0.0, 0.0],
            **{f"link{key}": [lk[k] for lk in links] for key, k in (
                ("Masses", "mass"), ("CollisionShapeIndices", "col"), ("VisualShapeIndices", "vis"),
                ("Positions", "pos"), ("Orientations", "orn"), ("InertialFramePositions", "ipos"),
                ("InertialFrameOrientations", "iorn"), ("ParentIndices", "parent"),
                ("JointTypes", "type"), ("JointAxis", "axis"))},
            physicsClientId=c)
        for li, lk in enumerate(links):
            self._contact_dynamics(uid, li, lk["geoms"])
            inertia = m.body_inertia[lk["body"]].tolist() if lk["body"] >= 0 else [1e-6] * 3
            p.changeDynamics(uid, li, localInertiaDiagonal=inertia, physicsClientId=c)
            # Bullet gives every joint a velocity motor; unactuated joints must move freely.
            p.setJointMotorControl2(uid, li, p.VELOCITY_CONTROL, targetVelocity=0.0, force=0.0, physicsClientId=c)
            if lk["body"] >= 0:
                self.bodies[self._name(mujoco.mjtObj.mjOBJ_BODY, lk["body"])] = _Ref(uid, li)
            j = lk["joint"]
            if j < 0:
                continue
            jname = self._name(mujoco.mjtObj.mjOBJ_JOINT, j)
            self.joints[jname] = _Ref(uid, li)
            if m.jnt_limited[j]:
                lo, hi = (float(v) for v in m.jnt_range[j])
                p.changeDynamics(uid, li, jointLowerLimit=lo, jointUpperLimit=hi, physicsClientId=c)
            if jname in self.force_limit:
                p.setJointMotorControl2(uid, li, p.VELOCITY_CONTROL, targetVelocity=0.0,
                                        force=self.force_limit[jname], physicsClientId=c)

    # --- Sim protocol ------------------------------------------------------------------------
    def _ref(self, body: str) -> _Ref:
        try:
            return self.bodies[body]
        except KeyError:
            raise KeyError(f"{self.world.name} has no body {body!r}") from None

    def _pose(self, body: str):
        r = self._ref(body)
        if r.link < 0:
            pos, orn = p.getBasePositionAndOrientation(r.uid, physicsClientId=self.cid)
        else:
            ls = p.getLinkState(r.uid, r.link, computeForwardKinematics=1, physicsClientId=self.cid)
            pos, orn = ls[4], ls[5]
        return np.asarray(pos, dtype=np.float64), orn

    def body_position(self, body):
        return self._pose(body)[0]

    def body_quaternion(self, body):
        return _wxyz(self._pose(body)[1])

    def body_linear_velocity(self, body):
        r = self._ref(body)
        if r.link < 0:
            return np.asarray(p.getBaseVelocity(r.uid, physicsClientId=self.cid)[0], dtype=np.float64)
        ls = p.getLinkState(r.uid, r.link, computeLinkVelocity=1, computeForwardKinematics=1, physicsClientId=self.cid)
        return np.asarray(ls[6], dtype=np.float64)

    def body_angular_velocity(self, body):
        r = self._ref(body)
        return np.asarray(p.getBaseVelocity(r.uid, physicsClientId=self.cid)[1], dtype=np.float64)

    def set_body_pose(self, body, pos, quat=(1.0, 0.0, 0.0, 0.0)):
        r = self._ref(body)
        q = np.asarray(quat, dtype=np.float64)
        # Bullet zeroes the velocity when it teleports a body; MuJoCo (and the protocol) keep it.
        vel = p.getBaseVelocity(r.uid, physicsClientId=self.cid) if body in self.free else None
        p.resetBasePositionAndOrientation(r.uid, list(map(float, pos)), _xyzw(q / np.linalg.norm(q)),
                                          physicsClientId=self.cid)
        if vel is not None:
            p.resetBaseVelocity(r.uid, *vel, physicsClientId=self.cid)

    def set_body_velocity(self, body, linear, angular=(0.0, 0.0, 0.0)):
        r = self._ref(body)
        p.resetBaseVelocity(r.uid, list(map(float, linear)), list(map(float, angular)), physicsClientId=self.cid)

    def joint_position(self, joint):
        r = self.joints[joint]
        return float(p.getJointState(r.uid, r.link, physicsClientId=self.cid)[0])

    def joint_velocity(self, joint):
        r = self.joints[joint]
        return float(p.getJointState(r.uid, r.link, physicsClientId=self.cid)[1])

    def set_joint(self, joint, position, velocity=0.0):
        r = self.joints[joint]
        p.resetJointState(r.uid, r.link, float(position), float(velocity), physicsClientId=self.cid)

    def set_joint_velocity_target(self, joint, velocity):
        r = self.joints[joint]
        p.setJointMotorControl2(r.uid, r.link, p.VELOCITY_CONTROL, targetVelocity=float(velocity),
                                force=self.force_limit[joint], physicsClientId=self.cid)

    def set_body_force(self, body, force):
        self._ref(body)
        self._forces[body] = np.asarray(force, dtype=np.float64)

    def site_position(self, site):
        body, local = self.sites[site]
        pos, orn = self._pose(body)
        R = np.asarray(p.getMatrixFromQuaternion(orn), dtype=np.float64).reshape(3, 3)
        return pos + R @ local

    # --- episode control -----------------------------------------------------------------------
    def reset(self, init: dict) -> None:
        # Rebuilding clears Bullet's contact caches, so a reset never depends on the past.
        self._build()
        self._forces = {}
        self.world.apply_initial_state(self, init)

    def step(self, action: np.ndarray) -> bool:
        """Advance one control step; False if the simulation went unstable (before or during the step).

        Bullet clamps velocities at 100 rather than producing NaN, and joint motors then brake the
        clamped joints within a step, so a blow-up is looked for both before and after stepping.
        """
        stable = self._stable()
        self._forces = {}
        self.world.apply_action(self, action)
        for _ in range(self.n_substeps):
            for body, f in self._forces.items():
                r = self.bodies[body]
                com = p.getBasePositionAndOrientation(r.uid, physicsClientId=self.cid)[0]
                p.applyExternalForce(r.uid, -1, f.tolist(), com, p.WORLD_FRAME, physicsClientId=self.cid)
            p.stepSimulation(physicsClientId=self.cid)
        return self._stable() and stable

    def _stable(self) -> bool:
        """False once anything is non-finite or faster than MAX_SPEED (Bullet clamps blow-ups at 100)."""
        c = self.cid
        for name in self.free:
            r = self.bodies[name]
            pos, orn = p.getBasePositionAndOrientation(r.uid, physicsClientId=c)
            lin, ang = p.getBaseVelocity(r.uid, physicsClientId=c)
            if not np.all(np.isfinite([*pos, *orn, *lin, *ang])) or max(map(abs, lin)) > MAX_SPEED:
                return False
        for r in self.joints.values():
            q, qd = p.getJointState(r.uid, r.link, physicsClientId=c)[:2]
            if not (math.isfinite(q) and math.isfinite(qd)) or abs(qd) > MAX_SPEED:
                return False
        return True

    def render(self, pose: CameraPose) -> np.ndarray:
        h, w = self.image_size
        view = p.computeViewMatrix(list(pose.eye), list(pose.target), list(pose.up), physicsClientId=self.cid)
        proj = list(p.computeProjectionMatrixFOV(pose.fovy, w / h, _NEAR, _FAR, physicsClientId=self.cid))
        # TinyRenderer samples pixel (i, j) at integer screen coordinates with row 0 at the top, i.e.
        # half a pixel right of and above the pixel centre (j + 0.5, i + 0.5) that MuJoCo and
        # CameraPose.project use. Shift NDC by half a pixel (-1/w in x, -1/h in y): entries (0, 2) and
        # (1, 2) of the column-major matrix add that times w_clip = -z_eye.
        proj[8] += 1.0 / w
        proj[9] += 1.0 / h
        # A headlight, as in the worlds' MJCF, with MuJoCo's top light folded into the ambient term.
        headlight = [float(v) for v in np.subtract(pose.eye, pose.target)]
        out = p.getCameraImage(w, h, view, proj, renderer=p.ER_TINY_RENDERER, shadow=0,
                               lightDirection=headlight, lightColor=[1.0, 1.0, 1.0],
                               lightAmbientCoeff=0.7, lightDiffuseCoeff=0.5, lightSpecularCoeff=0.0,
                               physicsClientId=self.cid)
        rgb = np.asarray(out[2], dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()
        # TinyRenderer clears to white, MuJoCo to black: paint the empty background (no body in the
        # segmentation mask) black so both backends show the same picture.
        rgb[np.asarray(out[4]).reshape(h, w) < 0] = 0
        return rgb

    def close(self) -> None:
        if self.cid is not None and self.cid >= 0:
            with contextlib.suppress(p.error):
                p.disconnect(physicsClientId=self.cid)
            self.cid = -1
