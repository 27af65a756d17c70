"""The embedded demo scene and labelled stacks: determinism, georeferencing, export."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray
import xarray as xr

from geodiff.insar import SENTINEL1_WAVELENGTH, displacement_to_phase, wrap
from geodiff.synth import demo_dem, demo_scene
from geodiff.synth.dataset import KINDS, dataset


@pytest.fixture(scope="module")
def scene():
    return demo_scene()


def test_demo_scene_is_a_deterministic_utm_velocity_map(scene):
    xr.testing.assert_identical(scene, demo_scene())
    assert scene.dims == ("y", "x") and 200 <= min(scene.shape) and max(scene.shape) <= 600
    assert scene.rio.crs.to_epsg() == 32633
    assert scene.rio.resolution() == (100.0, -100.0)
    assert scene.attrs["units"] == "mm/yr" and scene.dtype == np.float32
    assert np.isnan(scene.encoding["_FillValue"]) and np.isnan(scene.rio.encoded_nodata)
    # Sentinel-1-like footprint: NaN corners, valid centre, a tilted (not axis-aligned) border.
    nan = np.isnan(scene.values)
    assert nan[0, 0] and nan[-1, -1] and not nan[scene.shape[0] // 2, scene.shape[1] // 2]
    assert 0.1 < nan.mean() < 0.5
    first_valid = np.argmax(~nan, axis=1)[nan.shape[0] // 4: 3 * nan.shape[0] // 4]
    assert np.ptp(first_valid) > 5
    # Deformation dominates: tens of mm/yr of uplift over the sources, a few mm/yr of atmosphere.
    assert 30 < np.nanmax(scene.values) < 300


def test_demo_dem_is_deterministic_and_georeferenced():
    a, b = demo_dem(), demo_dem()
    xr.testing.assert_identical(a, b)
    assert a.attrs["units"] == "m" and a.rio.crs.to_epsg() == 32633 and float(a.max()) > 1000


def test_demo_scene_round_trips_through_geotiff(scene, tmp_path):
    path = tmp_path / "demo.tif"
    scene.rio.to_raster(path)
    back = rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)
    assert back.rio.crs == scene.rio.crs
    np.testing.assert_array_equal(back.values, scene.values)
    np.testing.assert_allclose(back.x, scene.x)


def test_dataset_stack_is_labelled_consistent_and_reproducible():
    ds = dataset(6, shape=(32, 40), kinds=KINDS, unwrapping_errors=1, seed=0)
    assert ds.unwrapped.dims == ("sample", "y", "x") and ds.sizes == {"sample": 6, "y": 32, "x": 40}
    assert set(ds.source.values) <= set(KINDS)
    assert ds.rio.crs.to_epsg() == 32633
    defo_phase = displacement_to_phase(ds.deformation.astype(float), SENTINEL1_WAVELENGTH)
    total = defo_phase + ds.atmosphere + ds.ramp + ds.noise
    np.testing.assert_allclose(ds.unwrapped, total, atol=1e-4)
    np.testing.assert_allclose(ds.wrapped, wrap(ds.unwrapped.values.astype(float)), atol=1e-4)
    xr.testing.assert_identical(ds, dataset(6, shape=(32, 40), kinds=KINDS, unwrapping_errors=1, seed=0))
    # Coherence is drawn per example within its range; noise is wider where coherence is lower.
    coh = ds.coherence.isel(y=0, x=0).values
    assert np.all((coh >= 0.3) & (coh <= 0.95))
    no_errors = dataset(40, shape=(24, 24), coherence=(0.2, 0.95), seed=1)
    spread = no_errors.noise.std(dim=("y", "x")).values
    assert np.corrcoef(no_errors.coherence.isel(y=0, x=0).values, spread)[0, 1] < -0.8


def test_dataset_on_a_masked_geographic_grid_exports_to_netcdf(tmp_path):
    lon = 14.1 + 0.001 * np.arange(30)
    lat = 40.8 - 0.001 * np.arange(20)
    like = xr.DataArray(np.zeros((20, 30)), dims=("y", "x"), coords={"y": lat, "x": lon}).rio.write_crs("EPSG:4326")
    like[0, :] = np.nan
    ds = dataset(3, like=like, kinds=("okada",), seed=2)
    assert np.isnan(ds.deformation[:, 0]).all() and np.isfinite(ds.deformation[:, 1:]).all()
    path = tmp_path / "stack.nc"
    ds.to_netcdf(path)
    back = xr.open_dataset(path, decode_coords="all")
    np.testing.assert_array_equal(back.unwrapped.values, ds.unwrapped.values)
    assert back.rio.crs.to_epsg() == 4326 and list(back.source.values) == list(ds.source.values)
    back.close()


def test_demo_and_dataset_export_with_the_io_layer(scene, tmp_path):
    import geodiff

    geodiff.to_geotiff(scene, tmp_path / "demo.tif")
    back = geodiff.open_scene(tmp_path / "demo.tif")
    np.testing.assert_array_equal(np.asarray(back.values).squeeze(), scene.values)
    assert back.rio.crs == scene.rio.crs

    ds = dataset(4, shape=(32, 32), seed=5)
    geodiff.to_netcdf(ds.unwrapped, tmp_path / "unw.nc")
    geodiff.to_zarr(ds.deformation, tmp_path / "defo.zarr")
    nc = xr.open_dataset(tmp_path / "unw.nc", decode_coords="all")
    np.testing.assert_array_equal(nc.unwrapped.values, ds.unwrapped.values)
    assert nc.rio.crs == ds.rio.crs and nc.unwrapped.attrs["units"] == "rad"
    nc.close()
    zs = xr.open_zarr(tmp_path / "defo.zarr", decode_coords="all", consolidated=False)
    np.testing.assert_array_equal(zs.deformation.values, ds.deformation.values)
    assert list(zs.source.values) == list(ds.source.values)
