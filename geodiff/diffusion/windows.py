"""One network over a canvas larger than its tile: overlapping windows fused at every step.

MultiDiffusion (Bar-Tal, Yariv, Lipman, Dekel 2023, eq. 5): with the canvas covered by windows,
the step that best agrees with every window's own step, in weighted least squares, is the
per-pixel weighted average of the windows' predictions. Every sampler here is linear in the
network's output at a given state, so fusing the predictions (eps, v or x_0 and the
learned-variance value alike) and handing the fused canvas prediction to an unchanged sampler is
that step; each window then continues from the fused state. A pixel belongs to one sample.

:func:`fused` wraps a tile network as a canvas ``model_fn`` for :func:`geodiff.diffusion.sample`.
The weights taper towards a window's edges (a Hann profile that never reaches 0), so that a
window's prediction enters and leaves the average smoothly: uniform weights, the paper's choice,
leave a step in the fused prediction where a window's coverage starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["fused", "window_starts", "window_weights"]


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Starts of windows of ``size`` every ``stride`` pixels covering ``0..length``; the last
    one moved back to end on the edge. Raises ValueError for a canvas smaller than a window or a
    stride that leaves gaps."""
    if length < size:
        raise ValueError(f"a canvas of {length} pixels is smaller than one window of {size}")
    if not 1 <= stride <= size:
        raise ValueError(f"the stride must be between 1 and the window size {size}, got {stride}")
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def window_weights(height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(height, width)`` separable Hann taper, sin^2(pi (i + 1/2) / n): 1 in the centre,
    small but positive on the edge pixels."""

    def profile(n: int) -> torch.Tensor:
        i = torch.arange(n, device=device, dtype=torch.float64)
        return torch.sin(math.pi * (i + 0.5) / n) ** 2

    return (profile(height)[:, None] * profile(width)[None, :]).to(dtype)


def fused(model_fn: Callable, window: tuple[int, int], stride: tuple[int, int], *,
          batch_size: int = 16) -> Callable:
    """A ``model_fn(x, t, **kwargs)`` over canvases ``(B, C, H, W)`` built from a tile network.

    Each canvas is cut into windows of ``window`` pixels every ``stride`` pixels (see
    :func:`window_starts`); the windows of all canvases go through ``model_fn`` in batches of
    ``batch_size``, each with its canvas's timestep and label, and their outputs are averaged
    per pixel with :func:`window_weights`. A canvas of exactly one window is that window's call.
    Conditioning ``cond`` is given on the canvas's pixels ``(B, c, H, W)`` and cut with the
    windows. A label map ``y`` of shape ``(B, H, W)`` gives each window the class at its centre pixel:
    where two regions meet, windows of either class overlap and their fused predictions blend
    one region into the other within a window, with no boundary step.
    """
    wh, ww = window

    def canvas_fn(x: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        b, _, h, w = x.shape
        cond = kwargs.get("cond")
        if cond is not None and tuple(cond.shape[-2:]) != (h, w):
            raise ValueError(f"conditioning for a canvas is given on the canvas's {h}x{w} pixels, "
                             f"got {tuple(cond.shape[-2:])}")
        boxes = [(i, r, c) for i in range(b) for r in window_starts(h, wh, stride[0])
                 for c in window_starts(w, ww, stride[1])]
        weights = window_weights(wh, ww, device=x.device, dtype=x.dtype)
        out = total = None
        labels = kwargs.get("y")
        for first in range(0, len(boxes), batch_size):
            chunk = boxes[first:first + batch_size]
            tiles = torch.stack([x[i, :, r:r + wh, c:c + ww] for i, r, c in chunk])
            index = torch.tensor([i for i, _, _ in chunk], device=x.device)
            if labels is None:
                extra = {}
            elif labels.ndim == 3:
                extra = {"y": torch.stack([labels[i, r + wh // 2, c + ww // 2] for i, r, c in chunk])}
            else:
                extra = {"y": labels[index]}
            if cond is not None:
                extra["cond"] = torch.stack([cond[i, :, r:r + wh, c:c + ww] for i, r, c in chunk])
            pred = model_fn(tiles, t[index], **extra)
            if out is None:
                out = x.new_zeros((b, pred.shape[1], h, w))
                total = x.new_zeros((b, 1, h, w))
            for k, (i, r, c) in enumerate(chunk):
                out[i, :, r:r + wh, c:c + ww] += weights * pred[k]
                total[i, :, r:r + wh, c:c + ww] += weights
        return out / total

    return canvas_fn
