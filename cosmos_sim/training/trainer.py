"""One trainer for tokenizers, dynamics models and policies.

A model plugs in by implementing `training_loss(batch) -> (loss, metrics)`; the trainer brings
AdamW with warm-up and cosine decay, EMA weights, bf16 autocast on CUDA, gradient clipping that
skips and counts non-finite steps, atomic safetensors checkpoints (model, EMA, optimizer, RNG,
data position) keeping the last k, exact resume, a progress bar, a JSONL log, and DDP under
`torchrun` (gloo on CPU, nccl on CUDA) with rank 0 writing.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from cosmos_sim.config import arg
from cosmos_sim.device import resolve_device
from cosmos_sim.errors import CheckpointError, InputError, TrainingError
from cosmos_sim.training.checkpoint import (
    check_config,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = arg(1000, "optimizer steps")
    batch_size: int = arg(32, "batch size per process")
    lr: float = arg(3e-4, "peak learning rate")
    min_lr_ratio: float = arg(0.1, "the cosine decay ends at this fraction of lr")
    warmup_steps: int = arg(50, "linear warm-up steps")
    weight_decay: float = arg(0.01, "AdamW weight decay")
    betas: tuple[float, float] = arg((0.9, 0.99), "AdamW betas")
    grad_clip: float = arg(1.0, "gradient norm clip")
    ema_decay: float = arg(0.999, "decay of the EMA weights (what is exported)")
    max_bad_steps: int = arg(10, "consecutive non-finite steps before giving up")
    log_every: int = arg(10, "steps between metrics.jsonl lines")
    eval_every: int = arg(0, "steps between evaluations (0: at the end only)")
    eval_at_s: tuple[float, ...] = arg((), "also evaluate when training time (evaluation excluded) crosses these")
    checkpoint_every: int = arg(500, "steps between checkpoints (one is always written at the end)")
    keep_last: int = arg(3, "checkpoints kept")
    seed: int = arg(0, "seed of initialisation, data order and noise")
    amp: bool = arg(True, "bf16 autocast (CUDA only)")
    num_workers: int = arg(0, "data loader workers")
    time_limit_s: float = arg(0.0, "stop (and checkpoint) after this much training time (0: no limit)",
                              flag=("--minutes", 60.0))
    # with time_limit_s: the cosine decay runs on training time too and ends at the limit, whichever
    # of steps and time runs out first (a CPU budget fully used whatever the step time); the limit
    # then counts across resumes. The LR then follows the clock: not bitwise reproducible.
    schedule_by_time: bool = arg(False, "end the learning-rate decay at the time limit, so a time budget is used "
                                        "in full (needs --minutes; the rate then follows the clock)")
    deterministic: bool = arg(False, "torch deterministic algorithms")

    def __post_init__(self):
        if self.schedule_by_time and not self.time_limit_s > 0:
            raise InputError("schedule_by_time needs a time budget: time_limit_s > 0 (--minutes M)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["eval_at_s"] = list(self.eval_at_s)
        return d


def lr_at(cfg: TrainConfig, step: int, train_s: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio * lr` at `steps` (or at `time_limit_s` of
    training time `train_s` with `schedule_by_time`, if that comes first)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    if cfg.schedule_by_time and cfg.time_limit_s > 0:
        progress = max(progress, train_s / cfg.time_limit_s)
    progress = min(1.0, progress)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class ResumableSampler(Sampler[int]):
    """Endless shuffled indices, epoch e permuted by (seed, e), sharded by rank; starts at any position.

    The position is a plain integer saved in checkpoints, so resume needs no iteration replay.
    """

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1):
        if n < world_size:  # every process needs at least one sample per epoch
            from cosmos_sim.errors import TrainingError

            raise TrainingError(f"the dataset has {n} training samples, fewer than the {world_size} processes: "
                                "collect more data or launch fewer processes")
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world_size

    def __iter__(self) -> Iterator[int]:
        pos = self.start
        per_epoch = self.n // self.world
        while True:
            epoch, offset = divmod(pos, per_epoch)
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            perm = torch.randperm(self.n, generator=g)[self.rank::self.world][:per_epoch]
            yield from perm[offset:].tolist()
            pos = (epoch + 1) * per_epoch

    def __len__(self) -> int:  # endless; DataLoader only needs a number
        return 2**62


class _LossModule(nn.Module):
    """Lets DDP wrap `training_loss` as a forward pass."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.training_loss(batch)


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def setup_distributed() -> tuple[int, int, torch.device | None]:
    """Init the process group when launched by torchrun; returns (rank, world_size, device or None)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or is_dist():
        return (dist.get_rank(), dist.get_world_size(), None) if is_dist() else (0, 1, None)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if resolve_device().type == "cuda":
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return dist.get_rank(), world, torch.device("cuda", local)
    dist.init_process_group("gloo")
    return dist.get_rank(), world, torch.device("cpu")


class Trainer:
    """Trains `model` on `dataset` into `out`; `kind` and `model_config` identify the checkpoint."""

    def __init__(self, model: nn.Module, dataset: Dataset, config: TrainConfig, out: str | os.PathLike, *,
                 kind: str, model_config: dict, device: str | torch.device | None = None,
                 evaluate: Callable[[nn.Module, int, Path], dict] | None = None,
                 collate_fn: Callable | None = None, extra_metadata: dict | None = None, progress: bool = True):
        self.rank, self.world, dist_device = setup_distributed()
        self.device = dist_device or resolve_device(device)
        self.cfg, self.kind, self.model_config = config, kind, model_config
        self.out = Path(out)
        self.extra = extra_metadata or {}
        self.evaluate, self.progress = evaluate, progress
        torch.manual_seed(config.seed + self.rank)
        self.model = model.to(self.device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or name.endswith(".bias") else decay).append(p)
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=config.betas)
        self.ddp = nn.parallel.DistributedDataParallel(_LossModule(self.model)) if self.world > 1 else None
        self.dataset, self.collate_fn = dataset, collate_fn
        self.step, self.samples_seen, self.bad_steps, self.skipped = 0, 0, 0, 0
        self.events = None  # TensorBoard events (training/events.py), opened by fit on rank 0
        self.train_s = 0.0  # training seconds so far, across resumes (evaluation and checkpoints excluded)

    # --- checkpoints -------------------------------------------------------------------------
    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def checkpoints(self) -> list[Path]:
        return sorted(self.ckpt_dir.glob("step-*.safetensors"))

    def metadata(self) -> dict:
        return {"kind": self.kind, "model_config": self.model_config, "train_config": self.cfg.to_dict(),
                "step": self.step, "samples_seen": self.samples_seen, "skipped_steps": self.skipped,
                "train_seconds": self.train_s,
                **self.extra}

    def save(self) -> Path | None:
        if self.rank != 0:
            return None
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        tensors |= {f"ema/{k}": v for k, v in self.ema.state_dict().items()}
        opt_t, opt_meta = optimizer_to_tensors(self.opt)
        rng_t, rng_meta = rng_state()
        path = self.ckpt_dir / f"step-{self.step:08d}.safetensors"
        write_checkpoint(path, tensors | opt_t | rng_t, self.metadata() | {"optimizer": opt_meta, "rng": rng_meta})
        for old in self.checkpoints()[: -self.cfg.keep_last]:
            old.unlink()
        return path

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Load the newest checkpoint (or `path`); False if there is none."""
        if path is None:
            found = self.checkpoints()
            if not found:
                return False
            path = found[-1]
        tensors, meta = read_checkpoint(path)
        if meta.get("kind") != self.kind:
            raise CheckpointError(f"{path} is a {meta.get('kind')!r} checkpoint, not {self.kind!r}")
        check_config(self.kind, meta["model_config"], self.model_config)
        # Schedule length and bookkeeping may change on resume (train longer); what shapes the
        # optimisation itself (lr, betas, batch size, decay, ...) may not.
        free = ("steps", "warmup_steps", "time_limit_s", "eval_at_s", "eval_every", "log_every",
                "checkpoint_every", "keep_last", "num_workers")
        saved_train = {k: v for k, v in meta["train_config"].items() if k not in free}
        check_config("training", saved_train, {k: v for k, v in self.cfg.to_dict().items() if k in saved_train})
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
        self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema/")})
        optimizer_from_tensors(self.opt, {k: v.to(self.device) for k, v in tensors.items()}, meta["optimizer"])
        set_rng_state(tensors, meta["rng"])
        self.step, self.samples_seen, self.skipped = meta["step"], meta["samples_seen"], meta["skipped_steps"]
        self.train_s = float(meta.get("train_seconds", 0.0))
        return True

    # --- the loop ----------------------------------------------------------------------------
    def _loader(self) -> Iterator:
        per_rank = self.cfg.batch_size
        sampler = ResumableSampler(len(self.dataset), self.cfg.seed, start=self.samples_seen // self.world,
                                   rank=self.rank, world_size=self.world)
        loader = DataLoader(self.dataset, batch_size=per_rank, sampler=sampler, num_workers=self.cfg.num_workers,
                            collate_fn=self.collate_fn, drop_last=True, pin_memory=self.device.type == "cuda",
                            persistent_workers=self.cfg.num_workers > 0,
                            # its own generator: making an iterator must not consume the global RNG
                            generator=torch.Generator().manual_seed(self.cfg.seed + self.step))
        return iter(loader)

    def _to_device(self, batch: Any) -> Any:
        if torch.is_tensor(batch):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._to_device(v) for v in batch)
        return batch

    def _log(self, record: dict) -> None:
        if self.rank == 0:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if self.events is not None:  # the same numbers for `tensorboard --logdir OUT`
                self.events.scalars(int(record.get("step", self.step)),
                                    {k: v for k, v in record.items() if k != "step"}, prefix="train/")

    def _trim_log(self) -> None:
        """After a resume, drop log lines from steps that will be redone."""
        path = self.out / "metrics.jsonl"
        if self.rank != 0 or not path.exists():
            return
        keep = [line for line in path.read_text().splitlines() if json.loads(line).get("step", 0) <= self.step]
        path.write_text("".join(line + "\n" for line in keep))

    def train_step(self, batch) -> dict[str, float] | None:
        """One optimizer step; None when the step was skipped for a non-finite loss or gradient."""
        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = lr_at(cfg, self.step, self.train_s)
        use_amp = cfg.amp and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            # Under DDP the loss must go through the wrapper's forward so gradients get all-reduced.
            loss, metrics = self.ddp(batch) if self.ddp is not None else self.model.training_loss(batch)
        self.opt.zero_grad(set_to_none=True)
        finite = self._all_finite(bool(torch.isfinite(loss)))
        if finite:
            loss.backward()
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            finite = bool(torch.isfinite(norm))
        if not finite:
            self.opt.zero_grad(set_to_none=True)
            self.bad_steps += 1
            self.skipped += 1
            if self.bad_steps >= cfg.max_bad_steps:
                raise TrainingError(f"{self.bad_steps} non-finite steps in a row at step {self.step}; "
                                    "lower the learning rate or check the data")
            return None
        self.bad_steps = 0
        self.opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + self.step) / (10 + self.step))
            for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                e.lerp_(p, 1 - d)
            for e, b in zip(self.ema.buffers(), self.model.buffers(), strict=True):
                e.copy_(b)
        return {"loss": float(loss.detach()), "grad_norm": float(norm), **{k: float(v) for k, v in metrics.items()}}

    def _all_finite(self, finite: bool) -> bool:
        """Under DDP, whether every rank's loss is finite: a rank that skipped backward() alone would leave
        the others waiting in the gradient all-reduce for ever, so all skip together."""
        if not is_dist():
            return finite
        t = torch.tensor([1.0 if finite else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item() == 1.0)

    def _agreed(self, elapsed: float) -> float:
        """Under DDP with a time limit, the slowest rank's clock: every rank must stop at the same step
        and (with `schedule_by_time`) use the same LR."""
        if not (is_dist() and self.cfg.time_limit_s):
            return elapsed
        t = torch.tensor([elapsed], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t)

    def fit(self, resume: bool = False) -> dict:
        """Train to `steps` (or the time limit), evaluating and checkpointing on the way; the result dict.

        `deterministic` switches torch's deterministic algorithms on for this call only.
        """
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(before or self.cfg.deterministic)
        try:
            return self._fit(resume)
        finally:
            torch.use_deterministic_algorithms(before)

    def _fit(self, resume: bool) -> dict:
        from tqdm.auto import tqdm

        cfg = self.cfg
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(
                {"kind": self.kind, "model_config": self.model_config, "train_config": cfg.to_dict(), **self.extra},
                indent=1) + "\n")
        if resume and self.resume():
            self._trim_log()
        self.events = None
        if self.rank == 0:
            from cosmos_sim.training.events import EventLog

            self.events = EventLog(self.out / "tb", purge_step=self.step + 1 if self.step else None)
        batches = self._loader()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {self.kind}", disable=not self.progress
                   or self.rank != 0, unit="step")
        t0, start_step, start_s, last = time.perf_counter(), self.step, self.train_s, {}
        paused = 0.0  # seconds spent evaluating and checkpointing, not training
        marks = sorted(cfg.eval_at_s)
        evals: list[dict] = []
        model_for_eval = self.ema

        def run_eval(train_s: float) -> None:
            nonlocal paused
            t = time.perf_counter()
            record = {"step": self.step, "train_s": train_s, "eval": self.evaluate(model_for_eval, self.step, self.out)}
            evals.append(record)
            self._log(record)
            paused += time.perf_counter() - t

        def out_of_time() -> bool:  # a time-scheduled run's limit counts across resumes, else this call's
            spent = self.train_s if cfg.schedule_by_time else self.train_s - start_s
            return bool(cfg.time_limit_s) and spent >= cfg.time_limit_s

        while self.step < cfg.steps and not out_of_time():
            batch = self._to_device(next(batches))
            metrics = self.train_step(batch)
            self.samples_seen += cfg.batch_size * self.world
            self.step += 1
            if metrics is not None:
                last = metrics
            elapsed = self._agreed(time.perf_counter() - t0 - paused)
            self.train_s = start_s + elapsed
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                rate = (self.step - start_step) * cfg.batch_size * self.world / max(elapsed, 1e-9)
                self._log({"step": self.step, "lr": self.opt.param_groups[0]["lr"], "samples_per_s": rate,
                           "skipped": self.skipped, "time_s": elapsed, **last})
                bar.set_postfix(loss=f"{last.get('loss', float('nan')):.4f}", sps=f"{rate:.0f}")
            bar.update(1)
            can_eval = self.evaluate is not None and self.rank == 0
            if can_eval and cfg.eval_every and self.step % cfg.eval_every == 0:
                run_eval(elapsed)
            while can_eval and marks and elapsed >= marks[0]:
                marks.pop(0)
                run_eval(elapsed)
            if self.step % cfg.checkpoint_every == 0:
                t = time.perf_counter()
                self.save()
                paused += time.perf_counter() - t
        bar.close()
        if self.events is not None:
            self.events.close()
        if not self.checkpoints() or self.checkpoints()[-1].name != f"step-{self.step:08d}.safetensors":
            self.save()
        train_s = time.perf_counter() - t0 - paused
        result = {"step": self.step, "skipped": self.skipped, "train_seconds": train_s, **last}
        if self.evaluate and self.rank == 0:
            if not evals or evals[-1]["step"] != self.step:
                run_eval(train_s)
            result["eval"] = evals[-1]["eval"]
            result["evals"] = evals
        if is_dist():
            dist.barrier()
        return result
