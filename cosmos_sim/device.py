"""The one place a device is chosen: the caller's, checked, or CUDA when there is one, else the CPU."""

from __future__ import annotations

import torch

from cosmos_sim.errors import InputError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device` as a torch.device (None: "cuda" when available, else "cpu"); a bad or unavailable one is an
    InputError naming it, raised before any work starts."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r} but CUDA is not available on this machine (torch "
                         f"{torch.__version__}); use device='cpu'")
    return dev
