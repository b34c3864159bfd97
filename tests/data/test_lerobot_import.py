"""LeRobot v3.0 import: our export comes back exactly (one view and several), a dataset written to the v3.0 layout
by hand (no world of ours: a real robot's) becomes a `DatasetWorld` dataset, bad input gets typed errors and
leaves nothing behind, and a world model trains on such data and is compared open loop."""

import json
import shutil
import sys

import numpy as np
import pytest

from cosmos_sim import cli
from cosmos_sim.data import CollectConfig, EpisodeDataset, collect, read_manifest
from cosmos_sim.data import interchange as ic
from cosmos_sim.data.inspect import verify
from cosmos_sim.errors import (
    CorruptDataError,
    DatasetError,
    DatasetMismatchError,
    InputError,
    MissingPackageError,
    MissingPathError,
    NoSimulatorError,
)
from cosmos_sim.worlds import DatasetWorld, get_world

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

KEYS = ("pixels", "states", "actions", "rewards", "extrinsics", "fovy", "terminated", "truncated")
FPS = 10
SIZE = 32
LENGTHS = (12, 1, 9, 15)  # rows per episode; the second has one frame, so no step
STATE_NAMES = ["shoulder", "elbow", "wrist", "gripper"]
ACTION_NAMES = ["m0", "m1", "m2"]


# --- our own export --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source(push_views_data):
    return push_views_data  # three Push episodes at 32x32 from random cameras (tests/conftest.py)


def assert_same_datasets(got_dir, want_dir, pixels: bool = True) -> None:
    got, want = EpisodeDataset(got_dir), EpisodeDataset(want_dir)
    assert got.seeds == want.seeds and got.spec == want.spec
    for i in range(len(want)):
        g, w = got[i], want[i]
        for key in KEYS:
            if key == "pixels" and not pixels:
                assert g[key].shape == w[key].shape and np.abs(g[key].astype(int) - w[key]).mean() < 8
                continue
            np.testing.assert_array_equal(g[key], w[key], err_msg=key)
            assert g[key].dtype == w[key].dtype, key
        assert g["metadata"] == w["metadata"]
    if pixels:
        assert got.digest() == want.digest()


def test_our_lossless_export_round_trips_exactly(source, tmp_path):
    r = ic.export_lerobot(source, tmp_path / "lr", ic.LeRobotExportConfig(lossless=True), progress=False)
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["features"]["observation.image"]["info"]["video.pix_fmt"] == "gbrp"
    assert r["frames"] == sum(len(EpisodeDataset(source)[i]["actions"]) for i in range(3))  # T rows per episode
    manifest = ic.import_dataset(tmp_path / "lr", tmp_path / "back", "lerobot", progress=False)
    assert verify(tmp_path / "back") == []
    assert_same_datasets(tmp_path / "back", source)
    src = read_manifest(source)
    assert {k: v for k, v in manifest.items() if k != "shards"} == {k: v for k, v in src.items() if k != "shards"}
    assert "lerobot_import" not in manifest  # nothing was lossy


def test_lossy_export_round_trips_all_but_the_frames(source, tmp_path, capsys):
    ic.export_lerobot(source, tmp_path / "lr", progress=False)  # H.264 yuv420p, as LeRobot writes
    assert cli.main(["data", "import", "--format", "lerobot", str(tmp_path / "lr"), str(tmp_path / "back"),
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 episodes of Push" in out and "export with --lossless" in out
    assert_same_datasets(tmp_path / "back", source, pixels=False)
    m = read_manifest(tmp_path / "back")
    assert m["lerobot_import"]["frames_differing"] > 0 and m["lerobot_import"]["pixels"] == "lossy (H.264)"
    assert m["world"] == "Push" and m["collection"] == read_manifest(source)["collection"]


def test_multi_view_export_round_trips_exactly(tmp_path):
    src = tmp_path / "views"
    collect(CollectConfig(world="push", policy="mix", camera="random", image_size=SIZE, episodes=2, views=2), src,
            progress=False)
    ic.export_lerobot(src, tmp_path / "lr", ic.LeRobotExportConfig(lossless=True), progress=False)
    f = json.loads((tmp_path / "lr/meta/info.json").read_text())["features"]
    assert [k for k in f if f[k]["dtype"] == "video"] == ["observation.images.view0", "observation.images.view1"]
    assert f["observation.camera.view1.extrinsics"]["shape"] == [16]
    assert (tmp_path / "lr/videos/observation.images.view1/chunk-000/file-000.mp4").is_file()
    ic.import_lerobot(tmp_path / "lr", tmp_path / "back", progress=False)
    assert EpisodeDataset(tmp_path / "back").spec.views == 2
    assert_same_datasets(tmp_path / "back", src)


def test_an_export_without_our_episode_columns_imports_as_data_of_its_world(source, tmp_path):
    """Without the final frames (an export from before they were kept) the rows are LeRobot frames as any: the
    world comes from meta/cosmos_sim.json, the camera from our camera columns, and T = N - 1."""
    ic.export_lerobot(source, tmp_path / "lr", ic.LeRobotExportConfig(lossless=True), progress=False)
    path = tmp_path / "lr/meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.select([c for c in table.column_names if not c.startswith("cosmos_sim/final")]), path)
    m = ic.import_lerobot(tmp_path / "lr", tmp_path / "back", progress=False)
    assert m["world"] == "Push" and m["collection"]["backend"] == "mujoco" and verify(tmp_path / "back") == []
    got, want = EpisodeDataset(tmp_path / "back"), EpisodeDataset(source)
    assert got.seeds == want.seeds  # the episode indices, here the same as the seeds
    for i in range(len(want)):
        g, w = got[i], want[i]
        T = len(w["actions"]) - 1  # the exported rows (T + 1 of them) less the last one's action
        np.testing.assert_array_equal(g["pixels"], w["pixels"][:T + 1])  # lossless
        np.testing.assert_array_equal(g["extrinsics"], w["extrinsics"][:T + 1])
        np.testing.assert_array_equal(g["actions"], w["actions"][:T])
        assert g["truncated"][-1] == 1 and g["metadata"]["success"] == bool(get_world("push").success(w["states"][T]))


# --- a v3.0 dataset written by hand: a real robot's, no world of ours -------------------------------------------
def frame(e: int, i: int, cam: int) -> np.ndarray:
    """A smooth test image: a bright square moving over a gradient, different per episode and camera."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    img = np.stack([x * 4 + 30 * cam, y * 3 + 20 * e, np.full_like(x, 90 + 40 * cam)], -1).astype(np.int32)
    c = (3 * i + 5 * e + 7 * cam) % (SIZE - 10)
    img[8:18, c:c + 10] = 235
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_video(path, frames, codec: str) -> None:
    import imageio.v2 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    params = {"libsvtav1": ["-crf", "20", "-preset", "10", "-g", "2"], "libx264": ["-crf", "18", "-g", "2"]}[codec]
    w = iio.get_writer(path, format="FFMPEG", mode="I", fps=FPS, codec=codec, pixelformat="yuv420p", quality=None,
                       macro_block_size=1, ffmpeg_log_level="error", output_params=params)
    for f in frames:
        w.append_data(f)
    w.close()


def robot_data(rng: np.random.Generator) -> list[dict]:
    eps = []
    for e, n in enumerate(LENGTHS):
        done = np.zeros(n, bool)
        done[-1] = True
        if e == 3:
            done[-2] = True  # the last kept step ends the episode: terminated, not truncated
        eps.append({"state": rng.normal(size=(n, 4)).astype(np.float32),
                    "action": rng.uniform(-90, 90, size=(n, 3)).astype(np.float32),
                    "reward": np.linspace(0, 1, n, dtype=np.float32), "done": done})
    return eps


def write_robot_dataset(root, eps: list[dict]) -> None:
    """The LeRobot v3.0 layout as its docs and lerobot/datasets/utils.py describe it, written with pyarrow and
    ffmpeg (not by our exporter): two cameras (AV1, LeRobot's default codec, and H.264) in video files that hold
    several episodes, two data files, a string and an audio feature we do not use."""
    scalar = {"shape": [1], "names": None}
    cams = {"observation.images.top": "libsvtav1", "observation.images.wrist": "libx264"}
    features = {
        **{k: {"dtype": "video", "shape": [SIZE, SIZE, 3], "names": ["height", "width", "channels"],
               "info": {"video.fps": FPS, "video.codec": "av1" if c == "libsvtav1" else "h264",
                        "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "has_audio": False}}
           for k, c in cams.items()},
        "observation.state": {"dtype": "float32", "shape": [4], "names": STATE_NAMES},
        "action": {"dtype": "float32", "shape": [3], "names": {"motors": ACTION_NAMES}},
        "next.reward": {"dtype": "float32", **scalar}, "next.done": {"dtype": "bool", **scalar},
        "language_instruction": {"dtype": "string", **scalar},
        "observation.audio": {"dtype": "audio", "shape": [1], "names": None},
        **{k: {"dtype": "float32" if k == "timestamp" else "int64", **scalar}
           for k in ("timestamp", "frame_index", "episode_index", "index", "task_index")},
    }
    data_file = {0: 0, 1: 0, 2: 1, 3: 1}  # episode -> data file
    video_file = {"observation.images.top": {0: 0, 1: 0, 2: 0, 3: 1}, "observation.images.wrist": {0: 0, 1: 0, 2: 0,
                                                                                                    3: 0}}
    rows: dict[int, dict[str, list]] = {}
    episodes: dict[str, list] = {}
    videos: dict[tuple[str, int], list] = {}
    index = 0
    for e, ep in enumerate(eps):
        n = len(ep["action"])
        r = rows.setdefault(data_file[e], {})
        for key, value in (("observation.state", list(ep["state"])), ("action", list(ep["action"])),
                           ("next.reward", list(ep["reward"])), ("next.done", list(ep["done"])),
                           ("language_instruction", ["pick the cube"] * n),
                           ("timestamp", list(np.arange(n, dtype=np.float32) / FPS)),
                           ("frame_index", list(range(n))), ("episode_index", [e] * n),
                           ("index", list(range(index, index + n))), ("task_index", [0] * n)):
            r.setdefault(key, []).extend(value)
        row = {"episode_index": e, "tasks": ["pick the cube"], "length": n, "data/chunk_index": 0,
               "data/file_index": data_file[e], "dataset_from_index": index, "dataset_to_index": index + n}
        for c, key in enumerate(cams):
            frames = videos.setdefault((key, video_file[key][e]), [])
            start = len(frames) / FPS
            frames.extend(frame(e, i, c) for i in range(n))
            row |= {f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": video_file[key][e],
                    f"videos/{key}/from_timestamp": start, f"videos/{key}/to_timestamp": start + n / FPS}
        row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for key, value in row.items():
            episodes.setdefault(key, []).append(value)
        index += n
    for f, r in rows.items():
        table = {}
        for key, values in r.items():
            a = np.asarray(values)
            table[key] = (pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1).astype(np.float32)), a.shape[1])
                          if a.ndim == 2 else pa.array(values if a.dtype.kind in "U" else a))
        path = root / f"data/chunk-000/file-{f:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(table), path)
    for (key, f), frames in videos.items():
        _write_video(root / f"videos/{key}/chunk-000/file-{f:03d}.mp4", frames, cams[key])
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(episodes), root / "meta/episodes/chunk-000/file-000.parquet")
    pq.write_table(pa.table({"task_index": [0], "task": ["pick the cube"]}), root / "meta/tasks.parquet")
    info = {"codebase_version": "v3.0", "robot_type": "toy_arm", "total_episodes": len(eps), "total_frames": index,
            "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": FPS, "splits": {"train": f"0:{len(eps)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": features}
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))


@pytest.fixture(scope="module")
def robot(tmp_path_factory):
    """(directory, episodes as written) of a hand-written LeRobot v3.0 dataset of no world of ours."""
    root = tmp_path_factory.mktemp("robot_src") / "robot"
    eps = robot_data(np.random.default_rng(0))
    write_robot_dataset(root, eps)
    return root, eps


@pytest.fixture(scope="module")
def robot_import(robot, tmp_path_factory):
    out = tmp_path_factory.mktemp("robot_import") / "data"
    manifest = ic.import_lerobot(robot[0], out, ic.LeRobotImportConfig(shard_mb=0.05), progress=False)
    return out, manifest


def test_world_less_dataset_imports_with_a_world_described_from_its_features(robot, robot_import):
    _, eps = robot
    out, m = robot_import
    assert verify(out) == []
    assert m["world"].startswith("lerobot:robot?") and m["views"] == 2 and m["image_size"] == [SIZE, SIZE]
    world = get_world(m["world"])  # the name alone rebuilds it
    assert isinstance(world, DatasetWorld) and world.name == m["world"] and not world.simulator
    assert world.state_layout.names == tuple(STATE_NAMES) and world.action_names == tuple(ACTION_NAMES)
    assert world.control_dt == pytest.approx(1 / FPS) and world.max_episode_steps == max(LENGTHS) - 1
    assert world.video_keys == ("observation.images.top", "observation.images.wrist")
    assert m["source"]["skipped_episodes"] == [1]  # one row: no step
    assert set(m["source"]["ignored_features"]) == {"language_instruction", "observation.audio"}
    assert m["source"]["has_reward"] and not m["source"]["has_success"]

    ds = EpisodeDataset(out)
    assert ds.seeds == [0, 2, 3] and ds.spec.views == 2
    everything = np.concatenate([ep["action"] for ep in eps])
    np.testing.assert_allclose(world.low, everything.min(0), rtol=1e-6)
    np.testing.assert_allclose(world.high, everything.max(0), rtol=1e-6)
    for i, e in enumerate(ds.seeds):
        got, want, n = ds[i], eps[e], LENGTHS[e]
        assert got["pixels"].shape == (n, 2, SIZE, SIZE, 3)  # N frames
        assert got["actions"].shape == (n - 1, 3)  # N - 1 steps
        np.testing.assert_array_equal(got["states"], want["state"])
        assert np.abs(got["actions"]).max() <= 1.0
        np.testing.assert_allclose(world.to_source_action(got["actions"]), want["action"][:-1], atol=2e-3)
        np.testing.assert_array_equal(got["rewards"], want["reward"][:-1])
        terminated = e == 3  # its last kept row says done; the others stop where the recording stopped
        assert got["terminated"][-1] == terminated and got["truncated"][-1] == (not terminated)
        assert not got["terminated"][:-1].any() and not got["truncated"][:-1].any()
        for c in range(2):
            written = np.stack([frame(e, t, c) for t in range(n)])
            assert np.abs(got["pixels"][:, c].astype(int) - written).mean() < 4  # AV1 / H.264: close, not exact
            np.testing.assert_array_equal(got["extrinsics"][:, c], np.repeat(
                world.cameras[c].extrinsics()[None].astype(np.float32), n, 0))
        meta = got["metadata"]
        assert meta["world"] == m["world"] and meta["backend"] == "lerobot" and meta["task"] == "pick the cube"
        assert meta["step_success"] == [0] * (n - 1) and meta["has_reward"] and meta["length"] == n - 1


def test_a_world_less_dataset_has_no_simulator(robot_import, tmp_path, capsys):
    from cosmos_sim.envs.physics_env import PhysicsEnv
    from cosmos_sim.envs.registration import make_world_vec_env

    name = robot_import[1]["world"]
    world = get_world(name)
    with pytest.raises(NoSimulatorError, match="no simulator"):
        PhysicsEnv(world)
    with pytest.raises(NoSimulatorError, match="collection"):
        CollectConfig(world=name)
    with pytest.raises(NoSimulatorError, match="no simulator"):
        make_world_vec_env(name, num_envs=2, backend="mujoco")
    with pytest.raises(NoSimulatorError, match="learned reward head"):
        world.reward(np.zeros((1, 4)), np.zeros((1, 3)))
    assert cli.main(["collect", "--world", name, "--out", str(tmp_path / "c"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no simulator" in err and len(err.splitlines()) == 1
    # an imported world-less dataset exports to LeRobot again (its success flags come from the data)
    ic.export_lerobot(robot_import[0], tmp_path / "again", progress=False)
    assert json.loads((tmp_path / "again/meta/info.json").read_text())["features"]["action"]["names"] == ACTION_NAMES


def test_image_size_resizes_every_camera(robot, tmp_path):
    m = ic.import_lerobot(robot[0], tmp_path / "small", ic.LeRobotImportConfig(image_size=16), progress=False)
    assert m["image_size"] == [16, 16] and EpisodeDataset(tmp_path / "small")[0]["pixels"].shape[1:] == (2, 16, 16, 3)


def test_image_features_are_cameras_too(tmp_path):
    """`image` features (PNG bytes in the data parquet, as LeRobot stores them without videos) come back exactly."""
    import io

    from PIL import Image

    def png(a):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "PNG")
        return buf.getvalue()

    rng = np.random.default_rng(1)
    lengths = (5, 7)
    frames = [rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8) for n in lengths]
    root, rows, eps = tmp_path / "images", {}, {}
    for e, n in enumerate(lengths):
        first = sum(lengths[:e])
        for key, value in (("observation.image", [{"bytes": png(f), "path": None} for f in frames[e]]),
                           ("observation.state", [[float(i), float(e)] for i in range(n)]),
                           ("action", [[0.5 * i] for i in range(n)]), ("episode_index", [e] * n),
                           ("frame_index", list(range(n))), ("timestamp", [i / 5 for i in range(n)])):
            rows.setdefault(key, []).extend(value)
        for key, value in (("episode_index", e), ("dataset_from_index", first), ("dataset_to_index", first + n),
                           ("data/chunk_index", 0), ("data/file_index", 0), ("tasks", ["stack"]), ("length", n)):
            eps.setdefault(key, []).append(value)
    for path, table in (("data/chunk-000/file-000.parquet", rows), ("meta/episodes/chunk-000/file-000.parquet", eps)):
        (root / path).parent.mkdir(parents=True)
        pq.write_table(pa.table(table), root / path)
    (root / "meta/info.json").write_text(json.dumps({
        "codebase_version": "v3.0", "fps": 5, "video_path": None,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "features": {"observation.image": {"dtype": "image", "shape": [16, 16, 3], "names": ["height", "width", "c"]},
                     "observation.state": {"dtype": "float32", "shape": [2], "names": None},
                     "action": {"dtype": "float32", "shape": [1], "names": None}}}))
    m = ic.import_lerobot(root, tmp_path / "back", progress=False)
    ds = EpisodeDataset(tmp_path / "back")
    assert m["source"]["cameras"] == ["observation.image"] and ds.spec.views == 1 and ds.spec.image_size == (16, 16)
    for e in range(2):
        np.testing.assert_array_equal(ds[e]["pixels"], frames[e])  # PNG: exact
        assert not ds[e]["metadata"]["has_reward"] and not ds[e]["rewards"].any()
    np.testing.assert_allclose(ds[1]["actions"].ravel(), np.linspace(-1, 1, 7)[:6], atol=1e-6)  # 0..3 onto [-1, 1]


# --- bad input -------------------------------------------------------------------------------------------------
def _broken(robot, tmp_path, name: str):
    root = tmp_path / name
    shutil.copytree(robot[0], root)
    return root


def _nothing_written(tmp_path, out) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*"))  # no staging directory left behind


def _edit_info(root, **changes) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    for key, value in changes.items():
        if key.startswith("feature:"):
            info["features"][key[8:]] = value
        else:
            info[key] = value
    (root / "meta/info.json").write_text(json.dumps(info))


def test_bad_input_is_refused_with_typed_errors_and_nothing_written(robot, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(MissingPathError, match="no LeRobot dataset directory"):
        ic.import_lerobot(tmp_path / "nowhere", out, progress=False)

    with pytest.raises(DatasetMismatchError, match="world Push has a state of 12"):  # --world push: it does not fit
        ic.import_lerobot(robot[0], out, ic.LeRobotImportConfig(world="push"), progress=False)
    with pytest.raises(InputError, match="--default-camera"):
        ic.import_lerobot(robot[0], out, ic.LeRobotImportConfig(default_camera=True), progress=False)

    root = _broken(robot, tmp_path, "no_info")
    (root / "meta/info.json").unlink()
    with pytest.raises(DatasetError, match=r"not a LeRobot dataset: .*meta/info.json is missing"):
        ic.import_lerobot(root, out, progress=False)

    root = _broken(robot, tmp_path, "old")
    _edit_info(root, codebase_version="v2.1")
    with pytest.raises(DatasetError, match=r"info.json: codebase_version 'v2.1'; only LeRobot v3.0"):
        ic.import_lerobot(root, out, progress=False)

    root = _broken(robot, tmp_path, "string_action")
    _edit_info(root, **{"feature:action": {"dtype": "string", "shape": [1], "names": None}})
    with pytest.raises(DatasetMismatchError, match="feature 'action' has dtype 'string'"):
        ic.import_lerobot(root, out, progress=False)

    root = _broken(robot, tmp_path, "no_state")
    info = json.loads((root / "meta/info.json").read_text())
    del info["features"]["observation.state"]
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetMismatchError, match="no feature 'observation.state'"):
        ic.import_lerobot(root, out, progress=False)

    root = _broken(robot, tmp_path, "unknown_dtype")  # a feature we do not need may be anything
    _edit_info(root, **{"feature:observation.effort": {"dtype": "complex128", "shape": [2], "names": None}})
    m = ic.import_lerobot(root, tmp_path / "fine", progress=False)
    assert "unknown" in m["source"]["ignored_features"]["observation.effort"]
    _nothing_written(tmp_path, out)


def test_short_or_unreadable_videos_are_refused(robot, tmp_path):
    import imageio.v2 as iio

    out = tmp_path / "out"
    root = _broken(robot, tmp_path, "short")  # the top camera's second file holds only episode 3 (15 rows)
    video = root / "videos/observation.images.top/chunk-000/file-001.mp4"
    frames = [np.asarray(f) for f in iio.get_reader(video, format="FFMPEG")][:10]
    video.unlink()
    _write_video(video, frames, "libx264")
    with pytest.raises(DatasetError, match=r"file-001.mp4 holds fewer decodable frames than the rows of episode 3"):
        ic.import_lerobot(root, out, ic.LeRobotImportConfig(shard_mb=0.001), progress=False)  # shards written before
    _nothing_written(tmp_path, out)

    root = _broken(robot, tmp_path, "garbage")
    (root / "videos/observation.images.wrist/chunk-000/file-000.mp4").write_bytes(b"\0not a video" * 100)
    with pytest.raises(DatasetError, match=r"cannot decode video .*observation.images.wrist/chunk-000/file-000.mp4"):
        ic.import_lerobot(root, out, progress=False)
    _nothing_written(tmp_path, out)


def test_missing_ffmpeg_or_pyarrow_is_named(robot, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if imageio-ffmpeg were not installed
    with pytest.raises(MissingPackageError, match="imageio-ffmpeg"):
        ic.import_lerobot(robot[0], tmp_path / "out", progress=False)
    _nothing_written(tmp_path, tmp_path / "out")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingPackageError, match=r"pip install 'cosmos_sim\[lerobot\]'"):
        ic.import_lerobot(robot[0], tmp_path / "out", progress=False)


def test_our_export_is_checked_on_import(source, tmp_path):
    ic.export_lerobot(source, tmp_path / "lr", ic.LeRobotExportConfig(lossless=True), progress=False)
    with pytest.raises(DatasetMismatchError, match="holds world Push, not Reach"):
        ic.import_lerobot(tmp_path / "lr", tmp_path / "out", ic.LeRobotImportConfig(world="reach"), progress=False)
    # a lossless export whose frame no longer matches its checksum is corrupt, not lossy
    eps = pq.read_table(tmp_path / "lr/meta/episodes/chunk-000/file-000.parquet")
    crc = eps.column("cosmos_sim/pixels_crc").to_pylist()
    crc[1][0] ^= 1
    eps = eps.set_column(eps.schema.get_field_index("cosmos_sim/pixels_crc"), "cosmos_sim/pixels_crc", pa.array(crc))
    pq.write_table(eps, tmp_path / "lr/meta/episodes/chunk-000/file-000.parquet")
    with pytest.raises(CorruptDataError, match="frame 0 of episode 1 differs from the frame exported"):
        ic.import_lerobot(tmp_path / "lr", tmp_path / "out", progress=False)
    _nothing_written(tmp_path, tmp_path / "out")


# --- a world model of a world-less dataset ---------------------------------------------------------------------
@pytest.mark.slow  # trains a tokenizer, a state model, a task head and dynamics
def test_world_model_trains_on_a_world_less_dataset_and_compares_open_loop(robot_import, tmp_path, capsys):
    from cosmos_sim.dynamics.train import StateModelConfig, train_world_model
    from cosmos_sim.evaluation.compare_data import DataCompareConfig, compare_data
    from cosmos_sim.training import TrainConfig
    from cosmos_sim.world_model import WorldModel

    data, m = robot_import
    run = tmp_path / "run"
    train_world_model(data, run, "tiny", "deterministic", "tiny", tokenizer_train=TrainConfig(steps=10, batch_size=4),
                      dynamics_train=TrainConfig(steps=10, batch_size=8, lr=3e-3, warmup_steps=2), progress=False,
                      state=StateModelConfig(steps=20, task_steps=20))
    wm = WorldModel.load(run)
    assert wm.world == m["world"] and wm.task_head is not None  # reward and termination learned from the data
    report = compare_data(DataCompareConfig(open_loop_episodes=2, horizon=6, videos=1), run, data, tmp_path / "rep",
                          progress=False)
    ol = report["open_loop"]
    assert ol["steps"] == list(range(1, 7)) and report["views"] == 2 and report["closed_loop"] is None
    assert all(np.isfinite(v) for v in ol["curves"]["psnr"]) and np.isfinite(ol["reward_mae_per_step"])
    assert report["episodes_from"] == "held out from training"
    assert "no simulator" in report["closed_loop_note"]
    md = (tmp_path / "rep/report.md").read_text()
    assert "## Open loop" in md and "## Closed loop" in md and "no simulator" in md
    assert (tmp_path / "rep/horizon.png").is_file() and len(report["files"]["videos"]) == 1

    assert cli.main(["compare", "--model", str(run), "--data", str(data), "--horizon", "4", "--open-loop-episodes",
                     "1", "--videos", "0", "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "PSNR h=1/4" in printed and "closed loop: not run" in printed and "no simulator" in printed
    assert cli.main(["compare", "--model", str(run), "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no simulator" in err and "--data DIR" in err and len(err.splitlines()) == 1
