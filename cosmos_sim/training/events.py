"""TensorBoard event files beside `metrics.jsonl`, so `tensorboard --logdir RUN` shows the curves.

Written only when the `tensorboard` package is installed (`pip install cosmos_sim[tb]`); without it the
log is a no-op and `metrics.jsonl` is the record. A resumed run passes `purge_step`, so the events of
steps it will redo are dropped, as the JSONL lines are.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

from cosmos_sim.errors import MissingPackageError


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class EventLog:
    """Scalars to `<dir>/events.out.tfevents.*` (no-op without tensorboard)."""

    def __init__(self, directory: str | os.PathLike, purge_step: int | None = None):
        self.writer = None
        if tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            Path(directory).mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(str(directory), purge_step=purge_step)

    def scalars(self, step: int, values: dict, prefix: str = "") -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(prefix + key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_scalars(directory: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the event files in `directory`: tag -> [(step, value)] (for tests and tools)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(directory))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@contextlib.contextmanager
def tracking(project: str, run_dir: str | os.PathLike | None, config: dict) -> Iterator[None]:
    """Weights & Biases for the run inside the block (`--track`): `sync_tensorboard` mirrors every event
    file the run writes, so the curves and tags are the TensorBoard ones, with no second logging path."""
    try:
        import wandb
    except ImportError:
        raise MissingPackageError("--track sends the run's logs to Weights & Biases, which is not installed: "
                                  "pip install 'cosmos_sim[wandb]'") from None
    if not tensorboard_available():
        raise MissingPackageError("--track mirrors the TensorBoard event files, and tensorboard is not installed: "
                                  "pip install 'cosmos_sim[tb]'")
    name = Path(run_dir).name if run_dir is not None else None
    run = wandb.init(project=project, name=name, dir=None if run_dir is None else str(run_dir), config=config,
                     sync_tensorboard=True)
    try:
        yield
    finally:
        run.finish()
