"""Lag geometry on a regular grid: bin edges, half-plane lag vectors, sectors and bin index maps."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse

from geodiff.errors import GeodiffError

__all__ = ["LagPlan", "default_edges", "fft_shape", "lag_plan", "max_offsets", "resolve_edges"]

# Angles are compared with this slack so lags exactly on a sector edge are included whatever the
# last bit of atan2 says.
_ANGLE_EPS_DEG = 1e-9


def default_edges(
    shape: tuple[int, int],
    step: tuple[float, float],
    max_lag: float | None = None,
    n: int | None = None,
) -> np.ndarray:
    """Equal-width lag bin edges from 0 to ``max_lag``.

    ``max_lag`` defaults to half the shorter side's extent (beyond it the pair counts drop and
    the estimate is dominated by the tile's borders); ``n`` defaults to bins 1.5 pixels of the
    coarser axis wide (so the first bin holds the nearest neighbours), at most 30.
    """
    ny, nx = shape
    dy, dx = step
    if max_lag is None:
        max_lag = 0.5 * min(ny * dy, nx * dx)
    if not np.isfinite(max_lag) or max_lag <= 0:
        raise GeodiffError(f"max_lag must be a positive lag distance, got {max_lag}")
    if n is None:
        n = int(np.clip(np.floor(max_lag / (1.5 * max(dy, dx))), 1, 30))
    return np.linspace(0.0, float(max_lag), int(n) + 1)


def resolve_edges(
    bins: int | np.ndarray | None,
    shape: tuple[int, int],
    step: tuple[float, float],
    max_lag: float | None,
) -> np.ndarray:
    """Bin edges from the user's ``bins`` (None, a count, or explicit edges) and ``max_lag``."""
    if bins is None or np.ndim(bins) == 0:
        n = None if bins is None else int(bins)
        if n is not None and n < 1:
            raise GeodiffError(f"bins must be a positive count or an array of edges, got {bins}")
        return default_edges(shape, step, max_lag, n)
    edges = np.asarray(bins, dtype=np.float64)
    if (
        edges.ndim != 1
        or edges.size < 2
        or not np.all(np.isfinite(edges))
        or edges[0] < 0
        or np.any(np.diff(edges) <= 0)
    ):
        raise GeodiffError(
            "bin edges must be a 1-D, strictly increasing array of at least two non-negative lags"
        )
    if max_lag is not None:
        raise GeodiffError("give either explicit bin edges or max_lag, not both")
    return edges


def max_offsets(
    shape: tuple[int, int], step: tuple[float, float], max_lag: float
) -> tuple[int, int]:
    """Largest row and column offsets (pixels) of a lag up to ``max_lag`` that fit the grid."""
    return (
        min(shape[0] - 1, int(np.floor(max_lag / step[0]))),
        min(shape[1] - 1, int(np.floor(max_lag / step[1]))),
    )


def fft_shape(shape: tuple[int, int], offsets: tuple[int, int]) -> tuple[int, int]:
    """Zero-padded FFT size free of circular wrap-around for lags up to ``offsets`` pixels."""
    return tuple(scipy.fft.next_fast_len(n + max(h, 1), real=True) for n, h in zip(shape, offsets))


@dataclass(frozen=True, eq=False)
class LagPlan:
    """Everything about lags that depends only on the grid, the bins and the sectors.

    Attributes
    ----------
    iy, ix : numpy.ndarray
        Pixel offsets of the half-plane lag vectors that fall in at least one bin (each
        unordered pair of pixels appears under exactly one of ``h`` and ``-h``).
    members : scipy.sparse.csr_array
        ``(n_lags, n_directions * n_bins)`` 0/1 matrix: lag ``l`` belongs to group ``g``.
    fft_shape : (int, int)
        Zero-padded FFT size, ``n + max offset`` per axis, enough to keep the lags used free of
        circular wrap-around.
    rows : int
        Row offsets ``0 .. rows - 1`` covered by the lags.
    flat : numpy.ndarray
        Index of each lag in the flattened ``(rows, fft_shape[1])`` correlation map.
    """

    iy: np.ndarray
    ix: np.ndarray
    members: scipy.sparse.csr_array
    fft_shape: tuple[int, int]
    rows: int
    flat: np.ndarray
    n_bins: int
    n_dirs: int


def _axial_difference(theta: np.ndarray, direction: float) -> np.ndarray:
    d = np.mod(theta - direction, 180.0)
    return np.minimum(d, 180.0 - d)


@functools.lru_cache(maxsize=64)
def _plan_cached(
    shape: tuple[int, int],
    spacing: tuple[float, float],
    edges: tuple[float, ...],
    directions: tuple[float, ...] | None,
    tolerance: float,
) -> LagPlan:
    sy, sx = spacing
    ay, ax = abs(sy), abs(sx)
    hy, hx = max_offsets(shape, (ay, ax), edges[-1])
    iy, ix = np.meshgrid(np.arange(0, hy + 1), np.arange(-hx, hx + 1), indexing="ij")
    iy, ix = iy.ravel(), ix.ravel()
    half = (iy > 0) | ((iy == 0) & (ix > 0))
    iy, ix = iy[half], ix[half]
    dist = np.hypot(iy * ay, ix * ax)
    b = np.searchsorted(np.asarray(edges), dist, side="right") - 1  # half-open [lo, hi)
    n_bins = len(edges) - 1
    inside = (b >= 0) & (b < n_bins)
    iy, ix, b = iy[inside], ix[inside], b[inside]
    if directions is None:
        rows, cols, n_dirs = np.arange(len(b)), b, 1
    else:
        # Angle of the lag vector in map axes (x east, y along the signed coordinate), axial.
        theta = np.degrees(np.arctan2(iy * sy, ix * sx))
        rows_l, cols_l = [], []
        for k, d in enumerate(directions):
            sel = np.flatnonzero(_axial_difference(theta, d) <= tolerance + _ANGLE_EPS_DEG)
            rows_l.append(sel)
            cols_l.append(k * n_bins + b[sel])
        rows, cols, n_dirs = np.concatenate(rows_l), np.concatenate(cols_l), len(directions)
    members = scipy.sparse.csr_array(
        (np.ones(len(rows)), (rows, cols)), shape=(len(iy), n_dirs * n_bins)
    )
    my, mx = fft_shape(shape, (hy, hx))
    flat = iy * mx + (ix % mx)
    return LagPlan(iy, ix, members, (my, mx), hy + 1, flat, n_bins, n_dirs)


def lag_plan(
    shape: tuple[int, int],
    spacing: tuple[float, float],
    edges: np.ndarray,
    directions: tuple[float, ...] | None = None,
    tolerance: float = 22.5,
) -> LagPlan:
    """Cached :class:`LagPlan` for a grid ``shape`` with signed pixel ``spacing`` ``(dy, dx)``.

    Directions are in degrees counter-clockwise from the +x axis in map axes (the sign of the
    spacing orients the axes), axial (0 and 180 are the same), with a sector half-width of
    ``tolerance`` degrees, inclusive.
    """
    if not 0 < tolerance <= 90:
        raise GeodiffError(f"tolerance must be in (0, 90] degrees, got {tolerance}")
    dirs = None if directions is None else tuple(float(d) for d in directions)
    return _plan_cached(
        (int(shape[0]), int(shape[1])),
        (float(spacing[0]), float(spacing[1])),
        tuple(float(e) for e in edges),
        dirs,
        float(tolerance),
    )
