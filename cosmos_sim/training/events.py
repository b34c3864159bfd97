"""TensorBoard event files beside `metrics.jsonl`, so `tensorboard --logdir RUN` shows the curves.

Written only when the `tensorboard` package is installed (`pip install cosmos_sim[tb]`); without it the
log is a no-op and `metrics.jsonl` is the record. A resumed run passes `purge_step`, so the events of
steps it will redo are dropped, as the JSONL lines are.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


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
