"""Empirical semivariograms against brute-force pairs and GSTools on real tiles."""

from __future__ import annotations

import re
import warnings

import dask.array as dsa
import gstools as gs
import numpy as np
import pytest
import rioxarray
import xarray as xr
from pyproj import Geod

from geodiff.errors import GeodiffError, SceneError
from geodiff.geostats import SpacingWarning
from geodiff.geostats.spacing import pixel_spacing
from geodiff.geostats.variogram import semivariogram, semivariogram_array, variogram_map


def _open(path):
    return rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)


def _brute(z, dy, dx, edges, estimator="matheron", direction=None, tol=22.5):
    """Every unordered pair of valid pixels, binned by distance; directions in map axes."""
    ny, nx = z.shape
    yy, xx = np.meshgrid(np.arange(ny) * dy, np.arange(nx) * dx, indexing="ij")
    v = np.isfinite(z)
    py, px, f = yy[v], xx[v], z[v]
    i, j = np.triu_indices(len(f), 1)
    vy, vx = py[j] - py[i], px[j] - px[i]
    dist = np.hypot(vy, vx)
    k = np.searchsorted(edges, dist, side="right") - 1
    ok = (k >= 0) & (k < len(edges) - 1)
    if direction is not None:
        ang = np.degrees(np.arctan2(vy, vx)) % 180.0
        diff = np.abs(ang - direction % 180.0)
        ok &= np.minimum(diff, 180.0 - diff) <= tol + 1e-9
    d = (f[j] - f[i])[ok]
    k = k[ok]
    nb = len(edges) - 1
    n = np.bincount(k, minlength=nb)
    g = np.full(nb, np.nan)
    for b in range(nb):
        db = d[k == b]
        if db.size == 0:
            continue
        if estimator == "matheron":
            g[b] = np.mean(db**2) / 2
        elif estimator == "cressie":
            m = db.size
            g[b] = np.mean(np.sqrt(np.abs(db))) ** 4 / (0.457 + 0.494 / m + 0.045 / m**2) / 2
        else:
            g[b] = 2.198 * np.median(np.abs(db)) ** 2 / 2
    return g, n


def _tie_free_edges(step, shape, top, n):
    """Equal-width edges nudged to the middle of the gap between neighbouring lag distances.

    Two implementations may round a lag that sits exactly on an edge to different sides (GSTools
    differences coordinates, geodiff multiplies offsets), so oracles are compared on edges that
    no lag distance comes near.
    """
    iy, ix = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    d = np.unique(np.hypot(iy * step[0], ix * step[1]))
    edges = np.linspace(0, top, n + 1)
    k = np.clip(np.searchsorted(d, edges[1:]), 1, len(d) - 1)
    edges[1:] = 0.5 * (d[k - 1] + d[k])
    return np.unique(edges)


def _assert_gamma_equal(ds, gstools_gamma):
    """GSTools reports 0 for an empty bin where geodiff reports NaN; elsewhere equal."""
    empty = ds.npairs.values == 0
    assert np.all(gstools_gamma[empty] == 0) and np.all(np.isnan(ds.gamma.values[empty]))
    assert np.count_nonzero(~empty) >= 10
    np.testing.assert_allclose(ds.gamma.values[~empty], gstools_gamma[~empty], rtol=1e-10, atol=0)


@pytest.mark.parametrize("estimator", ["matheron", "cressie", "dowd"])
def test_brute_force_random_masks_non_square_pixels(estimator):
    rng = np.random.default_rng(7)
    dy, dx = 1.3, 0.7
    z = rng.normal(size=(2, 12, 15)) * rng.uniform(1, 100) + 40.0
    z[rng.random(z.shape) < 0.35] = np.nan
    edges = _tie_free_edges((dy, dx), (12, 15), 7.7, 9)
    g, n, _ = semivariogram_array(z, (dy, dx), bins=edges, estimator=estimator)
    for b in range(2):
        gb, nb = _brute(z[b], dy, dx, edges, estimator)
        np.testing.assert_array_equal(n[b], nb)
        np.testing.assert_allclose(g[b], gb, rtol=1e-12, atol=0)


@pytest.mark.parametrize("direction", [0.0, 90.0, 37.0, 135.0])
def test_brute_force_directional(direction):
    rng = np.random.default_rng(3)
    dy, dx = 0.8, 1.1
    z = rng.normal(size=(14, 11))
    z[rng.random(z.shape) < 0.2] = np.nan
    edges = _tie_free_edges((dy, dx), (14, 11), 6.05, 7)
    g, n, _ = semivariogram_array(z, (dy, dx), bins=edges, direction=direction, tolerance=15.0)
    gb, nb = _brute(z, dy, dx, edges, direction=direction, tol=15.0)
    np.testing.assert_array_equal(n, nb)
    np.testing.assert_allclose(g, gb, rtol=1e-12)


def test_gstools_on_real_geographic_tile_with_nan(campi_flegrei):
    da = _open(campi_flegrei / "vel.tif")
    tile = da.isel(y=slice(55, 115), x=slice(20, 80))
    assert np.isnan(tile).any()
    sp = pixel_spacing(tile)
    assert sp.unit == "metre" and "geodesic" in sp.method
    edges = _tie_free_edges(sp.step, tile.shape, 2500.0, 24)
    ds = semivariogram(tile, bins=edges)
    ny, nx = tile.shape
    yy, xx = np.meshgrid(np.arange(ny) * sp.dy, np.arange(nx) * sp.dx, indexing="ij")
    v = np.isfinite(tile.values)
    f = tile.values[v].astype(np.float64)
    # GSTools counts each unordered pair once and bins [lo, hi), as geodiff does: no conversion.
    _, g, c = gs.vario_estimate((xx[v], yy[v]), f, bin_edges=edges, return_counts=True)
    np.testing.assert_array_equal(ds.npairs.values, c)
    _assert_gamma_equal(ds, g)
    assert ds.lag.attrs["units"] == "metre" and "geodesic" in ds.attrs["spacing_method"]
    # Directional: GSTools' angle is counter-clockwise from its first axis (x east here).
    for d in (0.0, 60.0):
        dd = semivariogram(tile, bins=edges, direction=d, tolerance=20.0)
        _, g, c = gs.vario_estimate(
            (xx[v], yy[v]),
            f,
            bin_edges=edges,
            angles=np.radians(d),
            angles_tol=np.radians(20.0),
            return_counts=True,
        )
        np.testing.assert_array_equal(dd.npairs.values, np.ravel(c))
        _assert_gamma_equal(dd, np.ravel(g))


def test_gstools_cressie_on_real_interferogram(mexico_city_a):
    path = min(mexico_city_a.glob("*_eqa_unw.tif"))
    tile = _open(path).isel(y=slice(0, 40), x=slice(0, 45))
    assert np.isnan(tile).any()  # nodata 0 masked to NaN
    sp = pixel_spacing(tile)
    edges = _tie_free_edges(sp.step, tile.shape, 2000.0, 16)
    ny, nx = tile.shape
    yy, xx = np.meshgrid(np.arange(ny) * sp.dy, np.arange(nx) * sp.dx, indexing="ij")
    v = np.isfinite(tile.values)
    for est in ("matheron", "cressie"):
        ds = semivariogram(tile, bins=edges, estimator=est)
        _, g, c = gs.vario_estimate(
            (xx[v], yy[v]),
            tile.values[v].astype(np.float64),
            bin_edges=edges,
            estimator=est,
            return_counts=True,
        )
        np.testing.assert_array_equal(ds.npairs.values, c)
        _assert_gamma_equal(ds, g)


def test_projected_crs_spacing(opera_rtc):
    path = min(opera_rtc.glob("*/*_VV.tif"))
    da = _open(path)
    sp = pixel_spacing(da)
    assert (abs(sp.dy), abs(sp.dx)) == tuple(abs(r) for r in da.rio.resolution()[::-1])
    ds = semivariogram(da, bins=np.arange(0, 601.0, 60.0))
    assert ds.lag.attrs["units"] == "metre"
    np.testing.assert_allclose(ds.lag.values, np.arange(30, 600, 60.0))
    # A Dataset's variables (VV, VH) are channels: one variogram each, identical to one by one.
    vh = _open(str(path).replace("_VV.tif", "_VH.tif"))
    both = semivariogram(xr.Dataset({"VV": da, "VH": vh}), bins=np.arange(0, 601.0, 60.0))
    assert both.gamma.dims == ("variable", "lag")
    xr.testing.assert_equal(both.gamma.sel(variable="VV", drop=True), ds.gamma)


def test_geodesic_scale_matches_pyproj_distance(campi_flegrei):
    da = _open(campi_flegrei / "vel.tif")
    sp = pixel_spacing(da)
    lon0, lat0 = float(da.x.mean()), float(da.y.mean())
    res_x, res_y = da.rio.resolution()
    geod = Geod(ellps="WGS84")
    # 20 pixels along each axis about the centre: the local scale predicts the geodesic length.
    _, _, ex = geod.inv(lon0 - 10 * res_x, lat0, lon0 + 10 * res_x, lat0)
    _, _, ey = geod.inv(lon0, lat0 - 10 * abs(res_y), lon0, lat0 + 10 * abs(res_y))
    np.testing.assert_allclose([20 * abs(sp.dx), 20 * abs(sp.dy)], [ex, ey], rtol=1e-6)


def test_no_crs_warns_and_uses_coordinates():
    z = np.random.default_rng(0).normal(size=(10, 12))
    da = xr.DataArray(
        z, dims=("y", "x"), coords={"y": np.arange(10) * 2.0, "x": np.arange(12) * 3.0}
    )
    with pytest.warns(UserWarning, match="no CRS"):
        ds = semivariogram(da, bins=np.array([0.0, 2.5, 3.5]))
    g, n = _brute(z, 2.0, 3.0, np.array([0.0, 2.5, 3.5]))
    np.testing.assert_array_equal(ds.npairs.values, n)
    np.testing.assert_allclose(ds.gamma.values, g, rtol=1e-12)
    assert ds.attrs["lag_units"] == "coordinate units"
    with pytest.warns(UserWarning, match="pixels"):
        semivariogram(xr.DataArray(z, dims=("y", "x")))


def test_leading_dims_and_dask_lazy():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3, 16, 18))
    z[rng.random(z.shape) < 0.1] = np.nan
    da = xr.DataArray(
        z,
        dims=("sample", "band", "y", "x"),
        coords={"sample": np.arange(4), "band": ["VV", "VH", "x"]},
    )
    eager = semivariogram(da, spacing=(1.0, 1.0), bins=6)
    lazy = semivariogram(da.chunk({"sample": 1, "y": 8}), spacing=(1.0, 1.0), bins=6)
    assert isinstance(lazy.gamma.data, dsa.Array)
    assert lazy.gamma.dims == ("sample", "band", "lag")
    xr.testing.assert_identical(lazy.compute(), eager)
    g, n = _brute(
        z[2, 1], 1.0, 1.0, np.append(eager.lag_bounds[:, 0].values, eager.lag_bounds[-1, 1].values)
    )
    np.testing.assert_allclose(eager.gamma.sel(sample=2, band="VH").values, g, rtol=1e-12)
    np.testing.assert_array_equal(eager.npairs.sel(sample=2, band="VH").values, n)


def test_default_bins_half_shorter_extent():
    ds = semivariogram(np.zeros((20, 40)) + np.arange(40), spacing=(2.0, 1.0))
    assert ds.lag_bounds.values[0, 0] == 0 and ds.lag_bounds.values[-1, 1] == pytest.approx(20.0)
    np.testing.assert_allclose(ds.lag.values, ds.lag_bounds.mean("bound").values)


def test_edge_cases():
    with pytest.raises(SceneError, match="no valid"):
        semivariogram(np.full((8, 8), np.nan))
    one = np.full((8, 8), np.nan)
    one[3, 4] = 1.0
    ds = semivariogram(one, bins=4)
    assert (ds.npairs == 0).all() and ds.gamma.isnull().all()
    const = np.full((2, 9, 7), 3.7)
    const[0, 2, 2] = np.nan
    ds = semivariogram(const)
    assert (ds.gamma == 0).all() and (ds.npairs > 0).all()
    beyond = semivariogram(
        np.random.default_rng(0).normal(size=(6, 6)), bins=np.array([0.0, 3.0, 10.0, 20.0])
    )
    assert beyond.npairs.values[-1] == 0 and np.isnan(beyond.gamma.values[-1])
    assert beyond.npairs.values[1] > 0
    # batch with one all-NaN sample: NaN rows, no error
    mixed = np.random.default_rng(0).normal(size=(2, 6, 6))
    mixed[1] = np.nan
    ds = semivariogram(mixed)
    assert ds.gamma.isel(dim_0=1).isnull().all() and ds.gamma.isel(dim_0=0).notnull().all()


def test_variogram_map_matches_pairs_per_lag_vector():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(9, 11))
    z[rng.random(z.shape) < 0.25] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = variogram_map(z, spacing=(2.0, 1.0), max_lag=6.0)
    assert m.gamma.dims == ("lag_y", "lag_x")
    np.testing.assert_allclose(m.gamma.values, m.gamma.values[::-1, ::-1])
    for iy, ix in [(1, 0), (0, 3), (2, -4), (3, 6), (-1, 2)]:
        a = z[max(iy, 0) : 9 + min(iy, 0), max(ix, 0) : 11 + min(ix, 0)]
        b = z[max(-iy, 0) : 9 + min(-iy, 0), max(-ix, 0) : 11 + min(-ix, 0)]
        d = (a - b)[np.isfinite(a - b)]
        cell = m.sel(lag_y=iy * 2.0, lag_x=ix * 1.0)
        assert int(cell.npairs) == d.size
        np.testing.assert_allclose(float(cell.gamma), np.mean(d**2) / 2, rtol=1e-12)


def test_geographic_crs_on_a_sphere():
    # On a sphere of radius R one degree of latitude is R pi / 180 exactly, and one degree of
    # longitude at latitude phi (to first order over one pixel) R pi / 180 cos(phi).
    r, lat = 6_371_000.0, 30.0
    da = xr.DataArray(
        np.zeros((5, 4)),
        dims=("y", "x"),
        coords={"y": lat + 0.01 * np.arange(2, -3, -1), "x": 10.0 + 0.01 * np.arange(4)},
    ).rio.write_crs("+proj=longlat +R=6371000 +no_defs")
    sp = pixel_spacing(da)
    assert sp.unit == "metre" and sp.dy < 0 < sp.dx
    np.testing.assert_allclose(-sp.dy, 0.01 * r * np.pi / 180, rtol=1e-9)
    np.testing.assert_allclose(sp.dx, 0.01 * r * np.pi / 180 * np.cos(np.radians(lat)), rtol=1e-8)


@pytest.mark.parametrize("spacing", [(0.0, 1.0), (1.0, np.inf)])
def test_bad_spacing_rejected_by_every_entry_point(spacing):
    z = np.random.default_rng(0).normal(size=(6, 6))
    for call in (semivariogram_array, semivariogram, variogram_map):
        with pytest.raises(GeodiffError, match="spacing must be"):
            call(z, spacing=spacing)
    with pytest.raises(GeodiffError, match="spacing must be"):
        semivariogram(xr.DataArray(z, dims=("y", "x")), spacing=spacing, bins=[0.0, 1.0, 2.0])


@pytest.mark.parametrize("estimator", ["matheron", "cressie", "dowd"])
def test_float32_input_computed_in_float64(estimator):
    # float32 -> float64 is exact, so a float32 scene must give the float64 result bit for bit.
    rng = np.random.default_rng(4)
    z = (rng.normal(size=(3, 14, 13)) * 1e3 + 5e3).astype(np.float32)
    z[rng.random(z.shape) < 0.2] = np.nan
    got = semivariogram(z, bins=5, estimator=estimator)
    xr.testing.assert_identical(
        got, semivariogram(z.astype(np.float64), bins=5, estimator=estimator)
    )
    xr.testing.assert_identical(variogram_map(z[0]), variogram_map(z[0].astype(np.float64)))


def _geographic_scene(lat_top, n=64, res=0.01):
    """An ``n x n`` north-up WGS 84 grid of ``res`` degree pixels below latitude ``lat_top``."""
    lat = lat_top - res / 2 - res * np.arange(n)
    lon = 10.0 + res / 2 + res * np.arange(n)
    z = np.random.default_rng(0).normal(size=(n, n))
    return xr.DataArray(z, dims=("y", "x"), coords={"y": lat, "x": lon}).rio.write_crs(4326)


def _worst_lag_error(da, ds):
    """Largest |lag / geodesic distance - 1| over pixel pairs along the edge rows and columns.

    ``ds`` is the variogram of ``da``, whose attrs hold the pixel size its lags use.
    """
    dy, dx = abs(ds.attrs["spacing_dy"]), abs(ds.attrs["spacing_dx"])
    geod = Geod(ellps="WGS84")
    lat, lon = da.y.values, da.x.values
    n = len(lon) - 1
    errors = []
    for la in (lat[0], lat[-1]):  # a whole row: n pixel steps east-west
        _, _, d = geod.inv(lon[0], la, lon[-1], la)
        errors.append(n * dx / d - 1)
    for i in (0, len(lat) - 2):  # one pixel step north-south at the top and at the bottom
        _, _, d = geod.inv(lon[0], lat[i], lon[0], lat[i + 1])
        errors.append(dy / d - 1)
    return max(abs(e) for e in errors)


def test_polar_scene_warns_with_geodesic_lag_error():
    da = _geographic_scene(80.0)  # 79.36 to 80 deg N
    with pytest.warns(SpacingWarning, match="reproject") as record:
        ds = semivariogram(da, bins=4)
    ref = _worst_lag_error(da, ds)
    assert 0.01 < ref < 0.1
    stated = float(re.search(r"up to ([0-9.]+) %", str(record[0].message)).group(1))
    assert stated == pytest.approx(100 * ref, abs=0.006)
    assert ds.attrs["spacing_max_relative_error"] == pytest.approx(ref, rel=1e-3)
    assert ds.attrs["spacing_warning"] == str(record[0].message)
    assert issubclass(SpacingWarning, UserWarning)
    # A user who accepts a 5 % error is not warned.
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpacingWarning)
        pixel_spacing(da, scale_tolerance=0.05)


def test_no_spacing_warning_at_equator_or_on_real_scene(campi_flegrei):
    equator = _geographic_scene(0.32)
    real = _open(campi_flegrei / "vel.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpacingWarning)
        for da in (equator, real):
            ds = semivariogram(da, bins=4)
            assert "spacing_warning" not in ds.attrs
            assert ds.attrs["spacing_max_relative_error"] < 0.01
    assert ds.attrs["spacing_max_relative_error"] == pytest.approx(
        _worst_lag_error(real, ds), rel=1e-3
    )
