"""Typed errors: every bad input names what is wrong, so users never debug a crash deep in torch."""

from __future__ import annotations

from collections.abc import Iterable


class CosmosSimError(Exception):
    """Base class for errors raised by cosmos_sim."""


class UnknownChoiceError(CosmosSimError, ValueError):
    """A name (world, backend, obs_mode, policy, ...) that is not one of the valid choices."""

    def __init__(self, kind: str, value: object, choices: Iterable[str]):
        self.kind, self.value, self.choices = kind, value, sorted(choices)
        super().__init__(f"unknown {kind} {value!r}; valid choices: {', '.join(self.choices)}")


class CameraError(CosmosSimError, ValueError):
    """A camera pose that cannot be rendered (eye == target, fov outside (0, 180), ...)."""


class ActionError(CosmosSimError, ValueError):
    """An action of the wrong shape, or holding NaN/inf."""
