"""Hugging Face conventions: save_pretrained / from_pretrained for world models, hub downloads mocked."""

import json
import sys
import types

import pytest
import torch

from cosmos_sim.errors import CheckpointError
from cosmos_sim.world_model import WorldModel

pytestmark = pytest.mark.slow  # uses the trained tiny world model


def test_save_and_load_pretrained_directory(tiny_world_model, tmp_path):
    m = WorldModel.load(tiny_world_model[0])
    d = m.save_pretrained(tmp_path / "pushwm")
    assert {p.name for p in d.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["world"] == "Push" and cfg["family"] == m.family
    card = (d / "README.md").read_text()
    assert "cosmos_sim/Push-v0" in card and "world_hash" in card
    back = WorldModel.from_pretrained(d)
    for (k, a), (_, b) in zip(m.state_dict().items(), back.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_hub_repo_ids_download_through_huggingface_hub(tiny_world_model, tmp_path, monkeypatch):
    d = WorldModel.load(tiny_world_model[0]).save_pretrained(tmp_path / "snapshot")
    calls = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision))
        return str(d)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    m = WorldModel.from_pretrained("someone/push-twin", revision="v1")
    assert calls == [("someone/push-twin", "v1")] and m.world == "Push"


def test_bad_names(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no pretrained world model"):
        WorldModel.from_pretrained(str(tmp_path / "missing" / "x" / "y"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        WorldModel.from_pretrained(tmp_path / "empty")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    with pytest.raises(CheckpointError, match="pip install huggingface_hub"):
        WorldModel.from_pretrained("someone/push-twin")


def test_saved_policies_save_and_load_pretrained(tmp_path):
    import numpy as np

    from cosmos_sim.policies.ppo import ActorCritic
    from cosmos_sim.policies.saved import NetworkPolicy, is_saved_policy, load_policy

    torch.manual_seed(0)
    net = ActorCritic({"obs_mode": "state", "state_dim": 3, "action_dim": 2})
    pol = NetworkPolicy(net, "ppo", "Push", "state", net.config)
    d = pol.save_pretrained(tmp_path / "pol")
    assert {p.name for p in d.iterdir()} == {"config.json", "model.safetensors", "README.md"} and is_saved_policy(d)
    back = load_policy(d, world="Push")
    obs = {"state": np.ones((4, 3), np.float32)}
    assert np.array_equal(back.act(obs), pol.act(obs))
