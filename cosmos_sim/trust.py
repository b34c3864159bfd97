"""Per-step trust in a learned rollout: a step is *off the data* where a learned part disagrees with itself more
than it does on held-out data.

Every learned part that is an ensemble reports its members' disagreement per step: the state model (the
members' standard deviation averaged over the state's entries, in units of each entry's spread: what the learned
env reports as `info["uncertainty"]`) and a learned task head (the reward's standard deviation in units of its
spread, the termination and success probabilities' standard deviations). Each signal's threshold is its
`quantile` along held-out episodes replayed in the model (their recorded actions from their first state, state
only), set once at training (`calibrate_trust`) and stored in the model's metadata (`info["trust"]`).

A step's trust score is the largest ratio signal / threshold over the parts; above 1 the step is off the data.
A policy whose learned rollouts spend more than `FLAG_SHARE` of their steps off the data gets its learned
figures flagged: not to be trusted. Held-out episodes themselves spend between 1 - quantile and (number of
parts) x (1 - quantile) of their steps off the data (`held_out_share`, stored with the thresholds): the
baseline a policy's share is read against. State disagreement alone misses a
termination head that fires where the state model is sure, so every head counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from cosmos_sim.errors import InputError

QUANTILE = 0.99  # each signal's threshold: this quantile over the held-out steps
FLAG_SHARE = 0.1  # a policy with more of its learned steps off the data is flagged (held-out: 1 - QUANTILE)
# where the members agree within this much on an event's probability they are not in doubt about it, however
# rare doubt was on held-out data (held-out data without the event gives a threshold near 0)
MIN_THRESHOLDS = {"termination": 0.05, "success": 0.05}
NO_ENSEMBLE = ("the model has no ensemble part (one state-model member, no task-head members), so nothing "
               "measures where it leaves its data: train with --state-members K (K > 1)")


def signals(model: Any, state_uncertainty: torch.Tensor, task_spread: dict[str, torch.Tensor]
            ) -> dict[str, torch.Tensor]:
    """The disagreement signals [B] of a step, one per ensemble part of `model` (a WorldModel): "state" (the state
    ensemble's `uncertainty`) and the task head's "reward", "termination", "success" (`WorldModel.task_spread`,
    {} for a one-member head or none)."""
    return ({"state": state_uncertainty.float()} if model.state_head.members > 1 else {}) | task_spread


@torch.no_grad()
def replay_signals(model: Any, episodes: Sequence[tuple[torch.Tensor, torch.Tensor]], batch: int = 256
                   ) -> dict[str, torch.Tensor]:
    """Every step's signals (concatenated over episodes) along `episodes` (states [T+1, S], actions [T, A] in the
    world's units) replayed in the model's state space from each episode's first state."""
    parts: dict[str, list[torch.Tensor]] = {}
    eps = [(torch.as_tensor(s, dtype=torch.float32), torch.as_tensor(a, dtype=torch.float32)) for s, a in episodes
           if len(a)]
    for i in range(0, len(eps), batch):
        chunk = eps[i:i + batch]
        T = max(len(a) for _, a in chunk)
        lengths = torch.tensor([len(a) for _, a in chunk])
        acts = torch.zeros(len(chunk), T, chunk[0][1].shape[-1])
        for j, (_, a) in enumerate(chunk):
            acts[j, :len(a)] = a
        rollout = model.start_states(torch.stack([s[0] for s, _ in chunk]))
        prev = torch.stack([s[0] for s, _ in chunk]).to(model.device)
        for t in range(T):
            a = acts[:, t].to(model.device)
            _, nxt = model.step(rollout, a, latents=False)
            live = (lengths > t).to(model.device)
            for k, v in signals(model, rollout.extra["uncertainty"], model.task_spread(prev, a, nxt)).items():
                parts.setdefault(k, []).append(v[live].cpu())
            prev = nxt
    return {k: torch.cat(v) for k, v in parts.items()}


def calibrate_trust(model: Any, episodes: Sequence[tuple[torch.Tensor, torch.Tensor]],
                    quantile: float = QUANTILE) -> dict | None:
    """The thresholds of every signal (its `quantile` along the held-out `episodes` replayed in `model`), as stored
    in `info["trust"]`; None when the model has no ensemble part or there are no held-out steps."""
    if not 0.5 <= quantile < 1.0:
        raise InputError(f"trust quantile must be in [0.5, 1), got {quantile}")
    sig = replay_signals(model, episodes)
    if not sig or not len(next(iter(sig.values()))):
        return None
    thresholds = {k: max(float(torch.quantile(v.double(), quantile)), MIN_THRESHOLDS.get(k, 1e-9))
                  for k, v in sig.items()}
    calibration = {"quantile": quantile, "thresholds": thresholds, "held_out_episodes": len(episodes),
                   "held_out_steps": int(len(next(iter(sig.values()))))}
    # the union over the parts: each part is off at 1 - quantile of the steps, together more often; the
    # baseline a policy's off-data share is read against
    return calibration | {"held_out_share": float((trust_score(calibration, sig) > 1).double().mean())}


def trust_score(calibration: Mapping, sig: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """The largest signal / threshold over the calibrated signals [B] (> 1: off the data); None when none of the
    calibrated signals is present."""
    ratios = [sig[k] / float(t) for k, t in calibration["thresholds"].items() if k in sig]
    return torch.stack(ratios).amax(0) if ratios else None


def policy_trust(off_data_steps: Sequence[int] | np.ndarray, lengths: Sequence[int] | np.ndarray,
                 flag_share: float = FLAG_SHARE) -> dict:
    """A policy's trust from its learned episodes' counts of off-data steps and their lengths: the share of all its
    steps off the data, the share of its episodes with any, and whether it is flagged (share > `flag_share`)."""
    off, n = np.asarray(off_data_steps, float), np.asarray(lengths, float)
    share = float(off.sum() / n.sum()) if n.sum() > 0 else 0.0
    return {"off_data_share": share, "episodes_off_data": float((off > 0).mean()) if len(off) else 0.0,
            "off_data_per_episode": float(off.mean()) if len(off) else 0.0,
            "flagged": bool(share > flag_share), "flag_share": float(flag_share)}
