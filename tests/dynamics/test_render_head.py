"""The deterministic family's optional state renderer (issue 26): shapes, the gate's start, learning a pose."""

import torch

from cosmos_sim.dynamics.deterministic import DeterministicConfig, DeterministicDynamics


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
    assert loss.item() < 0.05 * first
    plain = DeterministicDynamics(DeterministicConfig(latent_channels=4, latent_size=4, action_dim=3, width=16,
                                                      depth=2))
    assert not hasattr(plain, "gate") and plain.predict(past, pp, a, pl)[0].shape == (B, 4, 4, 4)
