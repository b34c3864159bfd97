"""EDM diffusion dynamics: shapes, seeded sampling, save/load, conditioning, learning, samplers, errors."""

import json

import pytest
import torch

from cosmos_sim.dynamics.base import FAMILIES, build_dynamics
from cosmos_sim.dynamics.diffusion import DiffusionConfig, DiffusionDynamics
from cosmos_sim.errors import ActionError, UnknownChoiceError

from margins import below

TINY = dict(latent_channels=4, latent_size=4, action_dim=2, context=2, horizon=2, patch=2, width=64, depth=2,
            heads=4, mlp_ratio=2)
D, h, A, K = 4, 4, 2, 2


def model(randomize=True, **kw):
    torch.manual_seed(0)
    m = DiffusionDynamics(DiffusionConfig(**{**TINY, **kw}))
    if randomize:  # AdaLN-Zero starts as F = 0; perturb so every input matters
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return m


def step_inputs(B=3, T=K, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, D, h, h, generator=g), torch.randn(B, T, 6, h, h, generator=g),
            torch.rand(B, A, generator=g) * 2 - 1, torch.randn(B, 6, h, h, generator=g))


def toy_batch(B=16, L=4, seed=0):
    """Deterministic toy world: the next latent is the last one rolled by a pixel, plus the action."""
    g = torch.Generator().manual_seed(seed)
    z = [torch.randn(B, D, h, h, generator=g) * 0.5]
    actions = torch.rand(B, L - 1, A, generator=g) * 2 - 1
    for t in range(L - 1):
        nxt = 0.8 * z[-1].roll(1, dims=-1)
        nxt[:, :A] += 0.4 * actions[:, t, :, None, None]
        z.append(nxt)
    return {"latents": torch.stack(z, 1), "actions": actions, "plucker": torch.randn(B, L, 6, h, h, generator=g),
            "states": torch.zeros(B, L, 3)}


def seeded_predict(m, inputs, seed, **kw):
    return m.predict(*inputs, generator=torch.Generator().manual_seed(seed), **kw)[0]


def test_registered_and_config_round_trip():
    cfg = DiffusionConfig(**TINY)
    assert (FAMILIES["diffusion"].config_cls, FAMILIES["diffusion"].model_cls) == (DiffusionConfig, DiffusionDynamics)
    assert DiffusionConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert isinstance(build_dynamics("diffusion", cfg.to_dict()), DiffusionDynamics)


def test_shapes():
    m = model().eval()
    out, cache = m.predict(*step_inputs(B=3))
    assert out.shape == (3, D, h, h) and out.dtype == torch.float32 and cache is None
    past, rays, a, ray = step_inputs(B=2, T=5)  # a longer history: the last K frames are used
    torch.testing.assert_close(seeded_predict(m, (past, rays, a, ray), 0),
                               seeded_predict(m, (past[:, -K:], rays[:, -K:], a, ray), 0))
    for rollout in (0, 1):
        loss, metrics = model(self_rollout_steps=rollout).training_loss(toy_batch(B=4, L=K + 2))
        assert loss.ndim == 0 and torch.isfinite(loss) and "denoise_mse" in metrics
        assert ("denoise_mse_rollout" in metrics) == bool(rollout)


def test_same_seed_same_sample():
    m = model().eval()
    x = step_inputs()
    for sampler in ("euler", "heun"):
        a, b = seeded_predict(m, x, 7, sampler=sampler), seeded_predict(m, x, 7, sampler=sampler)
        assert torch.equal(a, b)
        assert not torch.allclose(a, seeded_predict(m, x, 8, sampler=sampler))
    m2 = model(cond_noise_infer=0.05).eval()  # context noise at inference also comes from the generator
    assert torch.equal(seeded_predict(m2, x, 3), seeded_predict(m2, x, 3))


def test_state_dict_round_trip():
    m = model().eval()
    m2 = build_dynamics("diffusion", json.loads(json.dumps(m.config.to_dict()))).eval()
    m2.load_state_dict({k: v.clone() for k, v in m.state_dict().items()})
    x = step_inputs()
    assert torch.equal(seeded_predict(m, x, 0), seeded_predict(m2, x, 0))


def test_conditioning_is_wired():
    m = model()
    past, rays, a, ray = step_inputs()
    a.requires_grad_(True)
    ray.requires_grad_(True)
    rays.requires_grad_(True)
    sigma = torch.full((3,), 1.0)
    x = torch.randn(3, D, h, h)
    out = m.denoise(x, sigma, past, rays, a, ray)
    out.square().sum().backward()
    for t in (a, ray, rays):
        assert t.grad is not None and t.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.action_mlp.parameters())
    with torch.no_grad():  # and each input changes the denoiser's output
        base = m.denoise(x, sigma, past, rays, a, ray)
        for changed in [(x, sigma, past, rays, -a, ray), (x, sigma, past, rays, a, ray.flip(0)),
                        (x, sigma, past.flip(0), rays, a, ray), (x, sigma * 3, past, rays, a, ray)]:
            assert not torch.allclose(base, m.denoise(*changed), atol=1e-4)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    m = DiffusionDynamics(DiffusionConfig(**TINY, residual_scale=0.8))  # the toy's residual std is about 0.6
    batch = toy_batch(B=32, L=K + 2)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)

    def eval_loss():
        with torch.no_grad():
            torch.manual_seed(123)  # same σ, noise and target positions each time
            return sum(float(m.training_loss(batch)[0]) for _ in range(4)) / 4

    before = eval_loss()
    for _ in range(150):
        loss, _ = m.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval(), batch, before, eval_loss()


@pytest.mark.slow  # trains
def test_training_loss_decreases(trained):
    _, _, before, after = trained
    below("loss / before", after / before, 0.6)


@pytest.mark.slow  # trains
def test_samplers_agree_on_trained_toy(trained):
    m, batch, _, _ = trained
    x = (batch["latents"][:8, :K], batch["plucker"][:8, :K], batch["actions"][:8, K - 1], batch["plucker"][:8, K])
    euler, heun = seeded_predict(m, x, 0, steps=24, sampler="euler"), seeded_predict(m, x, 0, steps=24, sampler="heun")
    assert torch.isfinite(euler).all() and torch.isfinite(heun).all()
    assert torch.equal(heun, seeded_predict(m, x, 0, steps=24, sampler="heun"))
    scale = batch["latents"].std()
    below("|euler - heun| / scale", (euler - heun).abs().mean() / scale, 0.25)
    few = seeded_predict(m, x, 0)  # the default few-step sampler beats copying the last frame
    target = batch["latents"][:8, K]
    copy_last = (x[0][:, -1] - target).square().mean()
    below("few-step error / copy-last error", (few - target).square().mean() / copy_last, 0.5)


def test_bf16_autocast():
    m = model(self_rollout_steps=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = m.training_loss(toy_batch(B=4, L=K + 2))
        out, _ = m.predict(*step_inputs())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    loss.backward()


def test_bad_shapes_name_the_expected_shape():
    m = model()
    past, rays, a, ray = step_inputs(B=2)
    with pytest.raises(ValueError, match=r"past latents must be \[B, T >= 2, 4, 4, 4\]"):
        m.predict(past[:, :1], rays[:, :1], a, ray)
    with pytest.raises(ValueError, match=r"\[B, T >= 2, 4, 4, 4\], got \(2, 2, 3, 4, 4\)"):
        m.predict(past[:, :, :3], rays, a, ray)
    with pytest.raises(ValueError, match=r"past_plucker must be \[2, 2, 6, 4, 4\]"):
        m.predict(past, rays[:, :, :3], a, ray)
    with pytest.raises(ActionError, match=r"action must be \[2, 2\], got \(2, 3\)"):
        m.predict(past, rays, torch.zeros(2, 3), ray)
    with pytest.raises(ValueError, match=r"plucker must be \[2, 6, 4, 4\]"):
        m.predict(past, rays, a, ray[:1])
    batch = toy_batch(B=2, L=3)
    with pytest.raises(ValueError, match=r"batch actions must be \[2, 2, 2\]"):
        m.training_loss({**batch, "actions": batch["actions"][:, :1]})
    with pytest.raises(ValueError, match=r"batch latents must be \[B, L >= 3, 4, 4, 4\]"):
        m.training_loss({**batch, "latents": batch["latents"][:, :2]})
    with pytest.raises(ValueError, match="steps must be >= 1"):
        m.predict(past, rays, a, ray, steps=0)
    with pytest.raises(UnknownChoiceError):
        m.predict(past, rays, a, ray, sampler="ddim")
    with pytest.raises(UnknownChoiceError):
        DiffusionConfig(sampler="ddim")
    with pytest.raises(ValueError, match="horizon"):
        DiffusionConfig(horizon=1, self_rollout_steps=1)


def test_residual_target_is_added_to_the_last_frame():
    """Same weights and seed: the residual model's sample is the plain model's plus the last latent."""
    x = step_inputs(B=2)
    res = seeded_predict(model(residual=True, residual_scale=1.0, latent_scale=1.0), x, 0)
    plain = seeded_predict(model(residual=False, latent_scale=1.0), x, 0)
    assert torch.allclose(res - plain, x[0][:, -1], atol=1e-5)


def test_guided_model_samples_around_its_guide():
    """With a guide, training adds the guide's MSE (and its gradients), and the sample is the guide's
    prediction plus the denoised residual: same weights and seed, a shifted guide shifts the sample."""
    m = model(guide_width=8, guide_depth=1)
    loss, metrics = m.training_loss(toy_batch(B=4, L=K + 1))
    assert "guide_mse" in metrics
    loss.backward()
    assert all(p.grad is not None for p in m.guide.parameters())
    x = step_inputs(B=2)
    a = seeded_predict(m, x, 0)
    m2 = model(guide_width=8, guide_depth=1)
    with torch.no_grad():
        m2.guide.out.bias.add_(0.25)  # the guide's prediction moves by 0.25 everywhere
    b = seeded_predict(m2, x, 0)
    assert torch.isfinite(a).all() and not torch.allclose(a, b)
    assert torch.equal(a, seeded_predict(m, x, 0))


def test_every_family_sizes_its_training_window():
    """train_dynamics cuts windows of `config.window` frames: context + horizon unless a family asks more."""
    from cosmos_sim.dynamics.deterministic import DeterministicConfig

    assert DiffusionConfig(context=2, horizon=3).window == 5
    assert DeterministicConfig(context=2, horizon=4).window == 6
    assert {"deterministic", "diffusion", "autoregressive"} <= set(FAMILIES)
    assert all(hasattr(f.config_cls(), "window") for f in FAMILIES.values())
