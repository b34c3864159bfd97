"""Dataset interchange: Minari export loads with Minari and imports back exactly; LeRobot v3 export has the
layout, schema, statistics and videos LeRobot reads; bad input gets typed errors."""

import json
import shutil
import sys

import numpy as np
import pytest

from cosmos_sim import cli
from cosmos_sim.data import EpisodeDataset, read_manifest
from cosmos_sim.data import interchange as ic
from cosmos_sim.data import minari as minari_format
from cosmos_sim.data.inspect import verify
from cosmos_sim.errors import (
    CorruptDataError,
    DatasetError,
    DatasetMismatchError,
    InputError,
    MissingPackageError,
    MissingPathError,
    UnknownChoiceError,
)
from cosmos_sim.worlds import get_world

KEYS = ("pixels", "states", "actions", "rewards", "extrinsics", "fovy", "terminated", "truncated")


@pytest.fixture(scope="module")
def source(push_views_data):
    return push_views_data  # three Push episodes at 32x32 from random cameras (tests/conftest.py)


@pytest.fixture(scope="module")
def episodes(source):
    ds = EpisodeDataset(source)
    return [ds[i] for i in range(len(ds))]


def assert_same_datasets(got_dir, want_dir) -> None:
    got, want = EpisodeDataset(got_dir), EpisodeDataset(want_dir)
    assert got.seeds == want.seeds and got.spec == want.spec
    for i in range(len(want)):
        g, w = got[i], want[i]
        for key in KEYS:
            np.testing.assert_array_equal(g[key], w[key], err_msg=key)
            assert g[key].dtype == w[key].dtype, key
        assert g["metadata"] == w["metadata"]
    assert got.digest() == want.digest()


# --- Minari ------------------------------------------------------------------------------------------------
def test_minari_export_loads_with_minari_and_equals_ours(source, episodes, tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    monkeypatch.setattr(minari_format, "MINARI_BATCH", 2)  # first batch creates the dataset, the next one appends to it
    r = ic.export_minari(source, tmp_path, progress=False)
    assert r["dataset_id"] == "cosmos_sim/push/push_data-v0" and r["episodes"] == 3
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    data = minari.load_dataset(r["dataset_id"])
    assert data.total_episodes == 3 and data.total_steps == sum(len(ep["actions"]) for ep in episodes)
    assert data.env_spec.id == "cosmos_sim/Push-v0"
    assert data.env_spec.kwargs == {"world": "Push", "backend": "mujoco", "image_size": 32, "camera": "random"}
    assert r["dataset_id"] in minari.list_local_datasets()
    metas = list(data.storage.get_episode_metadata(range(3)))
    for ep, got, meta in zip(episodes, data.iterate_episodes(), metas, strict=True):
        np.testing.assert_array_equal(got.observations["pixels"], ep["pixels"])
        np.testing.assert_array_equal(got.observations["state"], ep["states"])
        np.testing.assert_array_equal(got.actions, ep["actions"])
        np.testing.assert_array_equal(got.rewards, ep["rewards"])
        np.testing.assert_array_equal(got.terminations, ep["terminated"].astype(bool))
        np.testing.assert_array_equal(got.truncations, ep["truncated"].astype(bool))
        np.testing.assert_array_equal(got.infos["extrinsics"], ep["extrinsics"])
        np.testing.assert_array_equal(got.infos["fovy"][:, 0], ep["fovy"])
        assert meta["seed"] == ep["metadata"]["seed"]
    env = data.recover_environment()
    try:
        assert env.observation_space["pixels"].shape == (32, 32, 3)
        assert env.observation_space["state"].shape == data.observation_space["state"].shape
    finally:
        env.close()
    with pytest.raises(DatasetError, match="already exists"):
        ic.export_minari(source, tmp_path, progress=False)
    r = ic.export_minari(source, tmp_path, ic.MinariExportConfig(version=1), progress=False)
    assert r["dataset_id"].endswith("-v1")


def test_minari_round_trip_is_exact(source, tmp_path):
    pytest.importorskip("minari")
    r = ic.export_minari(source, tmp_path / "root", ic.MinariExportConfig(name="trip"), progress=False)
    manifest = ic.import_minari(r["path"], tmp_path / "back", progress=False)  # by path: no env var needed
    assert verify(tmp_path / "back") == []
    assert_same_datasets(tmp_path / "back", source)
    src = read_manifest(source)
    for key in ("world", "world_hash", "image_size", "action_dim", "state_dim", "state_layout", "collection"):
        assert manifest[key] == src[key], key


def _foreign(tmp_path, monkeypatch, episodes, observations):
    """A Minari dataset not made by us: no manifest, no episode metadata of ours, no env spec."""
    import minari
    from gymnasium import spaces
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    obs_space = spaces.Dict({"pixels": spaces.Box(0, 255, (32, 32, 3), np.uint8),
                             "state": spaces.Box(-np.inf, np.inf, (12,), np.float32)})
    if observations == "state":
        obs_space = obs_space["state"]
    buffers = []
    for i, ep in enumerate(episodes):
        obs = ep["states"] if observations == "state" else {"pixels": ep["pixels"], "state": ep["states"]}
        buffers.append(EpisodeBuffer(id=i, observations=obs, actions=ep["actions"], rewards=ep["rewards"],
                                     terminations=ep["terminated"].astype(bool),
                                     truncations=ep["truncated"].astype(bool)))
    name = f"other/{observations}-v0"
    with pytest.warns(UserWarning):  # Minari's own warnings about unset fields
        minari.create_dataset_from_buffers(name, buffers, observation_space=obs_space,
                                           action_space=spaces.Box(-1, 1, (2,), np.float32), data_format="arrow",
                                           jpeg_encoding=False)
    return name


def test_foreign_minari_import_names_what_is_missing(episodes, tmp_path, monkeypatch):
    pytest.importorskip("minari")
    states_only = _foreign(tmp_path, monkeypatch, episodes, "state")
    with pytest.raises(DatasetMismatchError, match="'pixels'"):
        ic.import_minari(states_only, tmp_path / "a", ic.MinariImportConfig(world="push"), progress=False)
    with_pixels = _foreign(tmp_path, monkeypatch, episodes, "both")
    with pytest.raises(DatasetMismatchError, match="--world"):
        ic.import_minari(with_pixels, tmp_path / "a", progress=False)
    with pytest.raises(DatasetMismatchError, match="world Reach has a state of 10 numbers"):
        ic.import_minari(with_pixels, tmp_path / "a", ic.MinariImportConfig(world="reach"), progress=False)
    with pytest.raises(DatasetMismatchError, match="camera pose"):
        ic.import_minari(with_pixels, tmp_path / "a", ic.MinariImportConfig(world="push"), progress=False)
    assert not (tmp_path / "a").exists()
    m = ic.import_minari(with_pixels, tmp_path / "a", ic.MinariImportConfig(world="push", default_camera=True),
                         progress=False)
    assert verify(tmp_path / "a") == [] and m["collection"]["policy"] == "minari:other/both-v0"
    ds = EpisodeDataset(tmp_path / "a")
    np.testing.assert_array_equal(ds[1]["states"], episodes[1]["states"])
    camera = get_world("push").default_camera
    np.testing.assert_array_equal(ds[1]["extrinsics"][0], camera.extrinsics().astype(np.float32))
    np.testing.assert_array_equal(ds[1]["fovy"], np.float32(camera.fovy))
    assert ds.seeds == [0, 1, 2]  # no seeds recorded: the episode ids stand in


def test_minari_errors(source, tmp_path, monkeypatch):
    pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(MissingPathError, match="nothing is downloaded"):
        ic.import_minari("cosmos_sim/push/nothing-v0", tmp_path / "x", progress=False)
    with pytest.raises(DatasetError, match="not a Minari dataset"):
        ic.import_minari(str(source), tmp_path / "x", progress=False)
    with pytest.raises(UnknownChoiceError, match="import format 'hdf5'"):
        ic.import_dataset(str(source), tmp_path / "x", "hdf5")
    monkeypatch.setitem(sys.modules, "minari", None)  # as if minari were not installed
    with pytest.raises(MissingPackageError, match=r"pip install 'cosmos_sim\[minari\]'"):
        ic.export_minari(source, tmp_path, progress=False)


# --- LeRobot v3 ----------------------------------------------------------------------------------------------
def test_lerobot_export_layout_schema_stats_and_videos(source, episodes, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import imageio.v2 as iio
    import pyarrow.parquet as pq

    out = tmp_path / "lerobot"
    r = ic.export_lerobot(source, out, progress=False)
    lengths = [len(ep["actions"]) for ep in episodes]  # T rows per episode: the frame after the last action is left
    total = sum(lengths)
    assert r == {"format": "lerobot", "path": str(out), "episodes": 3, "frames": total, "fps": 10}
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, total, 1)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["splits"] == {"train": "0:3"} and info["chunks_size"] == 1000
    f = info["features"]
    assert f["observation.image"]["dtype"] == "video" and f["observation.image"]["shape"] == [32, 32, 3]
    assert f["observation.image"]["names"] == ["height", "width", "channels"]
    assert f["observation.state"] == {"dtype": "float32", "shape": [12],
                                      "names": get_world("push").state_layout.labels()}
    assert f["action"] == {"dtype": "float32", "shape": [2], "names": ["pusher_vx", "pusher_vy"]}
    for key, dtype in (("next.reward", "float32"), ("next.done", "bool"), ("next.success", "bool"),
                       ("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                       ("index", "int64"), ("task_index", "int64")):
        assert f[key] == {"dtype": dtype, "shape": [1], "names": None}, key

    # frames: one parquet file, one row group per episode, a column per feature (the video aside)
    table = pq.read_table(out / info["data_path"].format(chunk_index=0, file_index=0))
    assert table.column_names == [k for k in f if f[k]["dtype"] != "video"]
    assert pq.ParquetFile(out / "data/chunk-000/file-000.parquet").num_row_groups == 3
    assert table.schema.field("observation.state").type == pa.list_(pa.float32(), 12)
    assert table.schema.field("action").type == pa.list_(pa.float32(), 2)
    assert table.schema.field("next.done").type == pa.bool_()
    assert table.schema.field("timestamp").type == pa.float32()
    cols = table.to_pydict()
    assert cols["index"] == list(range(total))
    start = 0
    for e, (ep, T) in enumerate(zip(episodes, lengths, strict=True)):
        rows = slice(start, start + T)
        assert cols["episode_index"][rows] == [e] * T and cols["frame_index"][rows] == list(range(T))
        np.testing.assert_allclose(cols["timestamp"][rows], np.arange(T) / 10, atol=1e-6)
        np.testing.assert_array_equal(np.array(cols["observation.state"][rows], np.float32), ep["states"][:T])
        np.testing.assert_array_equal(np.array(cols["action"][rows], np.float32), ep["actions"])
        np.testing.assert_array_equal(np.array(cols["next.reward"][rows], np.float32), ep["rewards"])
        assert cols["next.done"][rows] == [False] * (T - 1) + [True]
        assert cols["next.success"][start + T - 1] == ep["metadata"]["success"]
        start += T

    # episodes, tasks and statistics
    eps = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert eps["episode_index"] == [0, 1, 2] and eps["length"] == lengths and eps["tasks"] == [[eps["tasks"][0][0]]] * 3
    assert eps["dataset_from_index"] == [0, lengths[0], lengths[0] + lengths[1]]
    assert eps["dataset_to_index"] == np.cumsum(lengths).tolist()
    assert eps["data/chunk_index"] == eps["data/file_index"] == [0, 0, 0]
    np.testing.assert_allclose(eps["videos/observation.image/from_timestamp"], np.array(eps["dataset_from_index"]) / 10)
    np.testing.assert_allclose(eps["videos/observation.image/to_timestamp"], np.array(eps["dataset_to_index"]) / 10)
    assert eps["cosmos_sim/seed"] == [0, 1, 2]
    assert eps["stats/observation.state/count"] == [[T] for T in lengths]
    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert tasks.to_pydict() == {"task_index": [0], "task": [get_world("push").description]}
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]  # LeRobot reads it with pandas
    stats = json.loads((out / "meta/stats.json").read_text())
    assert set(stats) == set(f)
    for key in ("observation.state", "action", "observation.image", "index"):
        assert set(stats[key]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert stats["observation.state"]["count"] == [total]
    np.testing.assert_allclose(stats["action"]["mean"], np.concatenate([ep["actions"] for ep in episodes]).mean(0),
                               rtol=1e-5, atol=1e-6)
    assert np.array(stats["observation.image"]["mean"]).shape == (3, 1, 1)

    # the video: decodable, one frame per row, the right size, close to ours (H.264 is lossy)
    frames = np.stack(iio.mimread(out / "videos/observation.image/chunk-000/file-000.mp4", memtest=False))
    assert frames.shape == (total, 32, 32, 3)
    ours = np.concatenate([ep["pixels"][:T] for ep, T in zip(episodes, lengths, strict=True)])
    assert np.abs(frames.astype(int) - ours).mean() < 8


def test_lerobot_files_roll_over(source, episodes, tmp_path):
    pytest.importorskip("pyarrow")
    import imageio.v2 as iio
    import pyarrow.parquet as pq

    out = tmp_path / "small_files"
    ic.export_lerobot(source, out, ic.LeRobotExportConfig(data_file_mb=1e-4, video_file_mb=1e-4, chunks_size=2),
                      progress=False)
    eps = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    # a file per episode, two files per chunk: (0, 0), (0, 1), (1, 0)
    assert list(zip(eps["data/chunk_index"], eps["data/file_index"], strict=True)) == [(0, 0), (0, 1), (1, 0)]
    assert eps["videos/observation.image/from_timestamp"] == [0.0, 0.0, 0.0]
    for e, ep in enumerate(episodes):
        chunk, file = eps["data/chunk_index"][e], eps["data/file_index"][e]
        rows = pq.read_table(out / f"data/chunk-{chunk:03d}/file-{file:03d}.parquet").to_pydict()
        assert rows["episode_index"] == [e] * len(ep["actions"])
        assert rows["index"][0] == eps["dataset_from_index"][e]
        video = out / f"videos/observation.image/chunk-{chunk:03d}/file-{file:03d}.mp4"
        assert len(iio.mimread(video, memtest=False)) == len(ep["actions"])


def test_lerobot_refuses_a_used_directory_and_missing_pyarrow(source, tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("keep me")
    with pytest.raises(DatasetError, match="not an empty directory"):
        ic.export_lerobot(source, tmp_path / "used", progress=False)
    assert (tmp_path / "used" / "file").read_text() == "keep me"
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingPackageError, match=r"pip install 'cosmos_sim\[lerobot\]'"):
        ic.export_lerobot(source, tmp_path / "x", progress=False)


# --- bad input and the command line ---------------------------------------------------------------------------
def test_bad_input_is_refused_with_typed_errors(source, tmp_path):
    with pytest.raises(UnknownChoiceError, match="unknown export format 'hdf5'"):
        ic.export_dataset(source, tmp_path / "x", "hdf5")
    with pytest.raises(MissingPathError, match="no dataset directory"):
        ic.export_dataset(tmp_path / "nowhere", tmp_path / "x", "lerobot")
    bad = tmp_path / "bad"
    shutil.copytree(source, bad)
    shard = bad / read_manifest(bad)["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[-64] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="fails verification"):
        ic.export_dataset(bad, tmp_path / "x", "lerobot")
    assert not (tmp_path / "x").exists()


def test_each_format_takes_its_own_config(source, tmp_path, capsys):
    """The flags of `data export|import` (ExportConfig, ImportConfig) hold every format's options; each format
    reads its own: an export option of the other format is ignored, an import option of it given a value refused."""
    from cosmos_sim.data.interchange_common import own_config

    flags = ic.ExportConfig(name="n", version=2, verify=False, fps=5, lossless=True)
    assert isinstance(flags, ic.MinariExportConfig) and isinstance(flags, ic.LeRobotExportConfig)
    assert own_config(ic.MinariExportConfig, flags) == ic.MinariExportConfig(name="n", version=2, verify=False)
    assert own_config(ic.LeRobotExportConfig, flags) == ic.LeRobotExportConfig(fps=5, lossless=True, verify=False)
    assert own_config(ic.LeRobotImportConfig, ic.ImportConfig(world="push", image_size=16)) == \
        ic.LeRobotImportConfig(world="push", image_size=16)
    assert own_config(ic.MinariImportConfig, None) == ic.MinariImportConfig()
    with pytest.raises(InputError, match="LeRobot export needs fps >= 1"):  # checked whatever the format, as its flag
        ic.ExportConfig(fps=0)
    with pytest.raises(InputError, match="Minari export needs version >= 0"):
        ic.ExportConfig(version=-1)
    with pytest.raises(InputError, match="expected a MinariExportConfig, got a LeRobotExportConfig"):
        ic.export_dataset(source, tmp_path / "x", "minari", ic.LeRobotExportConfig())
    with pytest.raises(InputError, match="resizes LeRobot imports"):
        ic.import_dataset(str(source), tmp_path / "x", "minari", ic.ImportConfig(image_size=16))
    assert cli.main(["data", "import", "--format", "minari", str(source), str(tmp_path / "x"), "--image-size", "16",
                     "--no-progress"]) == 1
    assert "--image-size" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_export_import(source, tmp_path, capsys, monkeypatch):
    pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "root"))
    assert cli.main(["data", "export", "--format", "minari", str(source), str(tmp_path / "root"), "--name", "cli",
                     "--no-progress"]) == 0
    assert "minari.load_dataset('cosmos_sim/push/cli-v0')" in capsys.readouterr().out
    assert cli.main(["data", "import", "--format", "minari", "cosmos_sim/push/cli-v0", str(tmp_path / "back"),
                     "--no-progress"]) == 0
    assert "3 episodes of Push" in capsys.readouterr().out
    assert_same_datasets(tmp_path / "back", source)
    assert cli.main(["data", "export", "--format", "lerobot", str(source), str(tmp_path / "lr"), "--fps", "5",
                     "--no-progress"]) == 0
    assert "LeRobot v3.0 dataset (3 episodes" in capsys.readouterr().out
    assert json.loads((tmp_path / "lr" / "meta" / "info.json").read_text())["fps"] == 5
    for argv, message in ((["export", "--format", "hdf5", str(source), str(tmp_path / "y")], "unknown export format"),
                          (["export", "--format", "lerobot", str(tmp_path / "nowhere"), str(tmp_path / "y")],
                           "no dataset directory"),
                          (["import", "--format", "minari", "cosmos_sim/push/none-v0", str(tmp_path / "y")],
                           "no Minari dataset")):
        assert cli.main(["data", *argv, "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("cosmos-sim: error:") and message in err and len(err.splitlines()) == 1
