"""Cameras: the geometry of cosmos_sim.camera, and both physics backends rendering exactly that geometry."""

import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import cosmos_sim  # noqa: F401  (registers the gym ids)
from cosmos_sim.camera import CameraPose, CameraRange, orbit
from cosmos_sim.errors import CameraError
from cosmos_sim.worlds import WORLDS
from cosmos_sim.worlds.base import StateLayout, World


def random_pose(rng: np.random.Generator, roll: bool = False) -> CameraPose:
    """A camera looking roughly at the table from above, with an optional tilted up vector."""
    target = (*rng.uniform(-0.1, 0.1, 2), rng.uniform(0.0, 0.1))
    pose = orbit(rng.uniform(-180, 180), rng.uniform(-80, -25), rng.uniform(0.8, 1.4), target=target,
                 fovy=rng.uniform(30, 60))
    if roll:
        R = pose.rotation
        a = math.radians(rng.uniform(-40, 40))
        up = -R[1] * math.cos(a) + R[0] * math.sin(a)  # rotate "up" about the view axis
        pose = CameraPose(pose.eye, pose.target, up, pose.fovy)
    return pose


POSES = [random_pose(np.random.default_rng(s), roll=s % 3 == 0) for s in range(8)]


# --- extrinsics, intrinsics, projection ---------------------------------------------------------------
@pytest.mark.parametrize("pose", POSES)
def test_extrinsics_are_a_rigid_world_to_camera_transform(pose):
    T = pose.extrinsics()
    R = T[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(T[3], [0, 0, 0, 1])
    np.testing.assert_allclose(T @ [*pose.eye, 1.0], [0, 0, 0, 1], atol=1e-12)  # eye -> origin
    dist = np.linalg.norm(np.subtract(pose.target, pose.eye))
    np.testing.assert_allclose(T @ [*pose.target, 1.0], [0, 0, dist, 1], atol=1e-12)  # on the optical axis
    # OpenCV: y points down, so a point displaced along `up` has negative camera y.
    up_cam = R @ np.asarray(pose.up)
    assert up_cam[1] < 0 and abs(up_cam[0]) < 1e-9


def test_extrinsics_axes_for_a_known_view():
    # Looking along +y from the -y side, slightly from above: right is +x, down is mostly -z.
    pose = orbit(90.0, -30.0, 2.0)
    R = pose.rotation
    np.testing.assert_allclose(R[0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(R[2], [0, math.cos(math.radians(30)), -math.sin(math.radians(30))], atol=1e-12)
    np.testing.assert_allclose(R[1], np.cross(R[2], R[0]), atol=1e-12)
    assert R[1][2] < 0


@pytest.mark.parametrize("hw", [(64, 64), (48, 80), (120, 30)])
def test_intrinsics_and_projection(hw):
    h, w = hw
    pose = orbit(30.0, -45.0, 1.5, fovy=50.0)
    K = pose.intrinsics(h, w)
    f = (h / 2) / math.tan(math.radians(50.0) / 2)
    np.testing.assert_allclose(K, [[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    # The target lands at the image centre; points at +-fovy/2 above/below the axis land on the edges.
    np.testing.assert_allclose(pose.project(pose.target, h, w), [w / 2, h / 2], atol=1e-9)
    R, eye = pose.rotation, np.asarray(pose.eye)
    half = math.radians(25.0)
    top = eye + 3.0 * (R[2] * math.cos(half) - R[1] * math.sin(half))
    bottom = eye + 3.0 * (R[2] * math.cos(half) + R[1] * math.sin(half))
    np.testing.assert_allclose(pose.project(top, h, w), [w / 2, 0.0], atol=1e-9)
    np.testing.assert_allclose(pose.project(bottom, h, w), [w / 2, h], atol=1e-9)
    # Square pixels: the horizontal field of view follows from the aspect ratio.
    right = eye + 3.0 * (R[2] + R[0] * math.tan(half) * w / h)
    np.testing.assert_allclose(pose.project(right, h, w), [w, h / 2], atol=1e-9)


@pytest.mark.parametrize("pose", POSES)
def test_project_matches_a_direct_pinhole_computation(pose):
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.3, 0.3, (50, 3))
    h, w = 72, 96
    T, K = pose.extrinsics(), pose.intrinsics(h, w)
    cam = (T @ np.c_[pts, np.ones(len(pts))].T)[:3]
    uvw = K @ cam
    expected = (uvw[:2] / uvw[2]).T
    np.testing.assert_allclose(pose.project(pts, h, w), expected, atol=1e-9)
    assert pose.project(pts.reshape(5, 10, 3), h, w).shape == (5, 10, 2)


@pytest.mark.parametrize("pose", POSES[:4])
def test_plucker_rays(pose):
    h, w = 12, 20
    rays = pose.plucker_rays(h, w)
    assert rays.shape == (6, h, w) and rays.dtype == np.float32
    d, m = rays[:3].astype(np.float64), rays[3:].astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, atol=1e-6)
    eye = np.asarray(pose.eye)
    np.testing.assert_allclose(m, np.cross(eye, d, axis=0), atol=1e-6)  # moment = eye x direction
    np.testing.assert_allclose((m * d).sum(0), 0.0, atol=1e-6)
    for i, j in [(0, 0), (h - 1, w - 1), (3, 17), (h // 2, w // 2)]:
        di = d[:, i, j]
        # The ray through pixel (i, j) passes through the points that project to that pixel's centre.
        for s in (0.5, 2.0):
            np.testing.assert_allclose(pose.project(eye + s * di, h, w), [j + 0.5, i + 0.5], atol=1e-4)
        # Any point x on the ray has the same moment x x d.
        np.testing.assert_allclose(np.cross(eye + 1.7 * di, di), m[:, i, j], atol=1e-5)
    # Rays look forward.
    assert (np.einsum("k,khw->hw", pose.rotation[2], d) > 0).all()


@pytest.mark.parametrize("pose", POSES)
def test_ray_plane_hits_recover_finer_rays_and_where_they_meet_the_planes(pose):
    import torch

    from cosmos_sim.camera import plucker_from_extrinsics, ray_plane_hits

    ext, fov = torch.from_numpy(pose.extrinsics()[None].astype(np.float32)), torch.tensor([pose.fovy])
    got = ray_plane_hits(plucker_from_extrinsics(ext, fov, 8).double(), 4, (0.0, 0.1))[0].numpy()
    assert got.shape == (7, 32, 32)
    fine = plucker_from_extrinsics(ext, fov, 32)[0, :3].double().numpy()  # the same camera's rays at 32 x 32
    np.testing.assert_allclose(got[:3], fine, atol=1e-5)
    eye = np.asarray(pose.eye)
    for k, z in enumerate((0.0, 0.1)):
        t = (z - eye[2]) / np.minimum(fine[2], -1e-2)
        want = np.clip(eye[:2, None, None] + t * fine[:2], -3, 3)
        np.testing.assert_allclose(got[3 + 2 * k:5 + 2 * k], want, atol=1e-4)


# --- orbit, CameraRange, serialization ----------------------------------------------------------------
def test_orbit_convention_negative_elevation_looks_down():
    pose = orbit(0.0, -30.0, 2.0, target=(0.1, 0.2, 0.3))
    assert pose.eye[2] > 0.3  # camera above the target
    assert pose.rotation[2][2] < 0  # forward points down
    np.testing.assert_allclose(np.linalg.norm(np.subtract(pose.eye, pose.target)), 2.0)
    # azimuth 0 looks along +x, azimuth 90 along +y (MuJoCo's free camera).
    assert pose.rotation[2][0] > 0.8
    assert orbit(90.0, -30.0, 2.0).rotation[2][1] > 0.8
    assert orbit(0.0, 20.0, 1.0).rotation[2][2] > 0  # positive elevation looks up


@pytest.mark.parametrize("az,el,dist", [(0, -30, 2), (30, -40, 2), (135, -70, 1.1), (-100, -10, 3.5), (250, 15, 0.7)])
def test_orbit_matches_mujoco_free_camera(az, el, dist):
    model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='0.1'/></worldbody></mujoco>")
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.azimuth, cam.elevation, cam.distance = az, el, dist
    cam.lookat[:] = (0.1, -0.2, 0.3)
    scene = mujoco.MjvScene(model, maxgeom=10)
    mujoco.mjv_updateScene(model, data, mujoco.MjvOption(), mujoco.MjvPerturb(), cam,
                           mujoco.mjtCatBit.mjCAT_ALL, scene)
    eyes = np.array([scene.camera[k].pos for k in range(2)]).mean(0)  # mono = the two eyes' midpoint
    pose = orbit(az, el, dist, target=(0.1, -0.2, 0.3))
    np.testing.assert_allclose(pose.eye, eyes, atol=1e-5)
    np.testing.assert_allclose(pose.rotation[2], scene.camera[0].forward, atol=1e-5)
    np.testing.assert_allclose(-pose.rotation[1], scene.camera[0].up, atol=1e-5)
    # orbit_params inverts orbit.
    a, e, d = pose.orbit_params()
    assert (a - az + 180) % 360 - 180 == pytest.approx(0, abs=1e-9)
    assert (e, d) == pytest.approx((el, dist))


def test_to_array_from_array_round_trip():
    for pose in POSES:
        a = pose.to_array()
        assert a.shape == (10,) and a.dtype == np.float32
        back = CameraPose.from_array(a)
        np.testing.assert_allclose(back.eye, pose.eye, atol=1e-6)
        np.testing.assert_allclose(back.target, pose.target, atol=1e-6)
        np.testing.assert_allclose(back.up, pose.up, atol=1e-6)
        assert back.fovy == pytest.approx(pose.fovy, abs=1e-5)
        np.testing.assert_array_equal(back.to_array(), a)  # float32 is a fixed point
        assert CameraPose.from_array(a) == back  # equal poses compare equal (and hash alike)
        assert hash(CameraPose.from_array(a)) == hash(back)
        d = pose.to_dict()
        assert CameraPose(**d) == pose
    with pytest.raises(CameraError, match="10"):
        CameraPose.from_array(np.zeros(9))


@pytest.mark.parametrize("make", [
    lambda: CameraPose((1, 1, 1), (1, 1, 1)),
    lambda: CameraPose((0, 0, 1), (0, 0, 0), fovy=0),
    lambda: CameraPose((0, 0, 1), (0, 0, 0), fovy=-1),
    lambda: CameraPose((0, 0, 1), (0, 0, 0), fovy=180),
    lambda: CameraPose((0, 0, 1), (0, 0, 0), fovy=190),
    lambda: CameraPose((0, 0, 1), (0, 0, 0), fovy=float("nan")),
    lambda: CameraPose((0, 0, 1), (0, 0, 0), fovy=float("inf")),
    lambda: CameraPose((0, 0, 1), (0, 0, 0), fovy="wide"),
    lambda: CameraPose((0, float("nan"), 1), (0, 0, 0)),
    lambda: CameraPose((0, 1, 1), (0, float("inf"), 0)),
    lambda: CameraPose((0, 1, 1), (0, 0, 0), up=(0, 0, float("nan"))),
    lambda: CameraPose((0, 1, 1), (0, 0, 0), up=(0, 0, 0)),
    lambda: CameraPose((0, 0, 1), (0, 0, 0), up=(0, 0, 1)),
    lambda: CameraPose((0, 0), (0, 0, 0)),
    lambda: CameraPose.from_array([1, 2, 3, 1, 2, 3, 0, 0, 1, 45]),
    lambda: orbit(0, -30, 0.0),
    lambda: orbit(0, -30, -1.0),
    lambda: orbit(0, -30, float("nan")),
    lambda: orbit(0, -90, 1.0),
    lambda: orbit(0, 95, 1.0),
    lambda: orbit(float("nan"), -30, 1.0),
    lambda: orbit(float("inf"), -30, 1.0),
    lambda: orbit(0, -30, 1.0, fovy=0),
])
def test_degenerate_cameras_raise_camera_error(make):
    with pytest.raises(CameraError):
        make()


def test_camera_range_sampling_and_moves():
    rng_ = CameraRange(azimuth=(45.0, 135.0), elevation=(-80.0, -40.0), distance=(0.95, 1.3),
                       target=(0.0, 0.1, 0.0), fovy=40.0)
    a = [rng_.sample(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]  # deterministic per generator seed
    gen = np.random.default_rng(0)
    poses = [rng_.sample(gen) for _ in range(200)]
    params = np.array([p.orbit_params() for p in poses])
    for k, (lo, hi) in enumerate((rng_.azimuth, rng_.elevation, rng_.distance)):
        assert params[:, k].min() >= lo - 1e-9 and params[:, k].max() <= hi + 1e-9
        assert params[:, k].max() - params[:, k].min() > 0.8 * (hi - lo)  # spans the range
    assert all(p.target == rng_.target and p.fovy == 40.0 for p in poses)
    # Moves: normalized deltas scaled by max_step, clipped to [-1, 1], clamped to the range.
    p0 = orbit(90.0, -60.0, 1.1, target=rng_.target, fovy=40.0)
    p1 = rng_.moved(p0, [0.5, -1.0, 3.0])
    np.testing.assert_allclose(p1.orbit_params(), (92.5, -63.0, 1.13))
    p = p0
    for _ in range(50):
        p = rng_.moved(p, [1.0, 1.0, -1.0])
    np.testing.assert_allclose(p.orbit_params(), (135.0, -40.0, 0.95))


def test_camera_range_across_the_azimuth_seam():
    # A range that crosses +-180 degrees: moving must not jump to the far end.
    rng_ = CameraRange(azimuth=(150.0, 210.0), elevation=(-60.0, -30.0), distance=(1.0, 1.5))
    p = orbit(175.0, -45.0, 1.2)
    for _ in range(3):
        p = rng_.moved(p, [1.0, 0.0, 0.0])
    az = p.orbit_params()[0]
    assert (az - 190.0 + 180) % 360 - 180 == pytest.approx(0.0, abs=1e-6)


# --- both backends render the pose exactly -----------------------------------------------------------
MARKER_XML = """<mujoco model="camera_markers">
  <option timestep="0.01"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.6 0.6 0.6" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
  </visual>
  <worldbody>
    <geom name="table" type="box" size="0.6 0.6 0.02" pos="0 0 -0.02" rgba="0.5 0.5 0.5 1"/>
    <body name="marker" mocap="true" pos="0 0 0.1">
      <geom name="marker" type="sphere" size="0.03" rgba="1 0 1 1" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
</mujoco>
"""


class MarkerWorld(World, register=False):  # used directly, never by name
    """A table and one magenta sphere we can put anywhere (a mocap body); no task."""

    name = "CameraMarkers"
    asset = "camera_markers.xml"
    action_names = ()
    state_layout = StateLayout(())
    control_dt = 0.01
    max_episode_steps = 1

    def __init__(self, path):
        self.path = str(path)

    def mjcf_path(self):
        return self.path

    def mjcf_text(self):
        with open(self.path) as f:
            return f.read()


def marker_centroid(img: np.ndarray):
    """Centre of the magenta pixels as (u, v) in pixel-centre convention, and how many there are."""
    x = img.astype(np.int32)
    mask = (x[..., 0] - x[..., 1] > 80) & (x[..., 2] - x[..., 1] > 80)
    i, j = np.nonzero(mask)
    if len(i) == 0:
        return None, 0
    return np.array([j.mean() + 0.5, i.mean() + 0.5]), len(i)


@pytest.fixture(scope="module")
def marker_world(tmp_path_factory):
    path = tmp_path_factory.mktemp("camera") / "camera_markers.xml"
    path.write_text(MARKER_XML)
    return MarkerWorld(path)


@pytest.mark.parametrize("hw", [(128, 128), (96, 160)])
def test_both_backends_render_projected_points_at_the_same_pixel(marker_world, hw):
    from cosmos_sim.envs.mujoco_sim import MujocoSim
    from cosmos_sim.envs.pybullet_sim import PybulletSim

    h, w = hw
    n_poses, n_points, margin = 20, 20, 8.0
    sims = {"mujoco": MujocoSim(marker_world, hw), "pybullet": PybulletSim(marker_world, hw)}
    rng = np.random.default_rng(2024 + h)
    errors = {b: [] for b in sims}
    try:
        for k in range(n_poses):
            pose = random_pose(rng, roll=k % 2 == 1)
            found = 0
            while found < n_points:
                pt = np.array([*rng.uniform(-0.3, 0.3, 2), rng.uniform(0.03, 0.25)])
                uv = pose.project(pt, h, w)
                if not (margin <= uv[0] <= w - margin and margin <= uv[1] <= h - margin):
                    continue  # keep the whole marker inside the frame
                found += 1
                seen = {}
                for b, sim in sims.items():
                    sim.set_body_pose("marker", pt)
                    c, n = marker_centroid(sim.render(pose))
                    assert n >= 4, f"{b}: marker at {pt} not visible from {pose} (expected near {uv})"
                    assert np.abs(c - uv).max() <= 1.0, f"{b}: marker at {pt} seen at {c}, projected to {uv}, {pose}"
                    errors[b].append(c - uv)
                    seen[b] = c
                assert np.abs(seen["mujoco"] - seen["pybullet"]).max() <= 1.0, f"backends disagree: {seen}, {pose}"
    finally:
        for sim in sims.values():
            sim.close()
    # No systematic offset either: a half-pixel shift or a flip would move the mean error by >= 0.5 px.
    for b, e in errors.items():
        e = np.array(e)
        assert len(e) == n_poses * n_points
        assert np.abs(e.mean(0)).max() < 0.15, f"{b}: mean pixel offset {e.mean(0)}"


# Object colours of the worlds' MJCF, compared by chromaticity so that shading differences do not matter.
OBJECT_COLOURS = {"red": (0.9, 0.15, 0.15), "green": (0.2, 0.75, 0.25), "blue": (0.15, 0.3, 0.9),
                  "orange": (0.9, 0.5, 0.1), "yellow": (0.95, 0.8, 0.1)}


def colour_labels(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float64) / 255.0
    x = x / np.maximum(x.max(-1, keepdims=True), 1e-3)
    ref = np.array(list(OBJECT_COLOURS.values()))
    ref = ref / ref.max(-1, keepdims=True)
    d = np.linalg.norm(x[..., None, :] - ref, axis=-1)
    labels = d.argmin(-1)
    labels[d.min(-1) > 0.2] = -1
    return labels


@pytest.mark.parametrize("world", list(WORLDS))  # every registered world (at import: the built-in ones)
def test_worlds_look_the_same_in_both_backends(world):
    envs = {b: gym.make(f"cosmos_sim/{world}-v0", backend=b, camera="random", obs_mode="pixels") for b in
            ("mujoco", "pybullet")}
    try:
        for seed in range(3):
            imgs = {b: e.reset(seed=seed)[0] for b, e in envs.items()}
            assert envs["mujoco"].unwrapped.camera == envs["pybullet"].unwrapped.camera
            diff = np.abs(imgs["mujoco"].astype(np.float64) - imgs["pybullet"]).mean()
            assert diff < 20, f"{world} seed {seed}: mean |MuJoCo - PyBullet| = {diff:.1f} grey levels"
            labels = {b: colour_labels(im) for b, im in imgs.items()}
            n_objects = 0
            for k, name in enumerate(OBJECT_COLOURS):
                a, b = labels["mujoco"] == k, labels["pybullet"] == k
                if a.sum() < 4 and b.sum() < 4:
                    continue
                n_objects += 1
                assert abs(int(a.sum()) - int(b.sum())) <= max(4, 0.2 * a.sum()), (world, seed, name, a.sum(), b.sum())
                shift = np.abs(np.argwhere(a).mean(0) - np.argwhere(b).mean(0)).max()
                assert shift <= 0.5, f"{world} seed {seed}: {name} object {shift:.2f} px apart in the two backends"
            assert n_objects >= 2
    finally:
        for e in envs.values():
            e.close()
