"""Physical pixel spacing of a gridded scene from its CRS and coordinates."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from geodiff.errors import SceneError

__all__ = ["GridSpacing", "pixel_spacing"]


@dataclass(frozen=True)
class GridSpacing:
    """Step between neighbouring pixels, in a linear unit.

    Attributes
    ----------
    dy, dx : float
        Signed step of one row / one column in the lag unit: the sign follows the coordinate
        (north-up rasters have ``dy < 0``), so directions can be measured in map axes.
    unit : str
        Unit of ``dy`` and ``dx`` (``"metre"`` for geographic CRSs, the CRS's axis unit for
        projected ones, the coordinates' ``units`` attribute or ``"pixel"`` without a CRS).
    method : str
        How the spacing was obtained, recorded in the attrs of results.
    """

    dy: float
    dx: float
    unit: str
    method: str

    @property
    def step(self) -> tuple[float, float]:
        """Absolute pixel size ``(|dy|, |dx|)`` in ``unit``."""
        return abs(self.dy), abs(self.dx)


def _coord_step(da: xr.DataArray, dim: str) -> float | None:
    if dim not in da.coords or da[dim].ndim != 1 or da.sizes[dim] < 2:
        return None
    c = np.asarray(da[dim].values, dtype=np.float64)
    steps = np.diff(c)
    step = (c[-1] - c[0]) / (len(c) - 1)
    if step == 0 or not np.allclose(steps, step, rtol=1e-6, atol=0):
        raise SceneError(
            f"coordinate {dim!r} is not evenly spaced; regrid the scene to a regular grid "
            "(e.g. with rioxarray's reproject) before computing variograms"
        )
    return float(step)


def _crs(da: xr.DataArray):
    try:
        return da.rio.crs
    except (AttributeError, ValueError):  # rioxarray not registered, or no usable grid mapping
        return None


def pixel_spacing(da: xr.DataArray, *, y: str = "y", x: str = "x") -> GridSpacing:
    """Physical pixel spacing of a DataArray with dims ``(..., y, x)``.

    - Projected CRS: the coordinate steps, in the CRS's axis unit.
    - Geographic CRS: degrees are converted to metres by the local geodesic scale at the scene
      centre on the CRS's ellipsoid (``pyproj.Geod.inv`` over one pixel along the parallel and
      the meridian). Over a scene a few degrees across the true scale varies by
      ``~ tan(lat) * dlat`` relatively: reproject large geographic scenes first.
    - No CRS: the coordinate steps in the coordinates' ``units`` (pixels if there are no
      coordinates), with a warning.

    Parameters
    ----------
    da : xarray.DataArray
        Gridded scene with 1-D, evenly spaced ``y`` and ``x`` coordinates.
    y, x : str
        Names of the row and column dimensions.

    Returns
    -------
    GridSpacing
    """
    for dim in (y, x):
        if dim not in da.dims:
            raise SceneError(
                f"expected dims (..., {y!r}, {x!r}), got {da.dims}; rename or transpose the array"
            )
    sy, sx = _coord_step(da, y), _coord_step(da, x)
    crs = _crs(da)
    if crs is not None and (sy is None or sx is None):
        res_x, res_y = da.rio.resolution()
        sy, sx = float(res_y), float(res_x)
    if crs is None:
        if sy is None or sx is None:
            warnings.warn(
                "no CRS and no coordinates: lags are in pixels; write a CRS with "
                "da.rio.write_crs(...) to get physical lags",
                stacklevel=3,
            )
            return GridSpacing(1.0, 1.0, "pixel", "pixel index (no CRS, no coordinates)")
        unit = str(da[x].attrs.get("units", "coordinate units"))
        warnings.warn(
            f"no CRS: lags are in coordinate units ({unit}); write a CRS with "
            "da.rio.write_crs(...) so geographic grids are converted to metres",
            stacklevel=3,
        )
        return GridSpacing(sy, sx, unit, "coordinate steps (no CRS)")
    if crs.is_geographic:
        from pyproj import CRS

        pcrs = CRS.from_user_input(crs.to_wkt())
        geod = pcrs.get_geod()  # also handles spheres (inverse flattening 0)
        lon0 = float(np.mean(da[x].values)) if x in da.coords else 0.0
        lat0 = float(np.mean(da[y].values)) if y in da.coords else 0.0
        _, _, mx = geod.inv(lon0 - sx / 2, lat0, lon0 + sx / 2, lat0)
        _, _, my = geod.inv(lon0, lat0 - sy / 2, lon0, lat0 + sy / 2)
        method = (
            f"local geodesic scale at scene centre (lon {lon0:.6f}, lat {lat0:.6f}) on "
            f"{pcrs.ellipsoid.name}: 1 deg lon = {mx / abs(sx):.3f} m, 1 deg lat = {my / abs(sy):.3f} m"
        )
        return GridSpacing(float(np.copysign(my, sy)), float(np.copysign(mx, sx)), "metre", method)
    unit = crs.linear_units or "unknown"
    return GridSpacing(sy, sx, unit, f"projected CRS coordinate steps ({crs.to_string()})")
