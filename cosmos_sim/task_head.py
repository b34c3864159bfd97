"""The task head of a world whose task is learned (a Gymnasium env's or a recorded dataset's): reward, termination
and success of a step, its training, the calibration of its decision thresholds and its held-out accuracy.

Termination and success are rare events (one terminal step per falling episode), so the head is trained with
their positives weighed up (`pos_weight`, capped at `POS_WEIGHT_CAP`), which moves the logit > 0 boundary out:
it declares events that do not happen. After training, each decision threshold is chosen on held-out steps
(`calibration_split` splits the held-out episodes into a calibration half and an evaluation half;
`calibrate_task_head` picks the logit threshold of best F1 on the calibration half) and the accuracy is reported
on the evaluation half (`task_metrics`), so the reported figure is not the one tuned on. The thresholds live in
the head's config (0.0, the plain logit > 0 rule, for model files from before them).

The head is an ensemble of `members` MLPs (bootstrapped batches, like the state model's), so it says where it
does not know: `spread` gives the members' disagreement on the reward and on the event probabilities, which
the learned env turns into per-step trust (cosmos_sim.trust). Its prediction is the members' mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from cosmos_sim.state_model import MLPEnsemble

# Positives weigh at most this many negatives. At a 1 % event rate the uncapped weight is 99; on the
# synthetic fall of tests/twins/test_termination.py the capped head ranks steps as well (calibrated F1 the
# same within noise) and its logit > 0 rule is far less eager (docs/benchmarks.md, "Learned twins").
POS_WEIGHT_CAP = 10.0
MIN_CALIBRATION_POSITIVES = 5  # fewer events in the calibration half: the threshold stays 0.0
EVENTS = (("termination", "terminated", 1), ("success", "success", 2))  # (name, data key, output column)
DEFAULT_MEMBERS = 5


class TaskHead(nn.Module):
    """Reward, termination and success of a step (prev state, action, next state), learned from data.

    A `World` computes them by code; a Gymnasium env's world (envs/source_env.py) has only the env's
    rewards, `terminated` flags and `info["is_success"]` in its data, so the model learns them: one MLP on
    the normalized states, their change and the action, with three outputs (the reward in units of its
    spread, a termination logit and a success logit). A step terminates (succeeds) where its logit exceeds
    `termination_threshold` (`success_threshold`), chosen on held-out steps (`calibrate_task_head`); 0.0
    (the default, and what files saved before the thresholds load with) is the plain logit > 0 rule.
    """

    def __init__(self, state_dim: int, action_dim: int, hidden: int = 256, has_success: bool = False,
                 termination_threshold: float = 0.0, success_threshold: float = 0.0, members: int = 1):
        super().__init__()
        if int(members) < 1:
            raise ValueError(f"task head members must be >= 1, got {members}")
        self.config = {"state_dim": state_dim, "action_dim": action_dim, "hidden": hidden,
                       "has_success": bool(has_success), "termination_threshold": float(termination_threshold),
                       "success_threshold": float(success_threshold), "members": int(members)}
        self.members = int(members)
        self.ens = MLPEnsemble(3 * state_dim + action_dim, hidden, 3, self.members, gate=False)
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))

    def forward_members(self, prev: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Normalized states [B, S] and actions [B, A] -> each member's outputs [K, B, 3]."""
        x = torch.cat([prev, action, nxt, nxt - prev], -1)
        return self.ens(x.expand(self.members, *x.shape))

    def forward(self, prev: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Normalized states [B, S] and actions [B, A] -> [B, 3]: normalized reward, termination and success logits
        (the members' mean)."""
        return self.forward_members(prev, action, nxt).mean(0)

    def predict(self, prev: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reward [B] in the env's units, terminated [B] and success [B] (bool, at the head's thresholds)."""
        out = self(prev, action, nxt)
        return self._decide(out)

    def _decide(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        reward = out[:, 0] * self.reward_std + self.reward_mean
        success = (out[:, 2] > self.config["success_threshold"] if self.config["has_success"]
                   else torch.zeros_like(out[:, 2], dtype=torch.bool))
        return reward, out[:, 1] > self.config["termination_threshold"], success

    def predict_with_spread(self, prev: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor
                            ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
        """`predict`'s outputs and the members' disagreement per step (`spread`'s), from one forward pass."""
        m = self.forward_members(prev, action, nxt)
        return self._decide(m.mean(0)), self._spread(m)

    def spread(self, prev: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor) -> dict[str, torch.Tensor]:
        """The members' disagreement per step [B]: "reward" (std of the reward, in units of its spread in the
        data), "termination" and, with success, "success" (std of the event's probability). {} for one member."""
        return self._spread(self.forward_members(prev, action, nxt))

    def _spread(self, m: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.members == 1:
            return {}
        p = torch.sigmoid(m[..., 1:])
        out = {"reward": m[..., 0].std(0), "termination": p[..., 0].std(0)}
        if self.config["has_success"]:
            out["success"] = p[..., 1].std(0)
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Also loads a one-network head saved before members (`net.0.weight`, ... of an nn.Sequential)."""
        sd = dict(state_dict)
        if "net.0.weight" in sd:
            for j, i in enumerate((0, 2, 4, 6)):
                sd[f"ens.weights.{j}"] = sd.pop(f"net.{i}.weight").t()[None].contiguous()
                sd[f"ens.biases.{j}"] = sd.pop(f"net.{i}.bias")[None, None].contiguous()
        return super().load_state_dict(sd, strict=strict, assign=assign)


def pos_weight(y: torch.Tensor, cap: float = POS_WEIGHT_CAP) -> torch.Tensor:
    """The weight of a positive of the 0/1 targets `y`: negatives per positive, between 1 and `cap`."""
    pos = y.sum()
    return ((len(y) - pos) / pos.clamp_min(1.0)).clamp(1.0, cap)


def fit_task_head(head: TaskHead, train: dict[str, torch.Tensor], steps: int = 3000, batch_size: int = 512,
                  lr: float = 2e-3, seed: int = 0, device: str | torch.device = "cpu", progress: bool = True,
                  pos_weight_cap: float = POS_WEIGHT_CAP, normalize: bool = True) -> dict:
    """Train the reward/termination/success head on real steps (seeded, so a restarted run repeats it).
    `train` holds `task_data`'s layout (cosmos_sim.dynamics.train): prev, actions, next, rewards, terminated,
    success. `normalize=False` keeps the head's reward scale (a refit from trained weights)."""
    from tqdm.auto import tqdm

    r = train["rewards"]
    if normalize:
        head.reward_mean.fill_(float(r.mean()))
        head.reward_std.fill_(float(r.std().clamp_min(1e-6)) if len(r) > 1 else 1.0)
    head.to(device).train()
    d = {k: v.to(device) for k, v in train.items()}
    target_r = (d["rewards"] - head.reward_mean) / head.reward_std
    pw_t, pw_s = pos_weight(d["terminated"], pos_weight_cap), pos_weight(d["success"], pos_weight_cap)
    bce = nn.functional.binary_cross_entropy_with_logits
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    loss = torch.zeros(())
    for i in tqdm(range(steps), desc="train reward/termination head", disable=not progress, unit="step"):
        for group in opt.param_groups:
            group["lr"] = lr * max(0.02, 1 - i / max(1, steps))
        # each member draws its own batch (bootstrap), so the members disagree where the data is thin
        idx = torch.randint(len(r), (head.members, batch_size), generator=g).to(device)
        x = torch.cat([d["prev"][idx], d["actions"][idx], d["next"][idx], d["next"][idx] - d["prev"][idx]], -1)
        out = head.ens(x)  # [K, batch, 3]
        loss = ((out[..., 0] - target_r[idx]) ** 2).mean() + bce(out[..., 1], d["terminated"][idx], pos_weight=pw_t)
        if head.config["has_success"]:
            loss = loss + bce(out[..., 2], d["success"][idx], pos_weight=pw_s)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    head.cpu().eval()
    return {"task_steps": steps, "task_loss": float(loss.detach()), "termination_pos_weight": float(pw_t),
            "success_pos_weight": float(pw_s)}


def calibration_split(episodes: Sequence[int], seed: int = 0) -> tuple[list[int], list[int]]:
    """Held-out episodes -> (calibration half, evaluation half), by episode: ⌊n/2⌋ episodes drawn by a seeded
    permutation calibrate, the rest evaluate. Fewer than two episodes: no calibration half."""
    eps = list(episodes)
    if len(eps) < 2:
        return [], eps
    order = np.random.default_rng(seed).permutation(len(eps))
    k = len(eps) // 2
    return sorted(eps[i] for i in order[:k]), sorted(eps[i] for i in order[k:])


def f1_threshold(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(t, F1): the threshold of the rule `logit > t` with the highest F1 on these steps, ties to the higher t.
    Candidates lie midway between consecutive distinct logits (and 1 below the lowest: every step positive),
    so a threshold sits in the gap it was chosen in, not on a step's logit."""
    values, inverse = torch.unique(logits.detach().double().cpu(), sorted=True, return_inverse=True)
    y = labels.detach().cpu().double().reshape(-1)
    tp = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse.reshape(-1), y)
    n = torch.bincount(inverse.reshape(-1), minlength=len(values)).double()
    tp_above = tp.flip(0).cumsum(0).flip(0)  # [j]: positives with a logit of rank >= j (predicted at cut j)
    predicted = n.flip(0).cumsum(0).flip(0)
    f1 = 2 * tp_above / (predicted + y.sum()).clamp_min(1.0)
    best = len(f1) - 1 - int(torch.argmax(f1.flip(0)))  # the last (highest) cut of the best F1
    t = float(values[0] - 1.0) if best == 0 else float((values[best - 1] + values[best]) / 2)
    return t, float(f1[best])


@torch.no_grad()
def calibrate_task_head(head: TaskHead, data: dict[str, torch.Tensor] | None,
                        min_positives: int = MIN_CALIBRATION_POSITIVES) -> dict:
    """Set the head's termination (and success, when it has success) threshold to the one of best F1 on `data`
    (the calibration half of the held-out steps, `task_data`'s layout); with fewer than `min_positives`
    events there (or no data), keep 0.0. Returns what was done, for `task_metrics`: the calibration step
    count and, per event, its positives and how the threshold was chosen."""
    record: dict = {"calibration_steps": 0 if data is None else len(data["rewards"])}
    logits = None if data is None or not len(data["rewards"]) else head(data["prev"], data["actions"], data["next"])
    for name, key, col in EVENTS:
        if name == "success" and not head.config["has_success"]:
            continue
        head.config[f"{name}_threshold"] = 0.0
        if logits is None:
            record[f"{name}_calibration"] = "kept 0.0: no calibration half (fewer than 2 held-out episodes)"
            continue
        y = data[key] > 0.5
        k = int(y.sum())
        record[f"{name}_calibration_positives"] = k
        if k < min_positives:
            record[f"{name}_calibration"] = (f"kept 0.0: {k} {name} steps in the calibration half "
                                             f"(fewer than {min_positives})")
            continue
        t, f1 = f1_threshold(logits[:, col], y)
        head.config[f"{name}_threshold"] = t
        record[f"{name}_calibration"] = (f"best F1 ({f1:.3f}) on {len(y)} calibration steps with {k} {name} "
                                         "steps")
    return record


def _prf(pred: torch.Tensor, true: torch.Tensor) -> tuple[float | None, float | None, float | None]:
    """Precision, recall and F1 of boolean predictions (None where undefined: nothing predicted / nothing true)."""
    tp, pp, p = float((pred & true).sum()), float(pred.sum()), float(true.sum())
    return (tp / pp if pp else None, tp / p if p else None, 2 * tp / (pp + p) if pp + p else None)


@torch.no_grad()
def task_metrics(head: TaskHead, data: dict[str, torch.Tensor], constant: float,
                 calibration: dict | None = None) -> dict:
    """Held-out accuracy of a task head on `data` (the evaluation half of the held-out steps): reward MAE (and a
    constant predictor's, the training mean), the reward correlation, and termination (and success, when the
    data has it) precision, recall and F1 at the head's threshold and at 0 (the uncalibrated rule), with the
    threshold. `calibration`: `calibrate_task_head`'s record, kept alongside."""
    out = head(data["prev"], data["actions"], data["next"])
    reward = out[:, 0] * head.reward_std + head.reward_mean
    r = data["rewards"]
    corr = float(torch.corrcoef(torch.stack([reward, r]))[0, 1]) if len(r) > 1 and r.std() > 0 else None
    metrics = {"steps": len(r), "evaluation_steps": len(r), "reward_mae": float((reward - r).abs().mean()),
               "reward_mae_constant": float((r - constant).abs().mean()), "reward_corr": corr}
    for name, key, col in EVENTS:
        if name == "success" and not head.config["has_success"]:
            continue
        true, t = data[key] > 0.5, float(head.config[f"{name}_threshold"])
        p, rc, f1 = _prf(out[:, col] > t, true)
        p0, r0, f0 = _prf(out[:, col] > 0, true)
        metrics |= {f"{name}_rate": float(true.float().mean()), f"{name}_threshold": t, f"{name}_precision": p,
                    f"{name}_recall": rc, f"{name}_f1": f1, f"{name}_precision_at_0": p0, f"{name}_recall_at_0": r0,
                    f"{name}_f1_at_0": f0}
    return metrics | (calibration or {})
