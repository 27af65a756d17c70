"""Seams: does a scene show a grid of steps where tiles (or windows, or blocks) meet?

A scene assembled from tiles sampled on their own has a step at every tile boundary: the mean
absolute difference between neighbouring pixels is larger across a boundary than inside a tile.
:func:`seam_statistic` looks for such a periodic excess without knowing the tile size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from geodiff.errors import GeodiffError

__all__ = ["SeamScore", "seam_statistic"]


@dataclass(frozen=True)
class SeamScore:
    """The largest periodic excess of neighbour differences in a scene.

    Attributes
    ----------
    statistic : float
        ``max_p max_k m(p, k) / median_k m(p, k)``, see :func:`seam_statistic`. About 1.1 on real
        scenes; tiles sampled on their own give several times that.
    period, phase : int
        Where the maximum is: boundaries every ``period`` pixels, at ``phase``.
    """

    statistic: float
    period: int
    phase: int


def seam_statistic(scene: xr.DataArray | np.ndarray, periods: Iterable[int] = range(8, 65)) -> SeamScore:
    """The seam statistic of a scene (or a stack of scenes), NaN pixels skipped.

    With d the absolute difference between horizontal neighbours (columns j - 1 and j) and
    between vertical neighbours (rows j - 1 and j), the pooled mean for a period p and a phase
    k is m(p, k) = mean of d over every boundary j with j mod p = k, rows and columns alike, over
    every scene of the stack. A grid of seams every p pixels lifts one phase of p above the
    others; the statistic is max over p of max_k m(p, k) / median_k m(p, k).

    Parameters
    ----------
    scene
        ``(..., y, x)`` values in physical units; leading dimensions (samples, bands) pool.
    periods
        Candidate periods in pixels; those longer than a quarter of the scene's shorter side
        are skipped (a phase pooled over fewer than 4 boundaries per axis is noise).

    Raises
    ------
    geodiff.errors.GeodiffError
        A scene smaller than 32 x 32 pixels, no usable period or no finite
        neighbour pair.
    """
    values = np.asarray(scene.values if isinstance(scene, xr.DataArray) else scene, dtype=np.float64)
    if values.ndim < 2 or min(values.shape[-2:]) < 32:
        raise GeodiffError(f"the seam statistic needs a scene of at least 32 x 32 pixels, got {values.shape[-2:]}")
    across_cols = np.abs(np.diff(values, axis=-1))  # boundary j: columns j - 1 and j, j = 1..W-1
    across_rows = np.abs(np.diff(values, axis=-2))
    col_sum, col_count = _per_boundary(np.moveaxis(across_cols, -1, 0))
    row_sum, row_count = _per_boundary(np.moveaxis(across_rows, -2, 0))
    if col_count.sum() + row_count.sum() == 0:
        raise GeodiffError("the scene has no pair of finite neighbouring pixels")
    usable = [int(p) for p in periods if 2 <= p <= min(values.shape[-2:]) // 4]
    if not usable:
        raise GeodiffError(f"no period fits a scene of {values.shape[-2:]} pixels")
    best = SeamScore(0.0, usable[0], 0)
    for p in usable:
        sums, counts = np.zeros(p), np.zeros(p)
        for s, c in ((col_sum, col_count), (row_sum, row_count)):
            phase = np.arange(1, len(s) + 1) % p
            np.add.at(sums, phase, s)
            np.add.at(counts, phase, c)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        median = np.nanmedian(means)
        if not median > 0:
            continue
        k = int(np.nanargmax(means))
        if means[k] / median > best.statistic:
            best = SeamScore(float(means[k] / median), p, k)
    return best


def _per_boundary(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of the finite differences at each boundary (first axis)."""
    flat = d.reshape(d.shape[0], -1)
    finite = np.isfinite(flat)
    return np.where(finite, flat, 0.0).sum(1), finite.sum(1)
