"""Fill nodata gaps so a network never sees NaN, keeping the validity mask beside the values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import xarray as xr

from geodiff.errors import SceneError

FillMethod = Literal["nearest", "laplace", "zero"]


def fill_gaps(tiles: xr.DataArray, method: FillMethod = "nearest") -> tuple[xr.DataArray, xr.DataArray]:
    """Fill NaN pixels of every 2-D slice of ``tiles``; return ``(filled, valid)``.

    Parameters
    ----------
    tiles
        DataArray with ``y``/``x`` as its last dims (any leading dims, lazy or not).
    method
        ``"nearest"``: value of the nearest valid pixel (Euclidean distance transform);
        ``"laplace"``: harmonic inpainting, the smooth surface that matches the valid pixels
        around each gap (solves Laplace's equation on the gap pixels); ``"zero"``: 0.

    Returns
    -------
    filled, valid
        The filled values (same dtype) and a boolean mask that is true where data was valid.
        Slices with no valid pixel at all raise :class:`SceneError`; filter them out first.
    """
    _check_method(method)
    valid = np.isfinite(tiles)
    filled = xr.apply_ufunc(
        fill_planes, tiles,
        kwargs={"method": method},
        input_core_dims=[["y", "x"]], output_core_dims=[["y", "x"]],
        dask="parallelized", output_dtypes=[tiles.dtype],
    )
    return filled.transpose(*tiles.dims), valid


def _check_method(method: str) -> None:
    if method not in _FUNCS:
        raise ValueError(f"method must be one of {sorted(_FUNCS)}, got {method!r}")


def fill_planes(values: np.ndarray, method: FillMethod = "nearest") -> np.ndarray:
    """:func:`fill_gaps` on a numpy array: every 2-D slice over its last two axes, filled (a copy)."""
    _check_method(method)
    func = _FUNCS[method]
    out = np.array(values, copy=True)
    flat = out.reshape(-1, *out.shape[-2:])
    for plane in flat:
        gaps = ~np.isfinite(plane)
        if not gaps.any():
            continue
        if gaps.all():
            raise SceneError("a tile has no valid pixel to fill from; remove it with nodata_filter first")
        plane[...] = func(plane, gaps)
    return out


def _fill_zero(plane: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    return np.where(gaps, 0, plane)


def _fill_nearest(plane: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    idx = ndi.distance_transform_edt(gaps, return_distances=False, return_indices=True)
    return plane[tuple(idx)]


def _fill_laplace(plane: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    return harmonic_fill(gaps)(plane).astype(plane.dtype)


def harmonic_fill(gaps: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The Laplace fill of the pixels ``gaps`` marks, factorised once for many planes.

    Each gap pixel becomes the mean of its 4 neighbours (reflecting at the plane's edges): the
    smooth surface that matches the other pixels around each gap. The sparse system depends on
    ``gaps`` only, so its LU factors are computed here and every call is a back-substitution
    (a sampler corrects every step's estimate on the same gaps).

    Parameters
    ----------
    gaps
        ``(h, w)`` boolean, True on the pixels to fill; at least one pixel must be False.

    Returns
    -------
    callable
        ``fill(values)`` for ``values`` of shape ``(..., h, w)``: a float64 copy with the gap
        pixels replaced (values there are ignored, NaN allowed).
    """
    h, w = gaps.shape
    if gaps.all():
        raise SceneError("a plane has no valid pixel to fill from")
    unknown = np.flatnonzero(gaps)
    number = -np.ones(h * w, dtype=np.int64)
    number[unknown] = np.arange(unknown.size)
    r, c = np.divmod(unknown, w)
    rows, cols, vals, b_rows, b_cols = [], [], [], [], []
    diag = np.zeros(unknown.size)
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rr, cc = r + dr, c + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        diag += inside
        neighbour = rr[inside] * w + cc[inside]
        is_gap = number[neighbour] >= 0
        eq = np.flatnonzero(inside)
        rows.append(eq[is_gap])
        cols.append(number[neighbour[is_gap]])
        vals.append(-np.ones(is_gap.sum()))
        b_rows.append(eq[~is_gap])
        b_cols.append(neighbour[~is_gap])
    a = sp.csc_matrix(
        (np.concatenate([diag, *vals]), (np.concatenate([np.arange(unknown.size), *rows]),
                                          np.concatenate([np.arange(unknown.size), *cols]))),
        shape=(unknown.size, unknown.size),
    )
    b_rows, b_cols = np.concatenate(b_rows), np.concatenate(b_cols)
    boundary = sp.csr_matrix((np.ones(b_rows.size), (b_rows, b_cols)), shape=(unknown.size, h * w))
    # Every 4-connected gap region of a partly valid plane borders a valid pixel, so the
    # system is non-singular.
    lu = spla.splu(a)

    def fill(values: np.ndarray) -> np.ndarray:
        flat = np.array(values, dtype=np.float64).reshape(-1, h * w)
        known = np.where(gaps.ravel(), 0.0, flat)
        flat[:, unknown] = lu.solve(np.ascontiguousarray(boundary @ known.T)).T
        return flat.reshape(np.shape(values))

    return fill


_FUNCS = {"nearest": _fill_nearest, "laplace": _fill_laplace, "zero": _fill_zero}
