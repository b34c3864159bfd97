"""The deterministic family's optional state renderer (issue 26): shapes, the gate's start, learning a pose."""

import pytest
import torch

from cosmos_sim.dynamics.deterministic import DeterministicConfig, DeterministicDynamics

from margins import below


@pytest.mark.slow  # trains
def test_render_head_steps_and_learns_to_follow_the_camera():
    torch.manual_seed(0)
    cfg = DeterministicConfig(latent_channels=4, latent_size=4, action_dim=3, context=2, horizon=1, width=16,
                              depth=2, render=True)
    dyn = DeterministicDynamics(cfg)
    B = 8
    past, pp = torch.randn(B, 2, 4, 4, 4), torch.randn(B, 2, 6, 4, 4)
    a, pl = torch.randn(B, 3), torch.randn(B, 6, 4, 4)
    out = dyn.predict(past, pp, a, pl)[0]
    assert out.shape == (B, 4, 4, 4)
    gate = torch.sigmoid(dyn.gate(torch.cat([pp[:, -1], pl, pl - pp[:, -1]], 1)))
    assert torch.allclose(gate, torch.full_like(gate, torch.sigmoid(torch.tensor(2.0)).item()))  # leans on copying
    # A target that depends on the told camera alone (not on the context) is learnable through the renderer.
    target = pl[:, :4] * 0.5
    opt = torch.optim.Adam(dyn.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        loss = ((dyn.step(past, pp, a, pl) - target) ** 2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    below("loss / first loss", loss.item() / first, 0.05)
    plain = DeterministicDynamics(DeterministicConfig(latent_channels=4, latent_size=4, action_dim=3, width=16,
                                                      depth=2))
    assert not hasattr(plain, "gate") and plain.predict(past, pp, a, pl)[0].shape == (B, 4, 4, 4)


def _rays(n, size, seed=0):
    import numpy as np

    from cosmos_sim.camera import plucker_from_extrinsics
    from cosmos_sim.worlds import get_world

    rng = np.random.default_rng(seed)
    poses = [get_world("push").camera_range.sample(rng) for _ in range(n)]
    ext = torch.from_numpy(np.stack([p.extrinsics() for p in poses]).astype(np.float32))
    return plucker_from_extrinsics(ext, torch.tensor([p.fovy for p in poses]), size)


def test_the_geometric_renderer_has_its_own_loss_and_reuses_it_in_the_rollout():
    import pytest

    from cosmos_sim.errors import InputError

    torch.manual_seed(0)
    cfg = DeterministicConfig(latent_channels=4, latent_size=4, action_dim=3, context=2, horizon=2, width=16,
                              depth=2, render=True, render_planes=(0.0, 0.1), render_weight=1.0, render_width=16)
    dyn = DeterministicDynamics(cfg)
    B, L = 3, 4
    batch = {"latents": torch.randn(B, L, 4, 4, 4), "plucker": _rays(B * L, 4).view(B, L, 6, 4, 4),
             "actions": torch.randn(B, L - 1, 3)}
    loss, metrics = dyn.training_loss(batch)
    assert torch.isfinite(loss) and "render_mse" in metrics
    renders = dyn.render(batch["plucker"][:, 1:].flatten(0, 1), batch["actions"].flatten(0, 1)).view(B, L - 1, 4, 4, 4)
    assert torch.allclose(dyn.rollout(batch, 2, renders), dyn.rollout(batch, 2), atol=1e-5)
    with pytest.raises(InputError, match="render_planes needs render"):
        DeterministicDynamics(DeterministicConfig(render_planes=(0.0,)))


@pytest.mark.slow  # trains
def test_the_geometric_renderer_learns_where_an_object_is_seen():
    """A latent that marks the cells whose rays meet the table near a point given in the state: a comparison
    of hit and state positions, which the plane hits make a short job."""
    from cosmos_sim.camera import ray_plane_hits

    torch.manual_seed(0)
    cfg = DeterministicConfig(latent_channels=1, latent_size=8, action_dim=2, context=1, horizon=1, width=16,
                              depth=2, render=True, render_planes=(0.0,), render_width=32)
    dyn = DeterministicDynamics(cfg)
    rays = _rays(64, 8)
    spot = torch.rand(64, 2) * 0.4 - 0.2
    hit = ray_plane_hits(rays, 1, (0.0,))[:, 3:5]
    target = ((hit - spot[:, :, None, None]).norm(dim=1, keepdim=True) < 0.15).float()
    opt = torch.optim.Adam(dyn.parameters(), lr=3e-3)
    first = None
    for _ in range(400):
        loss = ((dyn.render(rays, spot * 5) - target) ** 2).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    below("loss / first loss", loss.item() / first, 0.25)
    below("loss / target variance", loss.item() / target.var().item(), 0.25)
