"""`cosmos-sim twin refine`: real episodes for the policies the twin flags, a refit, a re-ranking; resumable."""

from __future__ import annotations

import json

import pytest

from cosmos_sim.data import CollectConfig, collect
from cosmos_sim.errors import InputError
from cosmos_sim.evaluation import refine as rf

from twins import pointmass

ID = "cosmos_test/PointMass-v0"
OFF = "twins.pointmass:full_throttle"


@pytest.fixture(autouse=True)
def _registered():
    pointmass.register()


@pytest.fixture(scope="module")
def twin_file(tmp_path_factory):
    """The point-mass twin asset, pointing at its data collected again (so a refit keeps the model's own data)."""
    from cosmos_sim.world_model import WorldModel

    from assets.build import POINTMASS_TWIN, TWIN_DATA

    pointmass.register()
    root = tmp_path_factory.mktemp("refine")
    collect(CollectConfig(**TWIN_DATA), root / "data", progress=False)
    m = WorldModel.load(POINTMASS_TWIN)
    m.info["data"] = str(root / "data")
    return m.save(root / "twin.safetensors")


def config(**kw) -> rf.RefineConfig:
    base = dict(env=ID, policies=("random", OFF), episodes=3, rounds=2, check_episodes=6, rank_episodes=4,
                state_steps=40, task_steps=40, device="cpu")
    return rf.RefineConfig(**(base | kw))


@pytest.mark.slow
def test_refine_gathers_for_the_flagged_policy_and_resumes_after_a_kill(twin_file, tmp_path, monkeypatch):
    out = tmp_path / "refine"
    real_refit, calls = rf.refit, []

    def refit_then_die(model, train, held, cfg, seed, progress):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed in round 1's refit, after its real episodes were saved
        return real_refit(model, train, held, cfg, seed, progress)

    monkeypatch.setattr(rf, "refit", refit_then_die)
    with pytest.raises(KeyboardInterrupt):
        rf.refine(config(), twin_file, out, progress=False)
    first = json.loads((out / rf.FILE).read_text())
    assert len(first["rounds"]) == 1 and first["rounds"][0]["flagged"] == [OFF]
    assert first["rounds"][0]["real_steps"] == 3 * 40  # three full-length episodes of the flagged policy
    r0 = (out / "round_0" / rf.REAL).stat().st_mtime_ns
    gathered = []
    real_gather = rf.gather
    monkeypatch.setattr(rf, "refit", real_refit)
    monkeypatch.setattr(rf, "gather", lambda *a, **k: gathered.append(a[2]) or real_gather(*a, **k))
    record = rf.refine(config(), twin_file, out, progress=False)
    assert (out / "round_0" / rf.REAL).stat().st_mtime_ns == r0  # round 0 is not collected again
    assert all(x["round"] == i for i, x in enumerate(record["rounds"]))  # nothing duplicated
    assert gathered in ([], [1])  # only round 1 gathers, and only if something is still flagged
    assert record["real_steps_total"] == sum(x["real_steps"] for x in record["rounds"]) >= 120
    assert (out / "round_0" / "world_model.safetensors").is_file()
    rows = {r["policy"]: r for r in record["ranking"]["rows"]}
    assert set(rows) == {"random", OFF} and rows[OFF]["flagged_before"]
    from cosmos_sim.world_model import WorldModel

    refit_model = WorldModel.load(record["final_model"])
    assert refit_model.info["refine"]["real_steps"] >= 120 and refit_model.trust is not None
    assert "twin refine" in (out / "refine.md").read_text()


def test_refine_refuses_another_config_in_the_same_out_and_a_model_without_trust(twin_file, tmp_path):
    from cosmos_sim.world_model import WorldModel

    out = tmp_path / "r"
    out.mkdir()
    (out / rf.FILE).write_text(json.dumps({"config": {"env": "other"}, "rounds": []}))
    with pytest.raises(InputError, match="another config"):
        rf.refine(config(), twin_file, out, progress=False)
    m = WorldModel.load(twin_file)
    m.info.pop("trust")
    plain = m.save(tmp_path / "plain.safetensors")
    with pytest.raises(InputError, match="calibrated for trust"):
        rf.refine(config(), plain, tmp_path / "r2", progress=False)
    with pytest.raises(InputError, match="episodes must be >= 1"):
        config(episodes=0)


def test_cli_twin_refine_fails_on_an_unknown_env_first(capsys, tmp_path):
    from cosmos_sim.cli import main

    assert main(["twin", "refine", "--env", "cosmos_test/NoSuchEnv-v0", "--model", str(tmp_path / "m"),
                 "--out", str(tmp_path / "o")]) == 1
    assert "NoSuchEnv" in capsys.readouterr().err
