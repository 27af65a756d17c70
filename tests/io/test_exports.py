"""Exports the ecosystem opens without surprises: one nodata policy, block-aligned GeoTIFFs,
integer scenes written back, consolidated Zarr, interrupted appends that a reader can tell,
progress bars."""

import re
import tracemalloc
import warnings

import dask.array as darr
import netCDF4
import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr

import geodiff
from geodiff.cli import main
from geodiff.errors import SceneError
from geodiff.io import to_zarr, zarr_template

_TRANSFORM = rasterio.transform.from_origin(500_000.0, 4_200_000.0, 30.0, 30.0)


def _grid(values: np.ndarray, dims=("y", "x")) -> xr.DataArray:
    ny, nx = values.shape[-2:]
    coords = {"y": 4_200_000.0 - 15.0 - 30.0 * np.arange(ny), "x": 500_015.0 + 30.0 * np.arange(nx)}
    return xr.DataArray(values, dims=dims, coords=coords).rio.write_crs("EPSG:32611")


def _tif(path, values: np.ndarray, nodata) -> None:
    profile = {"driver": "GTiff", "width": values.shape[1], "height": values.shape[0], "count": 1,
               "dtype": values.dtype.name, "crs": "EPSG:32611", "transform": _TRANSFORM, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)


@pytest.fixture
def zero_nodata_scene(tmp_path):
    """A float32 interferogram-like scene whose file declares nodata 0, as PyRate's do."""
    values = np.random.default_rng(1).normal(0.0, 2.0, (40, 48)).astype("float32")
    values[:6, :10] = 0
    _tif(tmp_path / "ifg.tif", values, nodata=0)
    return geodiff.open_scene(tmp_path / "ifg.tif"), values == 0


def _raw_geotiff(path):
    with rasterio.open(path) as src:
        return src.read(1), src.nodata


def _raw_netcdf(path):
    with netCDF4.Dataset(path) as nc:
        var = nc["data"]
        var.set_auto_mask(False)
        return var[:], var.getncattr("_FillValue")


def _raw_zarr(path):
    array = zarr.open_group(str(path), mode="r")["data"]
    return array[:], array.fill_value


@pytest.mark.parametrize("writer,name,raw", [(geodiff.to_geotiff, "s.tif", _raw_geotiff),
                                             (geodiff.to_netcdf, "s.nc", _raw_netcdf),
                                             (geodiff.to_zarr, "s.zarr", _raw_zarr)])
@pytest.mark.parametrize("nodata", [None, -9999.0])
def test_one_nodata_policy_for_every_writer(zero_nodata_scene, tmp_path, writer, name, raw, nodata):
    scene, missing = zero_nodata_scene
    writer(scene, tmp_path / name, nodata=nodata, progress=False)
    values, declared = raw(tmp_path / name)  # each format's own library, no xarray decoding
    expected = 0 if nodata is None else nodata  # the scene's own nodata unless told otherwise
    assert declared == expected
    assert (values[missing] == expected).all()
    np.testing.assert_array_equal(values[~missing], scene.values[~missing])


@pytest.mark.parametrize("chunk", [64, 100])  # smaller than the 256-pixel blocks; aligned or not
def test_lazy_geotiff_is_as_small_as_an_eager_one(tmp_path, chunk):
    lazy = _grid(darr.random.default_rng(0).standard_normal((512, 512), chunks=chunk, dtype=np.float32))
    eager = lazy.compute()
    (lazy_path,) = geodiff.to_geotiff(lazy, tmp_path / "lazy.tif", progress=False)
    (eager_path,) = geodiff.to_geotiff(eager, tmp_path / "eager.tif", progress=False)
    assert lazy_path.stat().st_size <= 1.1 * eager_path.stat().st_size
    np.testing.assert_array_equal(_raw_geotiff(lazy_path)[0], eager.values)


def test_lazy_geotiff_with_unaligned_chunks_still_streams(tmp_path):
    size = 2048
    lazy = _grid(darr.random.default_rng(0).standard_normal((size, size), chunks=100, dtype=np.float32))
    tracemalloc.start()
    geodiff.to_geotiff(lazy, tmp_path / "big.tif", progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < size * size * 4 / 4, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("nodata", [0, None])
def test_integer_scene_round_trips_through_geotiff(tmp_path, nodata):
    values = np.random.default_rng(2).integers(1, 60_000, (37, 45)).astype("uint16")
    values[:4, :5] = 0
    _tif(tmp_path / "grd.tif", values, nodata=nodata)
    scene = geodiff.open_scene(tmp_path / "grd.tif")
    assert scene.dtype == np.float32  # masked to float, as every scene is
    (path,) = geodiff.to_geotiff(scene, tmp_path / "back.tif", progress=False)
    back, declared = _raw_geotiff(path)
    np.testing.assert_array_equal(back, values)
    if nodata is not None:  # the original integer type and nodata
        assert back.dtype == np.uint16 and declared == nodata


def _stack(n=3, start=0):
    values = np.random.default_rng(start).normal(size=(n, 16, 24)).astype("float32")
    stack = _grid(values, dims=("sample", "y", "x")).assign_coords(sample=np.arange(start, start + n))
    return stack.chunk({"sample": 1, "y": 8, "x": 8})


def test_zarr_stores_open_without_warnings(tmp_path):
    store = to_zarr(_stack(), tmp_path / "s.zarr", progress=False)
    to_zarr(_stack(2, start=3), store, append=True, progress=False)
    template = zarr_template(_stack(), tmp_path / "r.zarr")
    for k in (1, 0, 2):
        to_zarr(_stack().isel(sample=[k]), template, region={"sample": slice(k, k + 1)}, progress=False)
    for path, n in [(store, 5), (template, 3)]:
        zarr.open_consolidated(str(path), mode="r")  # zarr's own reader finds the consolidated metadata
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert xr.open_zarr(path)["data"].sizes["sample"] == n
    np.testing.assert_array_equal(xr.open_zarr(template)["data"].values, _stack().values)


class Boom(RuntimeError):
    pass


def _die_on_second_sample(block, block_info=None):
    if block_info[None]["chunk-location"][0] == 1:
        raise Boom("worker died")
    return block


def test_interrupted_append_is_refused_until_run_again(tmp_path, capsys):
    store = to_zarr(_stack(), tmp_path / "s.zarr", progress=False)
    more = _stack(3, start=3)
    broken = more.copy(data=more.data.map_blocks(_die_on_second_sample, dtype=more.dtype))
    with pytest.raises(Boom):
        to_zarr(broken, store, append=True, progress=False)
    assert zarr.open_group(str(store), mode="r")["data"].shape[0] == 6  # the store does report them
    with pytest.raises(SceneError, match=r"incomplete: an append of samples 3\.\.5"):
        geodiff.open_scene(store, stack_dim="sample")
    assert main(["info", str(store)]) == 2
    assert "incomplete" in capsys.readouterr().err

    to_zarr(more, store, append=True, progress=False)  # the same call again
    back = geodiff.open_scene(store, stack_dim="sample")
    np.testing.assert_array_equal(back.values, np.concatenate([_stack().values, more.values]))
    np.testing.assert_array_equal(back["sample"].values, np.arange(6))


@pytest.mark.parametrize("writer,name", [(geodiff.to_geotiff, "p.tif"), (geodiff.to_netcdf, "p.nc"),
                                         (geodiff.to_zarr, "p.zarr")])
def test_exports_show_progress_unless_told_not_to(tmp_path, capsys, writer, name):
    writer(_stack(), tmp_path / name)
    assert re.search(r"writing p\.\w+: 100%", capsys.readouterr().err)
    writer(_stack(), tmp_path / ("quiet_" + name), progress=False)
    assert capsys.readouterr().err == ""
