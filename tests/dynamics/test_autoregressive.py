import json

import pytest
import torch

from cosmos_sim.dynamics.autoregressive import AutoregressiveConfig, AutoregressiveDynamics
from cosmos_sim.dynamics.base import FAMILIES, build_dynamics
from cosmos_sim.tokenizer.model import FSQ

from margins import above, below

CFG = AutoregressiveConfig(latent_size=4, width=32, depth=2, heads=2, context=2, horizon=2, max_frames=8,
                           cache_frames=7)
S, D = CFG.latent_size, len(CFG.fsq_levels)


def window(B=3, L=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, FSQ(CFG.fsq_levels).levels.prod().long().item(), (B, L, S, S), generator=g)
    latents = FSQ(CFG.fsq_levels).indices_to_codes(idx).movedim(-1, 2)  # [B, L, D, h, w]
    return {"latents": latents, "plucker": torch.randn(B, L, 6, S, S, generator=g),
            "actions": torch.rand(B, L - 1, 2, generator=g) * 2 - 1}


def model(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    return AutoregressiveDynamics(cfg).eval()


def test_config_round_trip_and_registry():
    d = json.loads(json.dumps(CFG.to_dict()))
    assert AutoregressiveConfig.from_dict(d) == CFG
    assert FAMILIES["autoregressive"].config_cls is AutoregressiveConfig
    assert isinstance(build_dynamics("autoregressive", d), AutoregressiveDynamics)


def test_shapes_and_valid_fsq_codes():
    m, b = model(), window()
    loss, metrics = m.training_loss(b)
    assert loss.ndim == 0 and set(metrics) >= {"ce", "token_acc"}
    out, cache = m.predict(b["latents"][:, :2], b["plucker"][:, :2], b["actions"][:, 1], b["plucker"][:, 2],
                           generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, D, S, S) and out.dtype == torch.float32
    assert cache.frames == 2 and cache.keys[0].shape == (3, CFG.heads, 2 * S * S, CFG.width // CFG.heads)
    fsq = FSQ(CFG.fsq_levels)
    idx = fsq.codes_to_indices(out.movedim(1, -1))
    assert idx.min() >= 0 and idx.max() < 8 * 8 * 8 * 5 * 5 * 5
    assert torch.equal(fsq.indices_to_codes(idx).movedim(-1, 1), out)
    assert torch.equal(m.to_digits(b["latents"][:, 0]), m.to_digits(m.to_codes(m.to_digits(b["latents"][:, 0]))))


def test_cache_matches_recompute_from_full_history():
    m, b = model(), window(B=2, L=6)
    lat, pl, act = b["latents"], b["plucker"], b["actions"]
    history, cache = lat[:, :2], None
    for t in range(2, 5):  # three env steps
        with_cache = m.predict(history[:, -2:], pl[:, t - 2:t], act[:, t - 1], pl[:, t],
                               generator=torch.Generator().manual_seed(t), cache=cache)
        fresh = m.predict(history, pl[:, :t], act[:, t - 1], pl[:, t], generator=torch.Generator().manual_seed(t))
        lc, _ = m.next_logits(history[:, -2:], pl[:, t - 2:t], act[:, t - 1], pl[:, t], cache)
        lf, _ = m.next_logits(history, pl[:, :t], act[:, t - 1], pl[:, t])
        assert (lc - lf).abs().max() < 1e-4
        assert torch.equal(with_cache[0], fresh[0])
        cache = with_cache[1]
        assert cache.frames == t
        history = torch.cat([history, with_cache[0][:, None]], 1)


def test_cache_drops_oldest_frames():
    cfg = AutoregressiveConfig(latent_size=4, width=32, depth=1, heads=2, context=2, horizon=1, max_frames=8)
    m, b = model(cfg), window(B=1, L=8)
    lat, pl, act = b["latents"], b["plucker"], b["actions"]
    cache = None
    for t in range(2, 7):
        _, cache = m.predict(lat[:, t - 2:t], pl[:, t - 2:t], act[:, t - 1], pl[:, t], cache=cache)
        assert cache.frames == cfg.cache_limit == 2 and cache.start == t - 2
        assert cache.keys[0].shape[2] == 2 * S * S


def test_same_seed_same_sample_different_seed_differs():
    m, b = model(), window()
    args = (b["latents"][:, :2], b["plucker"][:, :2], b["actions"][:, 1], b["plucker"][:, 2])
    a = m.predict(*args, generator=torch.Generator().manual_seed(1))[0]
    again = m.predict(*args, generator=torch.Generator().manual_seed(1))[0]
    other = m.predict(*args, generator=torch.Generator().manual_seed(2))[0]
    assert CFG.temperature == 1.0
    assert torch.equal(a, again) and not torch.equal(a, other)
    greedy = AutoregressiveDynamics(AutoregressiveConfig(**{**CFG.to_dict(), "temperature": 0.0}))
    greedy.load_state_dict(m.state_dict())
    g1 = greedy.predict(*args, generator=torch.Generator().manual_seed(1))[0]
    assert torch.equal(g1, greedy.predict(*args, generator=torch.Generator().manual_seed(2))[0])


def test_action_conditioning_changes_logits():
    m, b = model(), window()
    args = (b["latents"][:, :2], b["plucker"][:, :2])
    la, _ = m.next_logits(*args, b["actions"][:, 1], b["plucker"][:, 2])
    lb, _ = m.next_logits(*args, -b["actions"][:, 1], b["plucker"][:, 2])
    lc, _ = m.next_logits(*args, b["actions"][:, 1], b["plucker"][:, 2].flip(-1))
    assert (la - lb).abs().max() > 1e-4 and (la - lc).abs().max() > 1e-4


@pytest.mark.slow  # trains
def test_fits_a_tiny_batch():
    m, b = model(), window(B=4, L=4, seed=1)
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for _ in range(100):
        loss, metrics = m.training_loss(b)
        first = first if first is not None else float(metrics["ce"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    below("ce / first ce", float(metrics["ce"]) / first, 0.3)
    above("token accuracy", float(metrics["token_acc"]), 0.5)


def test_self_forcing_runs():
    cfg = AutoregressiveConfig(**{**CFG.to_dict(), "horizon": 3, "self_forcing": 1.0})
    m, b = model(cfg), window(B=2, L=5)
    loss, _ = m.training_loss(b)
    loss.backward()
    assert torch.isfinite(loss)


def test_self_forcing_replaces_only_the_picked_windows_with_their_own_samples():
    cfg = AutoregressiveConfig(**{**CFG.to_dict(), "horizon": 3, "self_forcing": 0.5, "temperature": 0.0})
    m, b = model(cfg), window(B=8, L=5)
    lat, pl, act = b["latents"], b["plucker"], b["actions"]
    context = m.to_digits(lat)[:, :4]
    torch.manual_seed(3)
    mixed = m._self_forced(lat, pl, act, context)
    torch.manual_seed(3)
    pick = torch.rand(8) < 0.5
    assert 0 < pick.sum() < 8
    assert torch.equal(mixed[:, :2], context[:, :2]) and torch.equal(mixed[~pick], context[~pick])
    past, sub, cache = lat[pick, :2], pick.nonzero().flatten(), None  # the picked windows' own rollout
    for j in range(2):
        nxt, cache = m.predict(past, pl[sub, j:j + 2], act[sub, 1 + j], pl[sub, 2 + j], cache=cache)
        assert torch.equal(mixed[sub, 2 + j], m.to_digits(nxt))
        past = torch.cat([past[:, 1:], nxt[:, None]], 1)
    none = AutoregressiveConfig(**{**cfg.to_dict(), "self_forcing": 1e-9})
    assert model(none)._self_forced(lat, pl, act, context) is context  # nothing picked: no rollout


def test_bad_shapes_name_the_expected_shape():
    m, b = model(), window()
    lat, pl, act = b["latents"], b["plucker"], b["actions"]
    with pytest.raises(ValueError, match=r"past must have shape \[3, 2, 6, 4, 4\]"):
        m.predict(lat[:, :2, :5], pl[:, :2], act[:, 1], pl[:, 2])
    with pytest.raises(ValueError, match=r"action must have shape \[3, 2\]"):
        m.predict(lat[:, :2], pl[:, :2], act[:, 1, :1], pl[:, 2])
    with pytest.raises(ValueError, match=r"plucker must have shape \[3, 6, 4, 4\]"):
        m.predict(lat[:, :2], pl[:, :2], act[:, 1], pl[:, 2, :, :2])
    with pytest.raises(ValueError, match=r"latents must have shape \[3, 4, 6, 4, 4\]"):
        m.training_loss({**b, "latents": lat[:, :3]})
    with pytest.raises(ValueError, match="T <= 7"):
        m.predict(torch.zeros(3, 8, D, S, S), torch.zeros(3, 8, 6, S, S), act[:, 1], pl[:, 2])
    _, cache = m.predict(lat[:, :2], pl[:, :2], act[:, 1], pl[:, 2])
    with pytest.raises(ValueError, match="batch"):
        m.predict(lat[:1, :2], pl[:1, :2], act[:1, 1], pl[:1, 2], cache=cache)


def test_guided_model_trains_its_guide_and_conditions_on_it():
    """With a guide, the loss carries the guide's MSE, the guide gets gradients, and a different guess
    changes the logits; a guided model needs `context` past frames."""
    import dataclasses

    m, b = model(dataclasses.replace(CFG, guide_width=8, guide_depth=1)), window()
    loss, metrics = m.train().training_loss(b)
    assert "guide_mse" in metrics and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in m.guide.parameters()) and m.guess.weight.grad.abs().sum() > 0
    m.eval()
    args = (b["latents"][:, :2], b["plucker"][:, :2], b["actions"][:, 1], b["plucker"][:, 2])
    base, _ = m.next_logits(*args)
    with torch.no_grad():
        m.guide.out.bias.add_(0.5)  # a different guess
    assert not torch.allclose(base, m.next_logits(*args)[0])
    with pytest.raises(ValueError, match="last 2 frames"):
        m.next_logits(b["latents"][:, :1], b["plucker"][:, :1], b["actions"][:, 1], b["plucker"][:, 2])


def test_guide_horizon_trains_the_guide_on_its_own_rollout_over_a_longer_window():
    """guide_horizon 3 > horizon 2: windows grow to context + 3 frames, the guide's loss is its own
    3-step rollout's MSE (as the deterministic family's), and the transformer still sees only its
    context + horizon frames, so its loss is the one it has on the shorter window."""
    import dataclasses

    short = dataclasses.replace(CFG, guide_width=8, guide_depth=1)
    cfg = dataclasses.replace(short, guide_horizon=3)
    assert (short.window, cfg.window) == (4, 5)
    m, b = model(cfg), window(L=5)
    loss, metrics = m.train().training_loss(b)
    with torch.no_grad():
        want = ((m.guide.rollout(b, 3) - b["latents"][:, 2:5]) ** 2).mean()
    assert torch.allclose(metrics["guide_mse"], want)
    loss.backward()
    assert all(p.grad is not None for p in m.guide.parameters())
    m1 = model(short).train()
    m1.load_state_dict(m.state_dict())
    _, m1_metrics = m1.training_loss({k: v[:, :4] if k != "actions" else v[:, :3] for k, v in b.items()})
    assert torch.allclose(metrics["ce"], m1_metrics["ce"])
    with pytest.raises(ValueError, match=r"latents must have shape \[3, 5, 6, 4, 4\]"):
        m.training_loss({**b, "latents": b["latents"][:, :4]})
    with pytest.raises(ValueError, match="guide_horizon"):
        dataclasses.replace(cfg, guide_horizon=0)


def test_greedy_mean_rounds_the_expected_level_and_mode_takes_the_likeliest():
    from cosmos_sim.dynamics.autoregressive import NEG, sample

    # a digit with 5 levels padded to 8 classes: probabilities 0.4 at level 0, 0.35 at 3, 0.25 at 4
    logits = torch.full((1, 8), NEG)
    logits[0, :5] = torch.tensor([0.4, 0.0, 0.0, 0.35, 0.25]).clamp_min(1e-12).log()
    assert sample(logits, 0.0, 0, None, "mode").item() == 0
    assert sample(logits, 0.0, 0, None, "mean").item() == 2  # 0.35 * 3 + 0.25 * 4 = 2.05
    sure = torch.full((1, 8), NEG)
    sure[0, :5] = torch.tensor([-30.0, -30.0, -30.0, -30.0, 30.0])
    assert sample(sure, 0.0, 0, None, "mean").item() == 4  # never past the last valid level
    with pytest.raises(ValueError, match="greedy"):
        AutoregressiveConfig(greedy="median")
