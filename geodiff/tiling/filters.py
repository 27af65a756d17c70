"""Which tiles are worth training on: nodata fraction and GANInSAR's patch filter.

Each filter returns a lazy boolean DataArray over ``tile``; combine with ``&`` and apply with
``tiles.isel(tile=keep.values)`` (or :func:`select`), which reads only the statistics.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from geodiff.errors import SceneError

_SPATIAL = ("y", "x")


def _per_tile(values: xr.DataArray) -> xr.DataArray:
    """Reduce over pixels and bands, keeping ``tile``."""
    return values.mean([d for d in values.dims if d != "tile"])


def valid_fraction(tiles: xr.DataArray) -> xr.DataArray:
    """Fraction of finite pixels per tile (all bands together), in [0, 1]."""
    return _per_tile(np.isfinite(tiles))


def nodata_filter(tiles: xr.DataArray, max_nodata: float = 0.5) -> xr.DataArray:
    """Keep tiles whose nodata fraction is at most ``max_nodata``.

    The default of one half follows InSAR denoising practice, where interferograms with more than
    50 % missing pixels are skipped (Popescu et al.).
    """
    if not 0.0 <= max_nodata <= 1.0:
        raise ValueError(f"max_nodata must lie in [0, 1], got {max_nodata}")
    valid = valid_fraction(tiles)
    # A fully empty tile is never kept, even with max_nodata=1: it has nothing to learn from.
    return (1.0 - valid <= max_nodata) & (valid > 0)


def patch_filter(tiles: xr.DataArray, theta: float = 0.3, a: float = 3.0) -> xr.DataArray:
    """GANInSAR's patch filter: keep a tile if at least ``theta`` of its valid pixels lie in [-a, a].

    Zhou et al. (2024) keep deformation-rate patches with ``theta = 0.3`` and ``a = 3`` cm/yr, so
    that training favours the background over the few strongly deforming patches; ``a`` is in the
    scene's units (30 for a scene in mm/yr).
    """
    finite = np.isfinite(tiles)
    inside = (np.abs(tiles) <= a) & finite
    dims = [d for d in tiles.dims if d != "tile"]
    n_valid = finite.sum(dims)
    return (inside.sum(dims) >= theta * n_valid) & (n_valid > 0)


def select(tiles: xr.DataArray, keep: xr.DataArray) -> xr.DataArray:
    """Tiles where ``keep`` is true; computes only ``keep``. Raises when none remains."""
    mask = np.asarray(keep.values, dtype=bool)
    if not mask.any():
        raise SceneError(
            f"no tile out of {mask.size} passed the filters (is the scene all nodata, or the "
            "filter too strict? Try a smaller tile or a larger max_nodata)"
        )
    return tiles.isel(tile=np.flatnonzero(mask))
