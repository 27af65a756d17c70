"""Exponential moving average of model weights, the weights diffusion models are sampled with."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Shadow copy of a model's floating-point parameters, updated after every optimizer step.

    ``shadow <- decay_n * shadow + (1 - decay_n) * param`` with, when ``warmup`` is on,
    ``decay_n = min(decay, (1 + n) / (10 + n))`` for the n-th update (the warm-up of TensorFlow's
    ExponentialMovingAverage ``num_updates``), so early weights are not frozen into the average.
    Buffers are copied as they are.

    Parameters
    ----------
    model : nn.Module
        The model being trained; its current weights start the average.
    decay : float
        Asymptotic decay in [0, 1) (0.9999 in improved DDPM, 0.995 for short runs).
    warmup : bool
        Apply the ``(1 + n) / (10 + n)`` warm-up.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.num_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._float_keys = [k for k, v in model.named_parameters() if v.is_floating_point()]

    def current_decay(self) -> float:
        """Decay the next update will use."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        d = self.current_decay()
        params = dict(model.named_parameters())
        shadow = [self.shadow[k] for k in self._float_keys]
        current = [params[k].detach().to(self.shadow[k].dtype) for k in self._float_keys]
        # lerp(s, p, 1 - d) = s + (1 - d)(p - s) = d s + (1 - d) p, in one fused pass.
        torch._foreach_lerp_(shadow, current, 1.0 - d)
        for k, b in model.named_buffers():
            self.shadow[k].copy_(b)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> nn.Module:
        """Load the averaged weights into ``model`` (in place) and return it."""
        model.load_state_dict(self.shadow)
        return model

    def averaged_model(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` holding the averaged weights, in eval mode."""
        return self.copy_to(copy.deepcopy(model)).eval()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Averaged weights plus ``num_updates`` (a 0-d int64 tensor), all tensors."""
        return {**self.shadow, "num_updates": torch.tensor(self.num_updates, dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`state_dict`; shapes must match the model the EMA was built for."""
        state = dict(state)
        if "num_updates" not in state:
            raise KeyError("EMA state has no 'num_updates'")
        self.num_updates = int(state.pop("num_updates"))
        missing, unexpected = set(self.shadow) - set(state), set(state) - set(self.shadow)
        if missing or unexpected:
            raise KeyError(
                f"EMA state does not match the model: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        for k, v in state.items():
            if v.shape != self.shadow[k].shape:
                raise KeyError(
                    f"EMA tensor {k} has shape {tuple(v.shape)}, model has {tuple(self.shadow[k].shape)}"
                )
            self.shadow[k].copy_(v)
