"""The shared trainer and its safetensors checkpoints."""

from cosmos_sim.training.checkpoint import check_config, read_checkpoint, write_checkpoint
from cosmos_sim.training.trainer import TrainConfig, Trainer, lr_at

__all__ = ["TrainConfig", "Trainer", "lr_at", "read_checkpoint", "write_checkpoint", "check_config"]
