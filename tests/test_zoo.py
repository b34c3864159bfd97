"""The model zoo: recipes, the shipped models (pretrained by default), half-precision files, rebuilds."""

import json
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from cosmos_sim import shipped, zoo
from cosmos_sim.cli import main
from cosmos_sim.errors import CheckpointError, UnknownChoiceError
from cosmos_sim.training.checkpoint import read_checkpoint, read_metadata
from cosmos_sim.world_model import WorldModel


def test_recipes():
    assert zoo.recipe("push") is zoo.RECIPES["Push"] and zoo.recipe("Drop").world == "Drop"
    r = zoo.recipe("reach")
    assert r.camera == "random" and r.collect_config().camera == "random"  # any in-range pose must work
    assert r.collect_command().startswith("cosmos-sim collect --world reach --policy mix --skill 0.3:1 ")
    tok, dyn = r.train_configs()
    assert (tok.steps, dyn.steps, dyn.seed) == (r.tokenizer_steps, r.dynamics_steps, r.seed)
    quick = zoo.with_steps(r, 0.1)
    assert quick.tokenizer_steps == round(r.tokenizer_steps * 0.1) and quick.episodes == r.episodes
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        zoo.Recipe("push", episodes=0)
    with pytest.raises(UnknownChoiceError):
        zoo.Recipe("pong")


def test_recipes_map_to_a_state_model_config():
    from cosmos_sim.dynamics.train import StateModelConfig

    assert zoo.recipe("drop").state_config() == StateModelConfig(model="objects", members=1, steps=6000,
                                                                   episodes=6000)
    r = StateModelConfig().resolved(100, objects=False)  # None: what the trainer's steps and the model kind say
    assert (r.members, r.steps, r.task_steps, r.horizon, r.episodes) == (5, 800, 800, 6, 0)
    r = StateModelConfig().resolved(10_000, objects=True)
    assert (r.members, r.steps, r.task_steps) == (1, 4000, 3000)
    assert StateModelConfig(steps=0, task_steps=7).resolved(1, objects=False).task_steps == 7
    assert StateModelConfig().resolved(1, objects=False).task_steps == 100
    with pytest.raises(UnknownChoiceError):
        StateModelConfig(model="gnn")
    with pytest.raises(ValueError, match="members"):
        StateModelConfig(members=0)


@pytest.mark.parametrize("world", zoo.shipped_worlds())
def test_a_shipped_models_recorded_recipe_still_loads(world):
    recorded = zoo.shipped_info(world)["info"]["recipe"]  # written before some fields existed
    r = zoo.Recipe(**recorded)
    assert {k: v for k, v in r.to_dict().items() if k in recorded} == recorded
    s = r.state_config()
    assert (s.model, s.steps, s.episodes) == (recorded.get("state_model", "mlp"), recorded["state_steps"],
                                              recorded["state_episodes"])


@pytest.mark.parametrize("world", zoo.shipped_worlds())
def test_shipped_model_matches_its_world_and_works_in_every_obs_mode(world):
    """Changing a world (its module or MJCF) without rebuilding its model fails here."""
    zoo.check_shipped(world)
    info = zoo.shipped_info(world)
    assert info["megabytes"] <= 12 and info["info"]["recipe"]["camera"] == "random"
    for key in ("dataset_command", "dataset_manifest_sha256", "dataset_sha256", "tokenizer_steps", "dynamics_steps",
                "device", "cosmos_sim_version", "world_hash"):
        assert key in info["info"], key
    env_id = f"cosmos_sim/{world}-v0"
    for obs_mode in ("both", "state", "pixels"):
        env = gym.make(env_id, backend="world_model", obs_mode=obs_mode)  # no model=: the shipped one
        check_env(env.unwrapped, skip_render_check=True)
        env.close()
    envs = gym.make_vec(env_id, num_envs=64, backend="world_model", model="pretrained")
    obs, _ = envs.reset(seed=0)
    obs, *_ = envs.step(envs.action_space.sample())
    assert obs["pixels"].shape[0] == 64
    envs.close()


def test_half_precision_save_round_trip_and_metadata(tiny_world_model, tmp_path):
    run, _ = tiny_world_model
    m = WorldModel.load(run)
    full, half = m.save(tmp_path / "full.safetensors"), m.save(tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    tensors, meta = read_checkpoint(half)
    assert meta == read_metadata(half) and meta["weights_dtype"] == "float16"
    assert tensors["stats/state_mean"].dtype == torch.float32 and tensors["dynamics/out.weight"].dtype == torch.float16
    h = WorldModel.load(half)
    assert all(p.dtype == torch.float32 for p in h.parameters())
    env_a = gym.make("cosmos_sim/Push-v0", backend="world_model", model=m, obs_mode="state")
    env_b = gym.make("cosmos_sim/Push-v0", backend="world_model", model=h, obs_mode="state")
    a, b = env_a.reset(seed=3)[0], env_b.reset(seed=3)[0]
    for _ in range(5):
        act = np.array([0.5, -0.25], np.float32)
        a, b = env_a.step(act)[0], env_b.step(act)[0]
    np.testing.assert_allclose(a, b, atol=2e-2)  # float16 weights: close, not equal
    (tmp_path / "bad.safetensors").write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError, match="pickle"):
        read_metadata(tmp_path / "bad.safetensors")


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch, tiny_world_model):
    """A models directory holding one (tiny) Push model, in place of the package's."""
    monkeypatch.setattr(shipped, "models_dir", lambda: tmp_path)
    m = WorldModel.load(tiny_world_model[0])
    from cosmos_sim.worlds import get_world

    m.info = m.info | {"world_hash": get_world("push").definition_hash(), "recipe": zoo.RECIPES["Push"].to_dict()}
    m.save(tmp_path / "push.safetensors", half=True)
    (tmp_path / "push.json").write_text(json.dumps({"psnr_16": 30.5, "spearman": 1.0}))
    return tmp_path


@pytest.mark.slow  # uses the trained tiny world model
def test_pretrained_is_the_default_and_names_the_worlds_that_have_one(zoo_dir, capsys):
    env = gym.make("cosmos_sim/Push-v0", backend="world_model", obs_mode="state")
    assert env.reset(seed=0)[0].shape == (12,)
    with pytest.raises(UnknownChoiceError, match=r"none for reach.*'reach'; valid choices: push"):
        gym.make("cosmos_sim/Reach-v0", backend="world_model", model="pretrained")
    assert main(["evaluate", "--world", "reach", "--backend", "world_model", "--episodes", "1"]) == 1
    assert "valid choices: push" in capsys.readouterr().err
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "push" in out and "30.50" in out and "reach" not in out
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["figures"]["spearman"] == 1.0


@pytest.mark.slow
def test_a_changed_world_needs_a_rebuild(zoo_dir, monkeypatch):
    zoo.check_shipped("push")
    from cosmos_sim.worlds.push import Push

    monkeypatch.setattr(Push, "definition_hash", lambda self: "0" * 16)
    monkeypatch.setattr(Push, "legacy_definition_hash", lambda self: "1" * 16)
    with pytest.raises(CheckpointError, match="rebuild it"):
        zoo.check_shipped("push")


@pytest.mark.slow  # collects and trains (a few seconds at this scale)
def test_build_records_how_the_model_was_made(tmp_path):
    r = replace(zoo.with_steps(zoo.recipe("reach"), 0.004), episodes=3, image_size=32, tokenizer="tiny",
                preset="tiny", state_members=2)
    path = zoo.build("reach", work=tmp_path / "work", out=tmp_path / "reach.safetensors", workers=1, progress=False,
                     recipe_override=r, log=lambda msg: None)
    meta = read_metadata(path)
    info = meta["info"]
    assert meta["weights_dtype"] == "float16" and meta["world"] == "Reach"
    assert info["recipe"] == r.to_dict() and info["dataset_command"] == r.collect_command()
    assert info["tokenizer_steps"] == r.tokenizer_steps and len(info["dataset_manifest_sha256"]) == 64
    assert WorldModel.load(path).world == "Reach" and WorldModel.load(path).state_head.members == 2
    assert r.state_episodes > 0  # the state model saw extra state-only episodes
    assert json.loads((tmp_path / "work" / "reach" / "dynamics" / "result.json").read_text())["state_episodes"] == \
        r.state_episodes


@pytest.mark.slow
def test_demo_compares_every_shipped_model(zoo_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--episodes", "2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "| Push |" in text and (out / "push" / "report.md").is_file()
    table = (out / "report.md").read_text()
    assert "[push/report.md](push/report.md)" in table and "Reach" not in table
    assert main(["demo", "--out", str(out), "--worlds", "reach"]) == 1  # no shipped Reach model here
    assert "valid choices: push" in capsys.readouterr().err


@pytest.mark.slow  # two small builds
def test_a_rebuild_with_the_same_seed_gives_the_same_model(tmp_path):
    r = replace(zoo.with_steps(zoo.recipe("reach"), 0.004), episodes=3, image_size=32, tokenizer="tiny",
                preset="tiny", state_members=2)
    paths = [zoo.build("reach", work=tmp_path / f"work{i}", out=tmp_path / f"reach{i}.safetensors", workers=1,
                       progress=False, recipe_override=r, log=lambda msg: None) for i in (0, 1)]
    (a, meta_a), (b, meta_b) = read_checkpoint(paths[0]), read_checkpoint(paths[1])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert meta_a["info"]["dataset_sha256"] == meta_b["info"]["dataset_sha256"]  # the shards may split otherwise


def test_models_shows_members():
    """`cosmos-sim models` says how many state-model members each shipped model has (> 1: it reports uncertainty)
    and how it learned its cameras."""
    from cosmos_sim.zoo import models_table, shipped_info

    info = shipped_info("push")
    assert info["members"] == 1 and info["render_head"] is False
    head, row = models_table([info]).splitlines()[0], models_table([info]).splitlines()[2]
    assert "members" in head and "camera training" in head and " 1 view " in row
    from cosmos_sim.zoo import camera_training

    assert camera_training({"views": 4, "cross_view": True}, True) == "4 views, cross-view, render head"
