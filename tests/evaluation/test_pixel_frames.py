"""Swapped frames for pixel policies (envs/frame_filters.py) and the report's pixel section on the tiny model:
frozen frames hold each episode's first frame across autoresets, oracle frames are the tokenizer's causal
reconstruction streamed step by step, and a pixel ladder runs through `compare` beside the state policies."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from cosmos_sim.envs.frame_filters import FrozenFrames, OracleFrames, filter_frames
from cosmos_sim.errors import ConfigMismatchError, InputError, UnknownChoiceError


class Counter(VectorEnv):
    """Two envs whose frame is filled with (episode index * 10 + step); env 0's episodes last 3 steps."""

    def __init__(self, mode: AutoresetMode):
        self.num_envs = 2
        self.metadata = {"autoreset_mode": mode}
        self.single_observation_space = spaces.Box(0, 255, (4, 4, 3), np.uint8)
        self.observation_space = spaces.Box(0, 255, (2, 4, 4, 3), np.uint8)
        self.single_action_space = spaces.Box(-1, 1, (1,), np.float32)
        self.action_space = spaces.Box(-1, 1, (2, 1), np.float32)
        self.mode, self.t, self.ep, self.pending = mode, np.zeros(2, int), np.zeros(2, int), np.zeros(2, bool)

    def _obs(self):
        return np.stack([np.full((4, 4, 3), 10 * e + t, np.uint8) for e, t in zip(self.ep, self.t, strict=True)])

    def reset(self, *, seed=None, options=None):
        self.t[:], self.ep[:], self.pending[:] = 0, 0, False
        return self._obs(), {}

    def step(self, actions):
        restart = self.pending.copy()
        self.t += 1
        for i in np.flatnonzero(restart):
            self.t[i], self.ep[i] = 0, self.ep[i] + 1
        ended = np.array([self.t[0] == 3, False]) & ~restart
        if self.mode == AutoresetMode.SAME_STEP:
            for i in np.flatnonzero(ended):
                self.t[i], self.ep[i] = 0, self.ep[i] + 1
        else:
            self.pending = ended
        return self._obs(), np.zeros(2), ended, np.zeros(2, bool), {}


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_frozen_frames_hold_each_episodes_first_frame(mode):
    env = FrozenFrames(Counter(mode))
    obs, _ = env.reset(seed=0)
    seen = [obs[:, 0, 0, 0].tolist()]
    for _ in range(6):
        obs, *_ = env.step(np.zeros((2, 1), np.float32))
        seen.append(obs[:, 0, 0, 0].tolist())
    # env 0's episodes end after 3 steps; NEXT_STEP gives the next episode's first frame (10) one step later,
    # SAME_STEP on the ending step itself (and ends that episode 3 steps on: 20)
    want = [0, 0, 0, 0, 10, 10, 10] if mode == AutoresetMode.NEXT_STEP else [0, 0, 0, 10, 10, 10, 20]
    assert [s[0] for s in seen] == want
    assert [s[1] for s in seen] == [0] * 7  # env 1 never ends


def test_filters_refuse_what_they_cannot_swap(tiny_world_model):
    from cosmos_sim.world_model import WorldModel

    with pytest.raises(UnknownChoiceError, match="frame filter"):
        filter_frames(Counter(AutoresetMode.NEXT_STEP), "blurred")
    with pytest.raises(InputError, match="loaded world model"):
        OracleFrames(Counter(AutoresetMode.NEXT_STEP), model=None)
    wm = WorldModel.load(tiny_world_model[0] / "world_model.safetensors")
    with pytest.raises(ConfigMismatchError, match="uint8 32x32 frames; the env gives"):
        OracleFrames(Counter(AutoresetMode.NEXT_STEP), wm).reset(seed=0)  # 4x4 frames


def test_oracle_frames_are_the_tokenizers_streamed_reconstruction(tiny_world_model):
    """Step by step, restarted at each reset, the oracle draws what the tokenizer's causal reconstruction of
    the whole episode draws (`open_loop.ceiling`), and the same seed draws the same frames."""
    from cosmos_sim.evaluation.closed_loop import make_vector_env
    from cosmos_sim.evaluation.open_loop import Trajectories, ceiling
    from cosmos_sim.world_model import WorldModel

    wm = WorldModel.load(tiny_world_model[0] / "world_model.safetensors")
    runs = []
    for _ in range(2):
        raw = make_vector_env("push", "mujoco", 2, obs_mode="pixels", image_size=32)
        env = OracleFrames(raw, wm)
        obs, _ = env.reset(seed=[3, 4])
        got = [obs]
        actions = np.random.default_rng(0).uniform(-1, 1, (5, 2, 2)).astype(np.float32)
        for a in actions:
            obs, *_ = env.step(a)
            got.append(obs)
        runs.append(np.stack(got, 1))
        env.close()
    assert runs[0].dtype == np.uint8 and runs[0].shape == (2, 6, 32, 32, 3)
    np.testing.assert_array_equal(runs[0], runs[1])
    raw = make_vector_env("push", "mujoco", 2, obs_mode="pixels", image_size=32)
    obs, _ = raw.reset(seed=[3, 4])
    frames = [obs]
    for a in actions:
        frames.append(raw.step(a)[0])
    raw.close()
    true = np.stack(frames, 1)
    ref = Trajectories(pixels=true, states=None, actions=actions.swapaxes(0, 1), extrinsics=None, fovy=None)
    want = ceiling(wm, ref).pixels
    assert np.abs(runs[0].astype(int) - want.astype(int)).max() <= 1  # uint8 rounding apart
    assert np.abs(runs[0].astype(int) - true.astype(int)).mean() > 0  # the tokenizer's frames, not the true ones


def test_a_pixel_ladder_runs_through_compare(tiny_world_model, tmp_path):
    """Pixel policies beside state ones: ranked as their own group, and the pixel section gives each the
    learned world's, the oracle frames' and the frozen frames' success beside MuJoCo's."""
    from cosmos_sim.evaluation.compare import CompareConfig, compare
    from cosmos_sim.policies.bc import BCNet
    from cosmos_sim.policies.saved import save_policy

    config = {"obs_mode": "pixels", "state_dim": 4, "image_size": 32, "action_dim": 2, "hidden": 16,
              "encoder": "impala", "frame_stack": 2, "augment": "shift"}
    paths = []
    for seed in range(2):
        torch.manual_seed(seed)
        paths.append(str(save_policy(tmp_path / f"pixel{seed}", BCNet(config), "bc", config, "Push", "pixels")))
    cfg = CompareConfig(world="push", policies=("random", "scripted:1", *paths), episodes=2, open_loop_episodes=1,
                        horizon=3, videos=0)
    rep = compare(cfg, tiny_world_model[0], tmp_path / "report", progress=False)
    groups = {r["policy"]: r["group"] for r in rep["ranking"]["rows"]}
    assert [groups[p] for p in paths] == ["pixel", "pixel"] and groups["scripted:1"] == "ladder"
    assert "pixel" in rep["ranking"]["pairs"]["world_model"]["groups"]
    pf = rep["pixel_frames"]
    assert pf["policies"] == paths
    assert set(pf["success"]) == {"mujoco", "world_model", "oracle", "frozen"}
    assert set(pf["pairs"]) == {"world_model", "oracle", "frozen"}
    assert rep["closed_loop"]["mujoco"][paths[0]]["obs_mode"] == "pixels"
    for src in ("oracle", "frozen"):
        assert len(pf["closed_loop"][src][paths[0]]["per_episode"]["return"]) == 2
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Pixel policies: what the frames do" in text and "| oracle frames |" in text


def test_frames_option_is_checked():
    from cosmos_sim.evaluation.closed_loop import evaluate_policies

    with pytest.raises(UnknownChoiceError, match="frame filter"):
        evaluate_policies("push", "mujoco", ["random"], episodes=1, frames="blurred")
    with pytest.raises(InputError, match="learned world draws its own"):
        evaluate_policies("push", "world_model", ["random"], episodes=1, frames="frozen")
    with pytest.raises(InputError, match="swaps pixel observations"):
        evaluate_policies("push", "mujoco", ["random"], episodes=1, frames="frozen")


def test_exported_checkpoints_read_short_in_reports():
    from cosmos_sim.evaluation.report import short_name

    assert short_name("runs/x/bc/policies/step-00000050.safetensors") == "bc@50"
    assert short_name("runs/x/bc/policy.safetensors") == "runs/x/bc/policy.safetensors"


def test_trust_says_it_does_not_watch_the_frames():
    """A pixel policy's trust row comes from its state rollout: the section says so instead of implying its
    learned figure was checked."""
    from cosmos_sim.evaluation.report import Trust

    row = {"off_data_share": 0.0, "off_data_per_episode": 0.0, "member_spread": None, "flagged": False,
           "reference": 100.0, "learned": 16.0, "relative_error": 0.84}
    tr = {"available": True, "metric": "success", "reference": "mujoco", "flag_share": 0.1, "member_flag": 0.125,
          "calibration": {"quantile": 0.99, "thresholds": {"state": 1.0}, "held_out_share": 0.01},
          "rows": [row | {"policy": "scripted:1"}, row | {"policy": "runs/bc/policies/step-00000050.safetensors"}],
          "ranking_all": None, "ranking_trusted": None, "share_vs_error": None, "members_vs_error": None,
          "trusted_policies": 2, "unflagged_large_errors": []}
    report = {"closed_loop": {"world_model": {"scripted:1": {"obs_mode": "state"},
                                              "runs/bc/policies/step-00000050.safetensors": {"obs_mode": "pixels"}}}}
    text = Trust("mujoco", "success").markdown(tr, report)
    assert "| bc@50 |" in text and "Policies that see pixels (1) are judged by the state alone" in text
    report["closed_loop"]["world_model"]["runs/bc/policies/step-00000050.safetensors"]["obs_mode"] = "state"
    assert "see pixels" not in Trust("mujoco", "success").markdown(tr, report)
