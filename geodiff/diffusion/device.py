"""Choice of the torch device: the same call works on CUDA, Apple MPS and CPU machines."""

from __future__ import annotations

import torch

from geodiff.errors import GeodiffError

__all__ = ["pick_device"]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device`` if given, else CUDA, then MPS, then CPU.

    Raises GeodiffError when an explicitly requested CUDA or MPS device is not available.
    """
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise GeodiffError(
                f"device {dev} requested but CUDA is not available; use device=None or 'cpu'"
            )
        if dev.type == "mps" and not _mps_available():
            raise GeodiffError(
                f"device {dev} requested but MPS is not available; use device=None or 'cpu'"
            )
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())
