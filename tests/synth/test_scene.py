"""Synthetic interferograms on projected and geographic grids: composition, georeferencing, physics."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pyproj import Geod

from geodiff.errors import GeodiffError, SceneError
from geodiff.insar import SENTINEL1_WAVELENGTH, displacement_to_phase, los_vector, wrap
from geodiff.synth import (
    Atmosphere,
    Mogi,
    Okada,
    Shapes,
    Sill,
    deformation,
    interferogram,
    template,
)


@pytest.fixture
def grid():
    return template((60, 80), 100.0, crs="EPSG:32633", origin=(400_000.0, 4_500_000.0))


def test_components_add_up_and_wrap(grid):
    dem = xr.full_like(grid, 0.0) + np.linspace(0, 800, 80)
    ds = interferogram(
        grid,
        sources=[Mogi(x=403_050, y=4_497_050, depth=2000, dV=2e6), Okada(x=405_000, y=4_496_000, depth=3000,
                 strike=20, dip=60, length=3000, width=2000, slip=0.5, rake=-90)],
        atmosphere=Atmosphere(turbulent_std=8.0, stratified_k=-0.01),
        dem=dem, ramp=1.0, coherence=0.5, looks=3, unwrapping_errors=2, seed=1,
    )
    total = displacement_to_phase(ds.deformation, SENTINEL1_WAVELENGTH) + ds.atmosphere + ds.ramp + ds.noise
    np.testing.assert_allclose(ds.unwrapped, total, atol=1e-12)
    np.testing.assert_allclose(ds.wrapped, wrap(ds.unwrapped.values), atol=1e-12)
    assert float(ds.wrapped.min()) >= -np.pi and float(ds.wrapped.max()) < np.pi
    assert (ds.coherence == 0.5).all()
    # Unwrapping errors are whole cycles on top of noise in [-pi, pi].
    assert np.abs(ds.noise).max() > np.pi


def test_outputs_are_georeferenced_like_the_grid(grid):
    like = grid.copy()
    like[:5, :] = np.nan
    ds = interferogram(like, sources=[Mogi(x=404_000, y=4_497_000, depth=2000, dV=1e6)], coherence=0.8, seed=0)
    assert ds.rio.crs == grid.rio.crs
    for name, units in [("deformation", "m"), ("unwrapped", "rad"), ("wrapped", "rad"), ("atmosphere", "rad"),
                        ("noise", "rad"), ("coherence", "1")]:
        var = ds[name]
        assert var.dims == ("y", "x") and var.attrs["units"] == units
        np.testing.assert_array_equal(var.x, grid.x)
        np.testing.assert_array_equal(var.y, grid.y)
        assert var.rio.crs == grid.rio.crs
        assert np.isnan(var[:5]).all() and not np.isnan(var[5:]).any()
    assert ds.rio.transform() == grid.rio.transform()


def test_mogi_through_the_scene_matches_closed_form_in_los(grid):
    xc, yc = float(grid.x[40]), float(grid.y[30])
    d = deformation(grid, [Mogi(x=xc, y=yc, depth=1500, dV=5e5)], heading=-168, incidence=35)
    # Pure uplift above the source, seen at 35 degrees: (1 - nu) dV / (pi d^2) cos(inc).
    assert float(d[30, 40]) == pytest.approx(0.75 * 5e5 / (np.pi * 1500**2) * np.cos(np.deg2rad(35)), rel=1e-12)
    assert d.attrs["units"] == "m" and d.rio.crs == grid.rio.crs
    ds = interferogram(grid, sources=[Mogi(x=xc, y=yc, depth=1500, dV=5e5)], heading=-168, incidence=35)
    # Uplift (towards the satellite) is negative phase.
    assert float(ds.unwrapped[30, 40]) < 0
    assert float(ds.noise.max()) == 0 and float(ds.atmosphere.max()) == 0


def test_geographic_grid_uses_true_distances():
    lon = 14.10 + 0.001 * np.arange(-60, 61)
    lat = 40.83 - 0.001 * np.arange(-50, 51)
    like = xr.DataArray(np.zeros((lat.size, lon.size)), dims=("y", "x"), coords={"y": lat, "x": lon})
    like = like.rio.write_crs("EPSG:4326")
    depth, dV = 2000.0, 1e6
    d = deformation(like, [Mogi(x=14.10, y=40.83, depth=depth, dV=dV)], heading=-168, incidence=39)
    # Oracle: geodesic distance and azimuth on WGS84 (pyproj.Geod), then Mogi's closed form in ENU.
    lon2, lat2 = np.meshgrid(lon, lat)
    az, _, dist = Geod(ellps="WGS84").inv(np.full(lon2.shape, 14.10), np.full(lon2.shape, 40.83), lon2, lat2)
    r3 = (dist**2 + depth**2) ** 1.5
    c = 0.75 * dV / np.pi / r3
    ue, un, uz = c * dist * np.sin(np.deg2rad(az)), c * dist * np.cos(np.deg2rad(az)), c * depth
    le, ln, lu = los_vector(-168, 39)
    expected = le * ue + ln * un + lu * uz
    np.testing.assert_allclose(d.values, expected, atol=2e-3 * np.abs(expected).max())
    assert d.rio.crs.to_epsg() == 4326


def test_all_source_kinds_and_exponential_atmosphere(grid):
    ds = interferogram(
        grid,
        sources=[Sill(x=404_000, y=4_497_000, depth=2000, radius=1500, dV=1e6), Shapes(n_shapes=2)],
        atmosphere=Atmosphere(turbulent_std=5.0, model="exponential", correlation_length=2000.0),
        seed=3,
    )
    assert np.isfinite(ds.unwrapped).all()
    assert float(ds.deformation.max()) > 0.01


def test_same_seed_same_scene(grid):
    kw = dict(sources=[Shapes()], atmosphere=Atmosphere(), ramp=0.5, coherence=0.4, looks=2)
    a = interferogram(grid, seed=7, **kw)
    b = interferogram(grid, seed=7, **kw)
    c = interferogram(grid, seed=8, **kw)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a.unwrapped, c.unwrapped)


def test_bad_input_is_explained(grid):
    no_crs = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"), coords={"y": np.arange(4.0), "x": np.arange(4.0)})
    with pytest.raises(SceneError, match="CRS"):
        interferogram(no_crs)
    with pytest.raises(GeodiffError, match="dem"):
        interferogram(grid, atmosphere=Atmosphere(stratified_k=0.01))
    with pytest.raises(SceneError, match="NaN"):
        interferogram(grid * np.nan)
    with pytest.raises(GeodiffError, match="shape"):
        interferogram(grid, coherence=np.ones((3, 3)))
    with pytest.raises(GeodiffError, match="sources"):
        interferogram(grid, sources=["mogi"])


def test_local_frame_scales_projected_feet_to_metres():
    from geodiff.synth import local_frame

    ft = template((10, 12), 300.0, crs="EPSG:2229", origin=(6_400_000.0, 1_900_000.0))  # US survey feet
    frame = local_frame(ft)
    np.testing.assert_allclose(frame.spacing, (300.0 * 1200 / 3937, 300.0 * 1200 / 3937), rtol=1e-9)
    with pytest.raises(SceneError, match="2 pixels"):
        local_frame(ft.isel(y=slice(0, 1)))


def test_interferogram_on_a_real_geographic_scene_with_its_dem(campi_flegrei):
    import rioxarray

    vel = rioxarray.open_rasterio(campi_flegrei / "vel.tif", masked=True).squeeze("band", drop=True)
    hgt = rioxarray.open_rasterio(campi_flegrei / "hgt.tif", masked=True).squeeze("band", drop=True)
    ds = interferogram(
        vel, sources=[Mogi(x=14.14, y=40.83, depth=3000, dV=1e6)],
        atmosphere=Atmosphere(turbulent_std=3.0, stratified_k=-0.005), dem=hgt.values,
        coherence=0.7, looks=4, seed=0,
    )
    assert ds.rio.crs == vel.rio.crs
    np.testing.assert_array_equal(np.isnan(ds.unwrapped.values), np.isnan(vel.values) | np.isnan(hgt.values))
    # The local frame's pixel size agrees with geodesic distances between neighbouring pixel centres.
    from geodiff.synth import local_frame

    geod = Geod(ellps="WGS84")
    xc, yc = float(vel.x[95]), float(vel.y[60])
    dx = geod.inv(xc, yc, float(vel.x[96]), yc)[2]
    dy = geod.inv(xc, yc, xc, float(vel.y[61]))[2]
    np.testing.assert_allclose(local_frame(vel).spacing, (dy, dx), rtol=1e-3)
