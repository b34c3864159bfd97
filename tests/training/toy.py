"""A toy model and dataset for trainer tests (also run under torchrun by the DDP test)."""

import sys

import torch
from torch import nn


class ToyData(torch.utils.data.Dataset):
    def __init__(self, n=64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


class ToyModel(nn.Module):
    def __init__(self, nan_at=()):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        self.nan_at = set(nan_at)
        self.calls = 0

    def training_loss(self, batch):
        self.calls += 1
        pred = self.net(batch["x"]).squeeze(-1) + 0.01 * torch.randn(len(batch["x"]))  # uses the torch RNG
        loss = ((pred - batch["y"]) ** 2).mean()
        if self.calls in self.nan_at:
            loss = loss * float("nan")
        return loss, {"mse": loss.detach()}


if __name__ == "__main__":  # torchrun --nproc_per_node=2 toy.py OUT
    import os

    from cosmos_sim.training import TrainConfig, Trainer

    cfg = TrainConfig(steps=4, batch_size=8, checkpoint_every=100, log_every=1, warmup_steps=1)
    # TOY_NAN_RANK=r: that rank's loss is NaN at its second call only (the others stay finite)
    nan_at = (2,) if os.environ.get("TOY_NAN_RANK") == os.environ.get("RANK") else ()
    trainer = Trainer(ToyModel(nan_at=nan_at), ToyData(), cfg, sys.argv[1], kind="toy", model_config={"width": 16},
                      progress=False)
    result = trainer.fit()
    # one write per rank (print with several arguments writes them apart, and the ranks' output interleaves)
    print(f"RESULT {result['step']} skipped {trainer.skipped}", flush=True)
