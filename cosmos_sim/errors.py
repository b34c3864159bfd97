"""Typed errors: every bad input names what is wrong, so users never debug a crash deep in torch."""

from __future__ import annotations

from collections.abc import Iterable


class CosmosSimError(Exception):
    """Base class for errors raised by cosmos_sim."""


class InputError(CosmosSimError, ValueError):
    """An argument, option or value the caller passed that cannot be used as given (the message says why)."""


class MissingPathError(CosmosSimError, FileNotFoundError):
    """A file or directory the caller named that does not exist."""


class MissingPackageError(CosmosSimError, ImportError):
    """An optional package that a feature needs is not installed (the message names the extra to install)."""


class UnknownChoiceError(CosmosSimError, ValueError):
    """A name (world, backend, obs_mode, policy, ...) that is not one of the valid choices."""

    def __init__(self, kind: str, value: object, choices: Iterable[str]):
        self.kind, self.value, self.choices = kind, value, sorted(choices)
        super().__init__(f"unknown {kind} {value!r}; valid choices: {', '.join(self.choices)}")


class CameraError(CosmosSimError, ValueError):
    """A camera pose that cannot be rendered (eye == target, fov outside (0, 180), ...)."""


class ActionError(CosmosSimError, ValueError):
    """An action of the wrong shape, or holding NaN/inf."""


class DatasetError(CosmosSimError):
    """A dataset directory that cannot be used as asked."""


class CorruptDataError(DatasetError):
    """A shard or manifest whose bytes do not match their checksums, or that cannot be parsed."""


class DatasetMismatchError(DatasetError):
    """Data for another world, image size or layout than the caller's."""


class EpisodeSchemaError(DatasetError, ValueError):
    """An episode with a missing key, wrong dtype or wrong shape, caught at write time."""


class CheckpointError(CosmosSimError):
    """A checkpoint file that is not a readable cosmos_sim safetensors checkpoint."""


class ConfigMismatchError(CheckpointError, ValueError):
    """A checkpoint made for another world, image size, action size or model configuration."""


class TrainingError(CosmosSimError):
    """Training cannot go on (for example, too many non-finite steps in a row)."""


class RenderError(CosmosSimError, RuntimeError):
    """No GL backend can render frames here (MUJOCO_GL names one this machine lacks)."""


class NoSimulatorError(CosmosSimError, RuntimeError):
    """A world known only from recorded data (e.g. a real robot's LeRobot dataset) asked for what needs a simulator:
    a physics backend, collection, closed-loop evaluation."""


class EpisodeOverError(CosmosSimError, RuntimeError):
    """An env whose episode ended was stepped again without a reset (vector envs with autoreset disabled)."""
