"""Synthetic georeferenced grids to build scenes on."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["template"]


def template(
    shape: tuple[int, int] = (320, 384),
    spacing: float = 100.0,
    *,
    crs: str = "EPSG:32633",
    origin: tuple[float, float] = (420_000.0, 4_530_000.0),
) -> xr.DataArray:
    """An all-zero north-up grid with a CRS: pixel centres from the upper-left ``origin`` (m).

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)`` pixels.
    spacing : float
        Pixel size in the CRS's unit (m for UTM).
    crs : str
        Any CRS pyproj understands.
    origin : (float, float)
        Easting and northing of the grid's upper-left corner.

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` float32 zeros with ``x``/``y`` coordinates and a ``spatial_ref`` coordinate.
    """
    ny, nx = shape
    x = origin[0] + spacing * (np.arange(nx) + 0.5)
    y = origin[1] - spacing * (np.arange(ny) + 0.5)
    da = xr.DataArray(np.zeros(shape, dtype=np.float32), dims=("y", "x"), coords={"y": y, "x": x})
    return da.rio.write_crs(crs)
