"""Pixel policies' parts that need no training: DrQ's random shift, frame stacking in the dataset and in the
policy (the same frames in the same order), augmentation off at evaluation, the config checks."""

import numpy as np
import pytest
import torch

from cosmos_sim.errors import InputError, UnknownChoiceError
from cosmos_sim.policies.bc import BCConfig, BCNet, StepDataset
from cosmos_sim.policies.networks import random_shift
from cosmos_sim.policies.ppo import PPOConfig, _net_config, train_ppo  # registered before any test (conftest)
from cosmos_sim.policies.saved import NetworkPolicy, load_policy, save_policy

CONFIG = {"obs_mode": "pixels", "state_dim": 4, "image_size": 32, "action_dim": 2, "hidden": 32,
          "encoder": "impala", "frame_stack": 3, "augment": "shift"}


def frames(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_random_shift_moves_each_sample_within_its_pad():
    x = torch.from_numpy(frames(64, 0))
    y = random_shift(x, pad=4, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.equal(x, y)  # some sample moved
    # every shifted frame's centre comes from the frame, no more than 4 pixels away
    for i in range(8):
        centre = y[i, 8:24, 8:24]
        assert any(torch.equal(centre, x[i, 8 + dy:24 + dy, 8 + dx:24 + dx])
                   for dy in range(-4, 5) for dx in range(-4, 5))
    assert torch.equal(random_shift(x, pad=0), x)


def test_the_policy_stacks_frames_as_the_dataset_does():
    torch.manual_seed(0)
    net = BCNet(CONFIG)
    policy = NetworkPolicy(net, "bc", "push", "pixels", CONFIG)
    f = [frames(2, s) for s in range(4)]  # 4 steps of 2 envs
    got = [policy.act({"pixels": x}) for x in f]

    def stacked(ix):  # the channels of frames ix (oldest first), as StepDataset lays them out
        return torch.from_numpy(np.concatenate([f[i] for i in ix], -1))

    for t, ix in enumerate(([0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3])):
        want = net.eval().act_tensor({"pixels": stacked(ix)}).clamp(-1, 1).detach().numpy()
        np.testing.assert_allclose(got[t], want, atol=1e-6)
    # reset of env 1 only: its history starts again from its next frame, env 0's goes on
    policy.reset(np.array([False, True]))
    a = policy.act({"pixels": f[0]})
    want0 = net.act_tensor({"pixels": stacked([2, 3, 0])[:1]}).clamp(-1, 1).detach().numpy()
    want1 = net.act_tensor({"pixels": stacked([0, 0, 0])[1:]}).clamp(-1, 1).detach().numpy()
    np.testing.assert_allclose(a, np.concatenate([want0, want1]), atol=1e-6)
    with pytest.raises(InputError, match="stacks 3 frames itself"):
        policy.act({"pixels": np.zeros((2, 32, 32, 9), np.uint8)})  # stacked already: refused


def test_views_stack_and_mismatches_are_refused():
    """A policy trained on 2 views takes [N, 2, H, W, 3] frames, each stacked frame's views side by side; frames
    of another size or view count get a typed error naming both, not a shape error deep in torch."""
    from cosmos_sim.errors import ConfigMismatchError

    config = CONFIG | {"frame_stack": 2, "views": 2, "camera": "random"}
    torch.manual_seed(0)
    net = BCNet(config)
    policy = NetworkPolicy(net, "bc", "push", "pixels", config)
    x0, x1 = (np.stack([frames(3, 2 * s), frames(3, 2 * s + 1)], 1) for s in range(2))  # [N, V, H, W, 3]
    policy.act({"pixels": x0})
    got = policy.act({"pixels": x1})
    layout = np.concatenate([x0[:, 0], x0[:, 1], x1[:, 0], x1[:, 1]], -1)  # oldest frame first, views within
    want = net.eval().act_tensor({"pixels": torch.from_numpy(layout)}).clamp(-1, 1).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    with pytest.raises(ConfigMismatchError, match=r"trained on 2 view\(s\) of 32x32.*camera: random.*1 view\(s\)"):
        policy.act({"pixels": frames(3, 0)})
    one = NetworkPolicy(BCNet(CONFIG), "bc", "push", "pixels", CONFIG)
    with pytest.raises(ConfigMismatchError, match="of 32x32 frames.*gives 1 view\\(s\\) of 64x64"):
        one.act({"pixels": np.zeros((2, 64, 64, 3), np.uint8)})


def test_augmentation_is_off_at_evaluation(tmp_path):
    """Same observation => same action, however often it is asked (the shift runs in training mode only); a
    saved pixel policy records its encoder, stack and augmentation."""
    torch.manual_seed(0)
    path = save_policy(tmp_path / "p", BCNet(CONFIG), "bc", CONFIG, "push", "pixels")
    x = {"pixels": frames(4, 1)}
    acts = []
    for _ in range(3):
        p = load_policy(path)
        assert p.config["encoder"] == "impala" and p.config["frame_stack"] == 3 and p.config["augment"] == "shift"
        acts.append(p.act(x))
    assert all(np.array_equal(acts[0], a) for a in acts)
    net = BCNet(CONFIG).train()
    a, b = (net.act_tensor({"pixels": torch.from_numpy(np.concatenate([x["pixels"]] * 3, -1))}) for _ in range(2))
    assert not torch.equal(a, b)  # in training the same frames are shifted differently


def test_dataset_stacks_within_episodes(push_data):
    """Step t of an episode sees frames t-1 and t; its first step sees its first frame twice, never the end of
    the episode before it."""
    from cosmos_sim.data import EpisodeDataset

    lengths = [len(EpisodeDataset(push_data)[i]["actions"]) for i in range(len(EpisodeDataset(push_data)))]
    ds = StepDataset(push_data, "pixels", successful_only=False, frame_stack=2)
    starts = np.cumsum([0, *lengths[:-1]])
    for s in starts:
        assert ds.stack_index[s].tolist() == [s, s]
        assert ds.stack_index[s + 1].tolist() == [s, s + 1]
    item = ds[int(starts[1]) + 1]["pixels"]
    assert item.shape == (32, 32, 6)
    assert ds.pixels.shape[1] == 1 and ds.views == 1 and ds.camera == "fixed"  # [N, V, H, W, 3]
    first, second = ds.pixels[starts[1], 0], ds.pixels[starts[1] + 1, 0]
    assert torch.equal(item[..., :3], first) and torch.equal(item[..., 3:], second)


def test_bad_pixel_settings_are_named():
    with pytest.raises(UnknownChoiceError, match="pixel encoder"):
        BCConfig(obs_mode="pixels", encoder="resnet9000")
    with pytest.raises(UnknownChoiceError, match="augmentation"):
        BCConfig(obs_mode="pixels", augment="mixup")
    with pytest.raises(InputError, match="frame_stack"):
        BCConfig(obs_mode="pixels", frame_stack=0)


def test_a_policy_under_varying_cameras_takes_the_pose(push_data, push_views_data, tmp_path):
    """Data from random cameras gives the pose (auto); the env reports it as obs["camera"] in either backend
    alike (envs/camera_obs.py), and closed-loop evaluation wraps the env for a policy that takes it."""
    from cosmos_sim.envs.camera_obs import POSE_FEATURES, CameraObservation
    from cosmos_sim.evaluation.closed_loop import evaluate_policies, make_vector_env

    fixed = StepDataset(push_data, "pixels", successful_only=False)
    varied = StepDataset(push_views_data, "pixels", successful_only=False)
    assert not fixed.cameras_vary and varied.cameras_vary and varied.cameras.shape[1] == POSE_FEATURES
    assert "camera" in varied[0] and varied[0]["camera"].shape == (POSE_FEATURES,)

    config = CONFIG | {"frame_stack": 1, "camera_dim": POSE_FEATURES, "camera": "random"}
    torch.manual_seed(0)
    path = save_policy(tmp_path / "p", BCNet(config), "bc", config, "Push", "pixels")
    policy = load_policy(path)
    assert policy.keys() == ("pixels", "camera")
    with pytest.raises(InputError, match="camera pose; missing \\['camera'\\].*CameraObservation"):
        policy.act({"pixels": frames(2, 0)})
    feats = []
    for backend, kw in (("mujoco", {}), ("world_model", {"model": "pretrained"})):
        env = CameraObservation(make_vector_env("push", backend, 2, obs_mode="pixels", camera="random",
                                                image_size=32 if backend == "mujoco" else None, **kw))
        obs, _ = env.reset(seed=[5, 6])
        feats.append(obs["camera"])
        env.close()
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-5)  # the same seeded poses, one form
    res = evaluate_policies("push", "mujoco", [str(path)], episodes=2, camera="random")[str(path)]
    assert res["length"]["mean"] > 0



def test_relabel_puts_the_clean_experts_actions_on_every_state(push_data):
    """DART: every recorded step (failed episodes too) labelled with the world's expert at full skill, which is
    what `scripted:1` does in that state; a world without an expert is refused by name."""
    from cosmos_sim.errors import InputError
    from cosmos_sim.policies.bc import expert_actions
    from cosmos_sim.policies.registry import make_policy

    ds = StepDataset(push_data, "state", successful_only=True, relabel="expert")
    every = StepDataset(push_data, "state", successful_only=False)
    assert len(ds) == len(every)  # relabelled: no episode is left out
    want = make_policy("scripted", "push", skill=1.0).act({"state": ds.states.double().numpy()})
    np.testing.assert_allclose(ds.actions.numpy(), want, atol=1e-6)
    assert not torch.equal(ds.actions, every.actions)  # the data's experts were sloppy (skill 0.3-1)
    with pytest.raises(UnknownChoiceError, match="relabel"):
        BCConfig(relabel="oracle")
    # runs saved before relabel existed record no such key, and resume: the default config says the same
    assert "relabel" not in BCConfig().to_dict() and BCConfig(relabel="expert").to_dict()["relabel"] == "expert"
    assert BCConfig(**BCConfig().to_dict()) == BCConfig()
    with pytest.raises(InputError, match="needs a scripted expert; world env:Pendulum-v1 has none"):
        expert_actions("env:Pendulum-v1", np.zeros((2, 3)))


@pytest.mark.slow  # two PPO updates
def test_pixel_ppo_trains_beside_the_state_and_saves_a_policy_of_pixels_alone(tmp_path):
    """Pixel PPO on MuJoCo Reach (two short iterations): the critic reads the state, a head predicts it from the
    actor's features, and the saved policy takes the frames alone, stacks them as PPO's rollouts did, records
    its camera setting, refuses frames of another size and acts the same on the same frames (no augmentation at
    evaluation)."""
    from cosmos_sim.envs.registration import make_world_vec_env
    from cosmos_sim.errors import ConfigMismatchError

    envs = make_world_vec_env("reach", num_envs=2, backend="mujoco", obs_mode="both")
    cfg = PPOConfig(total_steps=64, num_steps=16, update_epochs=1, minibatches=2, augment="shift", seed=0)
    r = train_ppo(envs, cfg, "pixels", out=tmp_path / "ppo", world="Reach", progress=False)
    envs.close()
    net = r["net_config"]
    assert net["critic_obs_mode"] == "state" and net["aux_state"] and net["camera"] == "fixed"
    assert net["frame_stack"] == 2 and net["state_dim"] == 10
    assert all(np.isfinite(h["aux_loss"]) for h in r["history"])
    policy = load_policy(r["policy_path"], obs_mode="pixels")
    assert policy.keys() == ("pixels",)
    x = {"pixels": np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)}
    a = [load_policy(r["policy_path"]).act(x) for _ in range(2)]
    assert np.array_equal(a[0], a[1]) and a[0].shape == (3, 2)
    with pytest.raises(ConfigMismatchError, match="of 64x64 frames.*gives 1 view\\(s\\) of 32x32"):
        policy.act({"pixels": np.zeros((3, 32, 32, 3), np.uint8)})
    # the same helper stacks training's rollouts and the policy's frames: a reset env starts from its own frame
    from cosmos_sim.policies.saved import stack_frames

    f = [torch.from_numpy(frames(2, s))[:, None] for s in range(3)]  # [N, V=1, H, W, 3]
    h, _ = stack_frames(None, f[0], None, 2)
    h, _ = stack_frames(h, f[1], torch.tensor([False, False]), 2)
    h, out = stack_frames(h, f[2], torch.tensor([False, True]), 2)
    assert torch.equal(out[0], torch.cat([f[1][0, 0], f[2][0, 0]], -1))
    assert torch.equal(out[1], torch.cat([f[2][1, 0], f[2][1, 0]], -1))


def test_a_pixel_ppo_without_the_state_keeps_a_critic_of_pixels():
    """An env that gives frames alone: the critic sees what the actor sees, no auxiliary head; bad settings named."""
    from cosmos_sim.envs.registration import make_world_vec_env

    envs = make_world_vec_env("reach", num_envs=1, backend="mujoco", obs_mode="pixels")
    net = _net_config(envs, "pixels", PPOConfig())
    envs.close()
    assert net["critic_obs_mode"] == "pixels" and not net["aux_state"] and net["state_dim"] == 0
    with pytest.raises(UnknownChoiceError, match="critic input"):
        PPOConfig(critic="oracle")
    with pytest.raises(UnknownChoiceError, match="pixel encoder"):
        PPOConfig(encoder="resnet9000")
    with pytest.raises(InputError, match="aux_state"):
        PPOConfig(aux_state=float("nan"))
    with pytest.raises(InputError, match="frame_stack"):
        PPOConfig(frame_stack=0)
