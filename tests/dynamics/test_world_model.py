"""Deterministic dynamics, the training pipeline and the WorldModel file, on tiny sizes."""

import pytest
import torch

from cosmos_sim.data import EpisodeDataset
from cosmos_sim.dynamics import build_dynamics
from cosmos_sim.dynamics.train import StateModelConfig, train_dynamics
from cosmos_sim.errors import CheckpointError, ConfigMismatchError, UnknownChoiceError
from cosmos_sim.tokenizer import preset, train_tokenizer
from cosmos_sim.training import TrainConfig
from cosmos_sim.world_model import WorldModel

from dynamics.toy_states import pusher_block, pusher_start, toy_cache
from margins import above, below

pytestmark = pytest.mark.slow  # trains world models


@pytest.fixture(scope="module")
def trained(tmp_path_factory, push_data):
    root = tmp_path_factory.mktemp("wm")
    (root / "data").symlink_to(push_data)
    train_tokenizer(root / "data", root / "tok", preset("tiny", 32), TrainConfig(steps=15, batch_size=4),
                    progress=False)
    result = train_dynamics(root / "data", root / "tok", root / "dyn", "deterministic", "tiny",
                            TrainConfig(steps=40, batch_size=8, lr=3e-3, warmup_steps=2), progress=False,
                            # the single MLP (the shipped models' kind); ensembles: test_ensemble
                            state=StateModelConfig(members=1))
    return root, result


def window(B=3, K=2, H=3, D=16, h=8, A=2):
    g = torch.Generator().manual_seed(0)
    return {"latents": torch.randn(B, K + H, D, h, h, generator=g), "plucker": torch.randn(B, K + H, 6, h, h,
                                                                                           generator=g),
            "actions": torch.randn(B, K + H - 1, A, generator=g)}


def test_deterministic_learns_and_uses_action_and_camera():
    torch.manual_seed(0)
    m = build_dynamics("deterministic", {"width": 16, "depth": 2, "horizon": 3})
    b = window()
    # targets that depend on the action: next = last + action[0]
    z = b["latents"].clone()
    for t in range(2, 5):
        z[:, t] = z[:, t - 1] + b["actions"][:, t - 1, 0, None, None, None] * 0.5
    b["latents"] = z
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    first = m.training_loss(b)[0].item()
    for _ in range(150):
        loss = m.training_loss(b)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    below("loss / first loss", loss.item() / first, 0.2)
    past, pp = b["latents"][:, :2], b["plucker"][:, :2]
    out, _ = m.predict(past, pp, b["actions"][:, 1], b["plucker"][:, 2])
    out2, _ = m.predict(past, pp, -b["actions"][:, 1], b["plucker"][:, 2])
    assert (out - out2).abs().mean() > 1e-3
    with pytest.raises(ValueError, match=r"action must have shape \(3, 2\)"):
        m.predict(past, pp, b["actions"][:, 1, :1], b["plucker"][:, 2])


def test_world_model_round_trip_and_rollout(trained, tmp_path):
    root, result = trained
    m = WorldModel.load(result["world_model"])
    assert (m.world, m.image_size, m.action_dim, m.family) == ("Push", 32, 2, "deterministic")
    ep = EpisodeDataset(root / "data")[0]
    frames = torch.from_numpy(ep["pixels"][None, :2])
    ext, fov = torch.from_numpy(ep["extrinsics"][None]), torch.from_numpy(ep["fovy"][None])
    outs = []
    for model in (m, WorldModel.load(m.save(tmp_path / "copy.safetensors"))):
        st = model.start(frames, ext[:, :2], fov[:, :2])
        seq = [model.step(st, torch.from_numpy(ep["actions"][None, 1 + t]), ext[:, 2 + t], fov[:, 2 + t]) for t in
               range(3)]
        outs.append(seq)
    for (fa, sa), (fb, sb) in zip(*outs, strict=True):
        assert fa.dtype == torch.uint8 and fa.shape == (1, 32, 32, 3) and sa.shape == (1, 12)
        assert torch.equal(fa, fb) and torch.equal(sa, sb)


def test_world_model_refuses_mismatch_and_bad_files(trained, tmp_path):
    _, result = trained
    with pytest.raises(ConfigMismatchError, match="world: model has 'Push', caller has 'reach'"):
        WorldModel.load(result["world_model"], world="reach")
    with pytest.raises(ConfigMismatchError, match="image_size: model has 32, caller has 64"):
        WorldModel.load(result["world_model"], image_size=64)
    with pytest.raises(ConfigMismatchError, match="action_dim: model has 2, caller has 5"):
        WorldModel.load(result["world_model"], action_dim=5)
    root = result["world_model"].rsplit("/", 2)[0]
    with pytest.raises(CheckpointError, match="not a world model"):
        WorldModel.load(f"{root}/tok")
    with pytest.raises(CheckpointError, match="not found"):
        WorldModel.load(tmp_path / "missing.safetensors")


def test_no_non_finite_checkpoint_and_unknown_family(trained):
    root, _ = trained
    with pytest.raises(UnknownChoiceError, match="deterministic"):
        train_dynamics(root / "data", root / "tok", root / "x", "transformer", "tiny", TrainConfig(steps=1))


def _model_and_long_episodes(trained, horizon: int = 4):
    """(data root, the trained WorldModel, its dataset, episodes long enough for `horizon` steps)."""
    root, result = trained
    m = WorldModel.load(result["world_model"])
    ds = EpisodeDataset(root / "data")
    return root, m, ds, [i for i in range(len(ds)) if ds.num_steps(i) >= m.context - 1 + horizon]


def test_state_model_learns_known_dynamics():
    """A planar point pushed by its action, with a wall at x = 1: the head's simulator learns it."""
    from cosmos_sim.dynamics.train import fit_state_model, state_windows
    from cosmos_sim.world_model import StateHead

    def wall(s, a):
        s = s + 0.3 * a
        return torch.stack([s[0].clamp(max=1.0), s[1]])

    E, T = 40, 12
    cache = toy_cache(lambda g: torch.rand(2, generator=g) - 0.5, wall, E, T, seed=0)
    torch.manual_seed(0)
    head = StateHead(4, 2, 2, 2, width=4, hidden=64)
    head.delta_scale.fill_(0.3)
    w = state_windows(cache, list(range(E)), horizon=4)
    assert w["start"].shape == (E * (T - 3), 2) and w["next"].shape == (E * (T - 3), 4, 2)

    def rollout_error():
        with torch.no_grad():
            s = w["start"]
            err = 0.0
            for j in range(4):
                s = head(s, w["actions"][:, j])
                err += ((s - w["next"][:, j]) ** 2).mean().item()
        return err / 4

    before = rollout_error()
    r = fit_state_model(head, w, steps=300, batch_size=128, lr=3e-3, progress=False)
    below("rollout error / before", rollout_error() / before, 0.05)
    assert r["state_steps"] == 300


def test_state_model_gate_holds_untouched_entries_still():
    """A pusher x0 moved by its action and a block x1 that moves only while x0 > 0.5: far from contact
    the gated simulator leaves the block where it is; an ungated MLP lets it drift."""
    from cosmos_sim.dynamics.train import fit_state_model, state_windows
    from cosmos_sim.world_model import StateHead

    E = 60
    cache = toy_cache(pusher_start, pusher_block, E, 12, seed=1)
    w = state_windows(cache, list(range(E)), horizon=4)
    # far from contact: the pusher starts at x0 = -0.5 and moves back and forth
    start = torch.tensor([[-0.5, 0.2]]).expand(16, 2).clone()
    away = torch.tensor([[-0.5, 0.0], [0.5, 0.0]]).repeat(4, 1)
    drift = {}
    for gate in (True, False):
        torch.manual_seed(0)
        head = StateHead(4, 2, 2, 2, width=4, hidden=64, gate=gate)
        head.delta_scale.fill_(0.3)
        fit_state_model(head, w, steps=800, batch_size=128, lr=3e-3, progress=False)
        with torch.no_grad():
            s = start
            for t in range(8):
                s = head(s, away[t].expand(16, 2))
        drift[gate] = float((s[:, 1] - 0.2).abs().mean())
    below("gated drift", drift[True], 1e-4)
    above("ungated drift", drift[False], 1e-3)  # at least ten times the gated bound


def test_object_slots_group_like_objects():
    from cosmos_sim.dynamics.train import state_model_slots
    from cosmos_sim.world_model import object_slots
    from cosmos_sim.worlds import get_world

    drop = get_world("drop")
    slots = object_slots(drop.state_layout.entries)
    assert len(slots) == 3 and all(len(s) == 15 for s in slots)
    assert slots[1][0] == drop.state_layout.slice("obj1_pos").start
    assert object_slots(get_world("push").state_layout.entries) == []
    assert state_model_slots("mlp", drop) is None
    with pytest.raises(ValueError, match="Push's state has none"):
        state_model_slots("objects", get_world("push"))
    with pytest.raises(UnknownChoiceError, match="unknown state model 'gnn'"):
        state_model_slots("gnn", drop)


def test_object_state_model_learns_a_collision():
    """Two balls on a line (pos, vel each) that exchange velocities when they meet: the interaction
    network learns the free flight and the collision from multi-step rollouts."""
    from cosmos_sim.dynamics.train import fit_state_model, normalization, state_windows, step_frames
    from cosmos_sim.world_model import StateHead, object_slots

    g = torch.Generator().manual_seed(0)
    E, T = 80, 12
    states = []
    for _ in range(E):
        s = torch.cat([torch.rand(1, generator=g) - 1.0, torch.rand(1, generator=g) * 0.2,
                       torch.rand(1, generator=g), -torch.rand(1, generator=g) * 0.2])  # a_pos a_vel b_pos b_vel
        seq = [s]
        for _ in range(T):
            s = s.clone()
            s[0], s[2] = s[0] + s[1], s[2] + s[3]
            if s[2] - s[0] < 0.1:
                s[1], s[3] = s[3].clone(), s[1].clone()
            seq.append(s)
        states.append(torch.stack(seq))
    raw = torch.cat(states)
    cache = {"states": raw, "actions": torch.zeros(E * T, 1), "frame_offsets": torch.arange(E + 1) * (T + 1),
             "step_offsets": torch.arange(E + 1) * T}
    stats = normalization({**cache, "latents": torch.zeros(len(raw), 1, 1, 1)}, list(range(E)), False)
    slots = object_slots([("a_pos", 1), ("a_vel", 1), ("b_pos", 1), ("b_vel", 1)])
    assert slots == [[0, 1], [2, 3]]
    torch.manual_seed(0)
    head = StateHead(4, 2, 4, 1, width=4, hidden=16, slots=slots, slot_hidden=32)
    head.set_statistics(stats, raw, step_frames(cache, list(range(E))))
    norm = {**cache, "states": (raw - stats["state_mean"]) / stats["state_std"]}
    w = state_windows(norm, list(range(E)), horizon=4)

    vel = w["next"][..., [1, 3]]  # windows in which the balls collide: a velocity changes
    hit = (vel != torch.cat([w["start"][:, None, [1, 3]], vel[:, :-1]], 1)).any(-1).any(-1)
    assert 0.1 < hit.float().mean() < 0.9

    def rollout_error(rows):
        with torch.no_grad():
            s, err = w["start"][rows], 0.0
            for j in range(4):
                s = head(s, w["actions"][rows, j])
                err += ((s - w["next"][rows, j]) ** 2).mean().item()
        return err / 4

    before = [rollout_error(hit), rollout_error(~hit)]
    fit_state_model(head, w, steps=600, batch_size=128, lr=3e-3, progress=False)
    after = [rollout_error(hit), rollout_error(~hit)]
    below("collision error / before", after[0] / before[0], 0.2)
    below("free-flight error / before", after[1] / before[1], 0.05)


def test_world_model_files_from_before_the_state_gate_load(trained, tmp_path):
    from cosmos_sim.training.checkpoint import read_checkpoint, write_checkpoint

    _, result = trained
    tensors, meta = read_checkpoint(result["world_model"])
    assert meta["state_head_config"]["gate"] is True
    meta["state_head_config"] = {k: v for k, v in meta["state_head_config"].items() if k != "gate"}
    tensors = {k: v for k, v in tensors.items() if not k.startswith("state_head/gate.")}
    write_checkpoint(tmp_path / "old.safetensors", tensors, meta)
    m = WorldModel.load(tmp_path / "old.safetensors")
    assert m.state_head.gate is None


def test_state_only_steps_match_full_steps(trained):
    """The state does not depend on the latents, so advancing it alone gives the same states."""
    root, result = trained
    m = WorldModel.load(result["world_model"])
    ep = EpisodeDataset(root / "data")[0]
    frames = torch.from_numpy(ep["pixels"][None, :2])
    ext, fov = torch.from_numpy(ep["extrinsics"][None]), torch.from_numpy(ep["fovy"][None])
    s0 = torch.from_numpy(ep["states"][None, 1])
    full, alone = m.start(frames, ext[:, :2], fov[:, :2], states=s0), m.start_states(s0)
    for t in range(3):
        a = torch.from_numpy(ep["actions"][None, 1 + t])
        _, sa = m.step(full, a, ext[:, 2 + t], fov[:, 2 + t])
        _, sb = m.step(alone, a, latents=False)
        assert torch.allclose(sa, sb, atol=1e-6)
    with pytest.raises(RuntimeError, match="latents=False"):
        m.step(alone, a, ext[:, 2], fov[:, 2])
    with pytest.raises(ValueError, match=r"states must be \[B, 12\]"):
        m.start_states(torch.zeros(1, 3))


def test_camera_swap_replays_episodes_under_a_new_pose(trained):
    """Recorded episodes replay in physics under another camera (same states); both rollouts scored."""
    import numpy as np

    from cosmos_sim.evaluation.open_loop import camera_swap

    root, m, ds, long_eps = _model_and_long_episodes(trained)
    r = camera_swap(m, root / "data", long_eps, horizons=(1, 4))
    assert r["episodes"] == len(long_eps) > 0 and r["skipped"] == 0
    for name in ("matched", "held"):
        assert np.isfinite(r[name][1]) and np.isfinite(r[name][4])
    # the model's camera input changes its frames: held and matched differ
    assert r["matched"][4] != r["held"][4]


@pytest.mark.parametrize("family,tok", [("diffusion", "tok"), ("autoregressive", "tok-dv")])
def test_guided_families_train_and_round_trip(trained, tmp_path, family, tok):
    """The diffusion and AR `tiny` presets (each with its regression guide) train through the pipeline;
    the exported WorldModel reloads exactly and the same generator seed gives the same rollout."""
    root, _ = trained
    if tok == "tok-dv" and not (root / tok).exists():
        train_tokenizer(root / "data", root / tok, preset("tiny-dv", 32), TrainConfig(steps=5, batch_size=4),
                        progress=False)
    r = train_dynamics(root / "data", root / tok, tmp_path / family, family, "tiny",
                       TrainConfig(steps=6, batch_size=4, warmup_steps=1), progress=False,
                       state=StateModelConfig(steps=5))
    m = WorldModel.load(r["world_model"])
    assert m.family == family and m.dynamics.guide is not None
    ep = EpisodeDataset(root / "data")[0]
    K = m.context
    frames = torch.from_numpy(ep["pixels"][None, :K])
    ext, fov = torch.from_numpy(ep["extrinsics"][None]), torch.from_numpy(ep["fovy"][None])
    outs = []
    for model in (m, m, WorldModel.load(m.save(tmp_path / "copy.safetensors"))):
        g = torch.Generator().manual_seed(3)
        st = model.start(frames, ext[:, :K], fov[:, :K])
        outs.append([model.step(st, torch.from_numpy(ep["actions"][None, K - 1 + t]), ext[:, K + t], fov[:, K + t],
                                generator=g, sampling={"temperature": 1.0} if family == "autoregressive" else None)
                     for t in range(3)])
    for steps in zip(*outs, strict=True):
        assert all(torch.equal(steps[0][0], s[0]) and torch.equal(steps[0][1], s[1]) for s in steps[1:])
