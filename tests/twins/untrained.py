"""An untrained learned twin of any Gymnasium env's world, built in memory (nothing trained, nothing saved): for
tests of what does not depend on skill (spaces, resets, seeding)."""

from __future__ import annotations

import torch


def untrained_twin(world_name: str, image_size: int = 32):
    from cosmos_sim.dynamics.base import build_dynamics
    from cosmos_sim.dynamics.train import dynamics_config
    from cosmos_sim.tokenizer import CausalVideoTokenizer, preset
    from cosmos_sim.world_model import StateHead, TaskHead, WorldModel
    from cosmos_sim.worlds import get_world

    world = get_world(world_name)
    torch.manual_seed(0)
    tok = CausalVideoTokenizer(preset("tiny", image_size))
    c, S, A = tok.config, world.state_dim, world.action_dim
    return WorldModel(tok, build_dynamics("deterministic", dynamics_config("deterministic", "tiny", tok, A + S)),
                      StateHead(c.latent_dim, c.latent_size, S, A), world=world.name,
                      state_layout=[list(e) for e in world.state_layout.entries],
                      action_names=list(world.action_names), latent_mean=torch.zeros(c.latent_dim, 1, 1),
                      latent_std=torch.ones(c.latent_dim, 1, 1), state_mean=torch.zeros(S), state_std=torch.ones(S),
                      task_head=TaskHead(S, A))
