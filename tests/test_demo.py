"""`cosmos-sim demo` end to end on the smoke preset (seconds), and its re-run skipping finished stages."""

import pytest

from cosmos_sim.cli import main

pytestmark = pytest.mark.slow  # trains the demo model


def test_demo_smoke_end_to_end_and_rerun(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--train", "--preset", "smoke", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Spearman rho" in text and "report.md" in text
    for rel in ("world_model.safetensors", "report/report.json", "report/report.md", "report/horizon.png",
                "report/ranking.png", "report/episode0_seed0.mp4", "demo_config.json"):
        assert (out / rel).is_file(), rel
    mtime = (out / "world_model.safetensors").stat().st_mtime_ns
    assert main(["demo", "--train", "--preset", "smoke", "--out", str(out), "--no-progress"]) == 0
    assert "already trained" in capsys.readouterr().out
    assert (out / "world_model.safetensors").stat().st_mtime_ns == mtime


def test_demo_rejects_unknown_preset(tmp_path, capsys):
    assert main(["demo", "--train", "--preset", "huge", "--out", str(tmp_path / "x")]) == 1
    assert "unknown demo preset 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
