"""Physical pixel spacing of a gridded scene from its CRS and coordinates."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from geodiff.errors import SceneError

__all__ = ["SCALE_TOLERANCE", "GridSpacing", "SpacingWarning", "pixel_spacing"]

#: Largest relative error of the lag spacing across a geographic scene accepted without a warning.
SCALE_TOLERANCE = 0.01


class SpacingWarning(UserWarning):
    """The lags of a variogram are not what they claim to be: pixels, or a scale that varies.

    Emitted when a scene has no CRS, or when one geodesic pixel size (taken at the centre of a
    geographic scene) misstates the pixel size elsewhere in the scene by more than a tolerance.
    Filter it with ``warnings.filterwarnings("ignore", category=SpacingWarning)`` to accept that.
    """


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
    scale_error : float or None
        Geographic CRSs only: largest ``|dy / dy_true - 1|`` or ``|dx / dx_true - 1|`` over the
        scene's rows, with ``dy_true, dx_true`` the geodesic pixel sizes at each row (fraction,
        dimensionless). Lags are off by up to this fraction somewhere in the scene.
    warning : str or None
        Why these lags should not be trusted as physical distances, if they should not: no CRS,
        or a ``scale_error`` above the tolerance. :func:`pixel_spacing` emits it as a
        :class:`SpacingWarning`.
    """

    dy: float
    dx: float
    unit: str
    method: str
    scale_error: float | None = None
    warning: str | None = None

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


def _geodesic_steps(geod, lat: np.ndarray, sy: float, sx: float) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic length (metres) of one pixel along the meridian and the parallel at latitudes ``lat``."""
    lat = np.asarray(lat, dtype=np.float64)
    zero = np.zeros_like(lat)
    _, _, my = geod.inv(zero, np.clip(lat - sy / 2, -90, 90), zero, np.clip(lat + sy / 2, -90, 90))
    _, _, mx = geod.inv(zero - sx / 2, lat, zero + sx / 2, lat)
    return np.asarray(my), np.asarray(mx)


def _scale_range(
    geod, lat: np.ndarray, sy: float, sx: float, my: float, mx: float
) -> tuple[float, float]:
    """Lowest and highest relative error ``assumed / geodesic - 1`` of the pixel size over rows."""
    ty, tx = _geodesic_steps(geod, lat, sy, sx)
    with np.errstate(divide="ignore"):  # a row on a pole has no east-west extent
        err = np.concatenate([my / ty, mx / tx]) - 1.0
    return float(err.min()), float(err.max())


def _scale_warning(lat0: float, lat: np.ndarray, lo: float, hi: float, worst: float) -> str:
    return (
        f"lags use one geodesic pixel size, taken at the scene centre (lat {lat0:.4f}), but over "
        f"the scene's rows (lat {lat.min():.4f} to {lat.max():.4f}) the true pixel size differs: "
        f"lags are off by {100 * lo:+.2f} % to {100 * hi:+.2f} % (up to {100 * worst:.2f} %) "
        "against geodesic distances; project the scene to a metric CRS first, e.g. "
        "da.rio.reproject(da.rio.estimate_utm_crs())"
    )


def _geographic(da: xr.DataArray, crs, y: str, x: str, sy: float, sx: float, tol: float):
    from pyproj import CRS

    pcrs = CRS.from_user_input(crs.to_wkt())
    geod = pcrs.get_geod()  # also handles spheres (inverse flattening 0)
    lon0 = float(np.mean(da[x].values)) if x in da.coords else 0.0
    lat = np.asarray(da[y].values, dtype=np.float64) if y in da.coords else np.zeros(1)
    lat0 = float(np.mean(lat))
    my, mx = (float(v[0]) for v in _geodesic_steps(geod, np.array([lat0]), sy, sx))
    lo, hi = _scale_range(geod, lat, sy, sx, my, mx)
    worst = max(abs(lo), abs(hi))
    warn = not worst <= tol  # also when the error cannot be measured (NaN)
    method = (
        f"local geodesic scale at scene centre (lon {lon0:.6f}, lat {lat0:.6f}) on "
        f"{pcrs.ellipsoid.name}: 1 deg lon = {mx / abs(sx):.3f} m, 1 deg lat = {my / abs(sy):.3f} m"
        f"; lags off by up to {100 * worst:.2f} % across the scene"
    )
    return GridSpacing(
        float(np.copysign(my, sy)),
        float(np.copysign(mx, sx)),
        "metre",
        method,
        scale_error=worst,
        warning=_scale_warning(lat0, lat, lo, hi, worst) if warn else None,
    )


def _measure(da: xr.DataArray, y: str, x: str, scale_tolerance: float) -> GridSpacing:
    """:func:`pixel_spacing` without emitting its warning."""
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
            note = (
                "no CRS and no coordinates: lags are in pixels; write a CRS with "
                "da.rio.write_crs(...) to get physical lags"
            )
            return GridSpacing(
                1.0, 1.0, "pixel", "pixel index (no CRS, no coordinates)", None, note
            )
        unit = str(da[x].attrs.get("units", "coordinate units"))
        note = (
            f"no CRS: lags are in coordinate units ({unit}); write a CRS with "
            "da.rio.write_crs(...) so geographic grids are converted to metres"
        )
        return GridSpacing(sy, sx, unit, "coordinate steps (no CRS)", None, note)
    if crs.is_geographic:
        return _geographic(da, crs, y, x, sy, sx, scale_tolerance)
    unit = crs.linear_units or "unknown"
    return GridSpacing(sy, sx, unit, f"projected CRS coordinate steps ({crs.to_string()})")


def pixel_spacing(
    da: xr.DataArray,
    *,
    y: str = "y",
    x: str = "x",
    scale_tolerance: float = SCALE_TOLERANCE,
) -> GridSpacing:
    """Physical pixel spacing of a DataArray with dims ``(..., y, x)``.

    - Projected CRS: the coordinate steps, in the CRS's axis unit.
    - Geographic CRS: degrees are converted to metres by the local geodesic scale at the scene
      centre on the CRS's ellipsoid (``pyproj.Geod.inv`` over one pixel along the parallel and
      the meridian). The FFT variogram needs one spacing for the whole grid, but the true pixel
      size varies with latitude (relatively ``~ tan(lat) * dlat`` over a scene ``dlat`` radians
      tall): the largest relative error over the scene's rows is measured geodesically, recorded
      as ``scale_error``, and above ``scale_tolerance`` a :class:`SpacingWarning` says by how
      much lags are off and suggests projecting the scene.
    - No CRS: the coordinate steps in the coordinates' ``units`` (pixels if there are no
      coordinates), with a :class:`SpacingWarning`.

    Parameters
    ----------
    da : xarray.DataArray
        Gridded scene with 1-D, evenly spaced ``y`` and ``x`` coordinates.
    y, x : str
        Names of the row and column dimensions.
    scale_tolerance : float
        Largest relative error of the lag spacing across a geographic scene accepted silently
        (fraction, dimensionless; 0.01 = 1 %).

    Returns
    -------
    GridSpacing
    """
    sp = _measure(da, y, x, scale_tolerance)
    if sp.warning is not None:
        warnings.warn(sp.warning, SpacingWarning, stacklevel=3)
    return sp
