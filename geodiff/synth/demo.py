"""The embedded demo scene: a deterministic Sentinel-1-like LOS velocity map over a volcanic area."""

from __future__ import annotations

import numpy as np
import xarray as xr

from geodiff.geostats.fields import power_law_field
from geodiff.insar.constants import SENTINEL1_HEADING_DESCENDING, SENTINEL1_INCIDENCE
from geodiff.insar.geometry import los_vector
from geodiff.synth import atmosphere as atm
from geodiff.synth.config import Mogi, Okada, Sill
from geodiff.synth.frame import local_frame
from geodiff.synth.grid import template
from geodiff.synth.scene import los_deformation

__all__ = ["demo_dem", "demo_scene"]

_SEED = 20_231_107


def _demo_grid() -> xr.DataArray:
    # UTM 33N (southern Italy), 320 x 384 pixels of 100 m.
    return template((320, 384), 100.0, crs="EPSG:32633", origin=(420_000.0, 4_530_000.0))


def _centre(da: xr.DataArray, fy: float, fx: float) -> tuple[float, float]:
    """Map coordinates at fractional position (fy, fx) of the grid."""
    x, y = da.x.values, da.y.values
    return float(x[0] + fx * (x[-1] - x[0])), float(y[0] + fy * (y[-1] - y[0]))


def demo_dem(grid: xr.DataArray | None = None) -> xr.DataArray:
    """Deterministic synthetic DEM (m): a volcanic cone, a ridge and fractal roughness.

    Roughness is a power-law field with spectral exponent 4 (the Brownian-surface slope
    typical of topography), fixed seed.
    """
    grid = _demo_grid() if grid is None else grid
    frame = local_frame(grid)
    vx, vy = frame.to_local(*_centre(grid, 0.45, 0.35))
    r = np.hypot(frame.x - vx, frame.y - vy)
    cone = 1400.0 * np.exp(-((r / 6000.0) ** 1.5))
    ridge_axis = (frame.x - frame.x.mean()) * np.sin(0.6) + (frame.y - frame.y.mean()) * np.cos(0.6)
    ridge = 500.0 * np.exp(-0.5 * ((ridge_axis - 9000.0) / 4000.0) ** 2)
    rough = power_law_field(grid.shape, 4.0, spacing=frame.spacing, seed=_SEED, std=120.0)
    dem = np.clip(150.0 + cone + ridge + rough, 0.0, None)
    out = xr.DataArray(dem, dims=grid.dims, coords=grid.coords, attrs={"long_name": "elevation", "units": "m"})
    return out.rio.write_crs(grid.rio.crs).rename("elevation")


def _footprint(frame, angle_deg: float, frac: tuple[float, float]) -> np.ndarray:
    """Pixels inside a rotated rectangle (a Sentinel-1 burst footprint seen on a UTM grid)."""
    t = np.deg2rad(angle_deg)
    dx = frame.x - frame.x.mean()
    dy = frame.y - frame.y.mean()
    u = dx * np.cos(t) - dy * np.sin(t)
    v = dx * np.sin(t) + dy * np.cos(t)
    half_x = 0.5 * frac[1] * (frame.x.max() - frame.x.min())
    half_y = 0.5 * frac[0] * (frame.y.max() - frame.y.min())
    return (np.abs(u) <= half_x) & (np.abs(v) <= half_y)


def demo_scene() -> xr.DataArray:
    """The demo scene: Sentinel-1 descending LOS velocity (mm/yr) on a 320 x 384 UTM grid at 100 m.

    Deterministic (fixed seed). Deformation from an inflating Mogi source under a volcano, a
    creeping normal fault (Okada) and an inflating sill (penny-shaped crack), all as rates;
    a turbulent atmospheric residual (power law, exponent 8/3, 2 mm/yr) and a stratified
    residual correlated with a synthetic DEM (:func:`demo_dem`); NaN outside a rotated
    rectangular footprint, as on a Sentinel-1 frame resampled to UTM.

    Returns
    -------
    xarray.DataArray
        ``los_velocity``, float32 ``(y, x)``, ``units="mm/yr"``, CRS EPSG:32633 in ``spatial_ref``,
        NaN nodata encoded as ``_FillValue``.
    """
    grid = _demo_grid()
    frame = local_frame(grid)
    rng = np.random.default_rng(_SEED)
    dem = demo_dem(grid)
    vx, vy = _centre(grid, 0.45, 0.35)
    fx, fy = _centre(grid, 0.35, 0.72)
    sx, sy = _centre(grid, 0.72, 0.55)
    # Rates: volumes in m^3/yr and slip in m/yr give velocities in m/yr.
    sources = [
        Mogi(x=vx, y=vy, depth=4000.0, dV=4.0e6),
        Okada(x=fx, y=fy, depth=3000.0, strike=35.0, dip=60.0, length=12000.0, width=5000.0, slip=0.06, rake=-90.0),
        Sill(x=sx, y=sy, depth=2500.0, radius=2500.0, dV=2.5e6),
    ]
    look = los_vector(SENTINEL1_HEADING_DESCENDING, SENTINEL1_INCIDENCE)
    velocity = 1000.0 * los_deformation(frame, sources, look, rng)
    velocity += atm.turbulent(grid.shape, std=2.0, spacing=frame.spacing, seed=rng)
    velocity += atm.stratified(dem.values, -0.003)
    inside = _footprint(frame, -12.0, (0.92, 0.84))
    values = np.where(inside, velocity, np.nan).astype(np.float32)
    da = xr.DataArray(
        values,
        dims=grid.dims,
        coords=grid.coords,
        name="los_velocity",
        attrs={
            "long_name": "line-of-sight velocity, positive towards the satellite",
            "units": "mm/yr",
            "platform": "synthetic Sentinel-1 (descending, heading -168 deg, incidence 39 deg)",
            "source": "geodiff.synth.demo_scene",
        },
    )
    return da.rio.write_crs(grid.rio.crs).rio.write_nodata(np.nan, encoded=True)
