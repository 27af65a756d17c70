"""The device and precision policy of a run: bf16 autocast, channels-last and ``torch.compile``
on CUDA, fp32 and plain layouts elsewhere (with a warning when a GPU-only option is asked for)."""

from __future__ import annotations

import warnings

import torch


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA for ``amp`` "auto" or "bf16", None (fp32) elsewhere."""
    if amp == "bf16" and device.type != "cuda":
        warnings.warn(f"bf16 autocast is used on CUDA only; training in fp32 on {device.type}", stacklevel=4)
    return torch.bfloat16 if device.type == "cuda" and amp in ("auto", "bf16") else None


def gpu_only(name: str, value: bool | None, default: bool, device: torch.device) -> bool:
    """Whether a GPU-only option (``channels_last``, ``compile``) is on: ``default`` when None."""
    on_gpu = device.type == "cuda"
    if value and not on_gpu:
        warnings.warn(f"{name}=True only helps on a GPU; ignored on {device.type}", stacklevel=4)
    return on_gpu and (default if value is None else bool(value))
