"""The comparison report on a tiny model: every part written, deterministic, early errors."""

import json

import numpy as np
import pytest

import cosmos_sim
from cosmos_sim.cli import main
from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.evaluation.closed_loop import evaluate
from cosmos_sim.evaluation.compare import CompareConfig, compare

pytestmark = pytest.mark.slow  # uses the trained tiny world model


@pytest.fixture(scope="module")
def run(tiny_world_model):
    return tiny_world_model[0]


def test_report_complete_and_deterministic(run, tmp_path):
    cfg = CompareConfig(world="push", policies=("random", "scripted:0", "scripted:1"), episodes=3,
                        open_loop_episodes=2, horizon=5, videos=1)
    a = compare(cfg, run, tmp_path / "a", progress=False)
    compare(cfg, run, tmp_path / "b", progress=False)
    assert (tmp_path / "a" / "report.json").read_bytes() == (tmp_path / "b" / "report.json").read_bytes()
    for name in ("report.md", "horizon.png", "ranking.png", "episode0_seed0.mp4", "timing.json"):
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    assert a["schema"] == "cosmos_sim.report/1"
    ol = a["open_loop"]
    assert ol["steps"] == [1, 2, 3, 4, 5] and set(ol["pairs"]) == {"pybullet", "world_model"}
    pb = ol["pairs"]["pybullet"]
    assert len(pb["psnr"]["mean"]) == 5 and "state_error/block_pos" in pb
    assert max(pb["state_error/block_pos"]["mean"]) < 0.01  # the physics twins agree closely over 5 steps
    assert a["closed_loop"]["mujoco"]["scripted:1"]["success_rate"]["mean"] == 1.0
    pairs = a["ranking"]["pairs"]
    assert pairs["pybullet"]["success"]["spearman"] == pytest.approx(1.0)
    assert "| learned |" in (tmp_path / "a" / "report.md").read_text()
    assert a["model"]["cameras"].startswith("fixed (az ")  # the model's training cameras, in the report
    assert "trained cameras: fixed (az " in (tmp_path / "a" / "report.md").read_text()


def test_closed_loop_learned_matches_physics_start(run):
    """Episode i starts from the same state in every backend: the first rewards agree to the model's error."""
    r = evaluate("push", "world_model", "random", episodes=4, model=run)
    assert r["backend"] == "world_model" and len(r["per_episode"]["return"]) == 4
    assert np.all(np.asarray(r["per_episode"]["length"]) >= 1)


def test_cli_errors_before_work(run, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["compare", "--model", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "cosmos-sim train" in capsys.readouterr().err
    assert main(["compare", "--model", str(run), "--policies", "scripted,bogus", "--out", str(out)]) == 1
    assert "unknown policy 'bogus'" in capsys.readouterr().err
    assert main(["compare", "--world", "reach", "--model", str(run), "--out", str(out)]) == 1
    assert "world: model has 'Push', caller has 'Reach'" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(UnknownChoiceError):
        CompareConfig(open_loop_policy="nobody")


def test_cli_evaluate(run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--backend", "world_model", "--model", str(run), "--policy", "scripted:0.5",
                 "--episodes", "2", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["policy"] == "scripted:0.5"
    assert main(["evaluate", "--backend", "mujoco", "--policy", "scripted", "--episodes", "2"]) == 0
    assert "100 [34, 100]" in capsys.readouterr().out  # 2 of 2, with its Wilson interval
    capsys.readouterr()
    assert main(["evaluate", "--backend", "world_model,mujoco", "--model", str(run), "--policy", "scripted:0.5",
                 "--episodes", "3", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    learned, physics = (np.array(r["backends"][b]["per_episode"]["success"], float) for b in ("world_model", "mujoco"))
    gap = r["exploitation_gap"]["mujoco"]
    assert gap["mean"] == pytest.approx(100 * (learned - physics).mean()) and gap["lo"] <= gap["mean"] <= gap["hi"]
    assert "exploitation gap (learned minus mujoco success)" in capsys.readouterr().out
    assert main(["evaluate", "--backend", "mujoco,bullet", "--episodes", "1"]) == 1  # names the bad backend


def test_exploitation_gap_pairs_episodes_by_seed():
    from cosmos_sim.evaluation.closed_loop import exploitation_gap

    def result(backend, success, seeds):
        return {"backend": backend, "seeds": seeds, "per_episode": {"success": success}}

    gap = exploitation_gap(result("world_model", [1, 1, 0, 1], [0, 1, 2, 3]), result("mujoco", [0, 1, 0, 0],
                                                                                       [0, 1, 2, 3]))
    assert gap["physics"] == "mujoco" and gap["mean"] == 50.0 and gap["n"] == 4
    with pytest.raises(ValueError, match="same seeds"):
        exploitation_gap(result("world_model", [1, 0], [0, 1]), result("mujoco", [1, 0], [5, 6]))


def test_off_ladder_policies_rank_as_their_own_group(tmp_path):
    cfg = CompareConfig(world="push", policies=("scripted:0", "scripted:1", "scripted:1@speed=0.25", "off-ladder"),
                        backends=("mujoco", "pybullet"), episodes=2, open_loop_episodes=1, horizon=3, videos=0)
    assert cfg.policies[3:] == cosmos_sim.get_world("push").off_ladder[1:]  # expanded, without repeats
    r = compare(cfg, None, tmp_path, progress=False)
    pb = r["ranking"]["pairs"]["pybullet"]
    assert set(pb["groups"]) == {"ladder", "off-ladder"} and pb["groups"]["ladder"]["policies"] == 2
    assert pb["policies"] == len(cfg.policies) and pb["max_abs_error_points"] >= pb["success_mae_points"]
    text = (tmp_path / "report.md").read_text()
    assert "| PyBullet | off-ladder (" in text and "| `scripted:1@speed=0.25` | off-ladder |" in text


def test_drop_report_measures_physical_alignment(tmp_path):
    cfg = CompareConfig(world="drop", policies=("scripted:1",), backends=("mujoco", "pybullet"), episodes=1,
                        open_loop_episodes=1, horizon=3, videos=0, alignment_episodes=3)
    r = compare(cfg, None, tmp_path, progress=False)
    pa = r["physics_alignment"]
    assert pa["episodes"] == 3 and set(pa["backends"]) == {"pybullet"}
    assert "## Physical alignment: passive drops (Drop)" in (tmp_path / "report.md").read_text()
    assert (tmp_path / pa["files"]["heights_plot"]).is_file()


def test_a_model_of_many_poses_gets_the_camera_section(run, tmp_path):
    """A model trained on a camera range is scored on novel views and camera following in the report."""
    from cosmos_sim.camera import CameraCoverage
    from cosmos_sim.world_model import WorldModel
    from cosmos_sim.worlds import get_world

    wm, w = WorldModel.load(run), get_world("push")
    wm.info["camera_coverage"] = CameraCoverage.of("random", w.default_camera, w.camera_range).to_dict()
    wm.save(tmp_path / "ranged.safetensors")
    cfg = CompareConfig(world="push", policies=("random", "scripted:1"), episodes=2, open_loop_episodes=2, horizon=4,
                        videos=0)
    rep = compare(cfg, tmp_path / "ranged.safetensors", tmp_path / "out", progress=False)
    nv = rep["cameras"]["novel_view"]
    assert set(nv["same"]) == {"1", "4", "episodes"} and nv["coverage"].startswith("random: az 45..135")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Cameras" in text and "| novel view |" in text and "| camera following |" in text
    assert "(novel_views.png)" in text and rep["files"]["novel_views"] == "novel_views.png"
    assert (tmp_path / "out" / "novel_views.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "out" / "report.json").read_text())["cameras"]["novel_view"] == nv
