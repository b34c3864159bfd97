"""Toy 2-D state systems for state-model tests: episodes of known dynamics as a state cache."""

from __future__ import annotations

from collections.abc import Callable

import torch

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def toy_cache(start: Callable[[torch.Generator], torch.Tensor], step: Step, episodes: int, steps: int, seed: int
              ) -> dict[str, torch.Tensor]:
    """`episodes` runs of `steps` uniform actions in [-1, 1]^2 from `start(g)`, advanced by `step(s, a)`, as the
    cache `state_windows` reads (states, actions, frame and step offsets)."""
    g = torch.Generator().manual_seed(seed)
    states, actions = [], []
    for _ in range(episodes):
        s = start(g)
        seq, acts = [s], torch.rand(steps, 2, generator=g) * 2 - 1
        for a in acts:
            s = step(s, a)
            seq.append(s)
        states.append(torch.stack(seq))
        actions.append(acts)
    return {"states": torch.cat(states), "actions": torch.cat(actions),
            "frame_offsets": torch.arange(episodes + 1) * (steps + 1),
            "step_offsets": torch.arange(episodes + 1) * steps}


def pusher_start(g: torch.Generator) -> torch.Tensor:
    return torch.stack([torch.rand((), generator=g) * 2 - 1, torch.rand((), generator=g) - 0.5])


def pusher_block(s: torch.Tensor, a: torch.Tensor, x_max: float | None = None) -> torch.Tensor:
    """x0 moved by the action (clamped to [-1, x_max] when given); x1 pushed only while x0 > 0.5."""
    push = 0.3 * a[0] if s[0] > 0.5 else torch.zeros(())
    x0 = s[0] + 0.3 * a[0]
    return torch.stack([x0 if x_max is None else x0.clamp(-1, x_max), s[1] + push])
