"""Fill nodata gaps so a network never sees NaN, keeping the validity mask beside the values."""

from __future__ import annotations

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
    """Harmonic fill: each gap pixel is the mean of its 4 neighbours (reflecting at tile edges)."""
    h, w = plane.shape
    unknown = np.flatnonzero(gaps)
    number = -np.ones(h * w, dtype=np.int64)
    number[unknown] = np.arange(unknown.size)
    r, c = np.divmod(unknown, w)
    rows, cols, vals = [], [], []
    rhs = np.zeros(unknown.size)
    known = np.where(gaps, 0.0, plane).ravel().astype(np.float64)
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
        np.add.at(rhs, eq[~is_gap], known[neighbour[~is_gap]])
    a = sp.csr_matrix(
        (np.concatenate([diag, *vals]), (np.concatenate([np.arange(unknown.size), *rows]),
                                          np.concatenate([np.arange(unknown.size), *cols]))),
        shape=(unknown.size, unknown.size),
    )
    # Every 4-connected gap region of a partly valid plane borders a valid pixel, so the
    # system is non-singular.
    out = plane.astype(np.float64).ravel()
    out[unknown] = spla.spsolve(a.tocsc(), rhs)
    return out.reshape(h, w).astype(plane.dtype)


_FUNCS = {"nearest": _fill_nearest, "laplace": _fill_laplace, "zero": _fill_zero}
