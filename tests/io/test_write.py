"""Writers: round trips through rasterio/rioxarray/xarray, COG and CF validation, atomicity, memory."""

import tracemalloc

import dask.array as darr
import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr

import geodiff
from geodiff.errors import OutputError
from geodiff.io import to_zarr, zarr_template


@pytest.fixture
def stack(mexico_city_a):
    scene = geodiff.open_scene(mexico_city_a / "cropA_20180106-20180130_VV_8rlks_eqa_unw.tif")
    out = xr.concat([scene * (1 + k) for k in range(3)], dim="sample").chunk({"sample": 1, "y": 32, "x": 32})
    out = out.assign_coords(sample=np.arange(3))
    out.attrs.update(scene.attrs, provenance={"seed": 0, "sampler": "ddim"}, coefficients_per_tile=[[1.5, 2.0]])
    out.encoding = {"_FillValue": scene.encoding["_FillValue"]}
    return out


def test_geotiff_round_trip(stack, tmp_path):
    path, = geodiff.to_geotiff(stack, tmp_path / "s.tif")
    back = rioxarray.open_rasterio(path, masked=True)
    assert back.rio.crs == stack.rio.crs
    assert back.rio.transform().almost_equals(stack.rio.transform(), precision=1e-12)
    assert back.dtype == stack.dtype
    np.testing.assert_array_equal(np.isnan(back.values), np.isnan(stack.values))
    np.testing.assert_array_equal(back.values, stack.values)
    with rasterio.open(path) as src:  # GDAL's own view
        assert src.nodata == 0.0  # PyRate's nodata re-encoded
        assert (src.read(1)[np.isnan(stack.values[0])] == 0).all()
        assert src.descriptions == ("sample=0", "sample=1", "sample=2")
        assert src.units == ("rad",) * 3
        assert src.profile["tiled"] and src.compression.name == "deflate"
        assert '"sampler": "ddim"' in src.tags()["provenance"]


def test_one_file_per_sample(stack, tmp_path):
    paths = geodiff.to_geotiff(stack, tmp_path / "s.tif", layout="files")
    assert [p.name for p in paths] == ["s_000.tif", "s_001.tif", "s_002.tif"]
    np.testing.assert_array_equal(rioxarray.open_rasterio(paths[2], masked=True).values[0], stack.values[2])


def test_cog_validates(stack, tmp_path):
    from rio_cogeo.cogeo import cog_validate

    path, = geodiff.to_geotiff(stack, tmp_path / "c.tif", cog=True)
    valid, errors, _ = cog_validate(str(path))
    assert valid, errors


def test_netcdf_round_trip_and_cf(stack, tmp_path):
    path = geodiff.to_netcdf(stack, tmp_path / "s.nc", name="unwrapped_phase")
    ds = xr.open_dataset(path, decode_coords="all")
    var = ds["unwrapped_phase"]
    assert var.encoding["_FillValue"] == 0 and var.attrs["units"] == "rad"
    assert var.encoding["grid_mapping"] == "spatial_ref" and "crs_wkt" in ds["spatial_ref"].attrs
    assert ds.rio.crs == stack.rio.crs
    assert ds.attrs["Conventions"] == "CF-1.8" and "geodiff" in ds.attrs["history"]
    np.testing.assert_array_equal(var.values, stack.values)
    assert var.encoding["zlib"]


def _dual_polarisation_stack():
    values = np.random.default_rng(0).gamma(2.0, 0.05, (2, 2, 6, 7)).astype("float32")
    stack = xr.DataArray(values, dims=("sample", "band", "y", "x"), attrs={"units": "1"},
                         coords={"sample": np.arange(2), "band": ["VV", "VH"],
                                 "y": 3.8e6 - 30.0 * np.arange(6), "x": 2.5e5 + 30.0 * np.arange(7)})
    return stack.rio.write_crs("EPSG:32611")


@pytest.mark.parametrize("kind", ["sample_y_x", "sample_band_y_x"])
def test_netcdf_has_no_cf_errors_at_any_priority(kind, request, tmp_path):
    pytest.importorskip("compliance_checker")
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    stack = request.getfixturevalue("stack") if kind == "sample_y_x" else _dual_polarisation_stack()
    path = geodiff.to_netcdf(stack, tmp_path / "s.nc", progress=False)
    CheckSuite.load_all_available_checkers()
    report = tmp_path / "report.txt"
    # "strict" counts failures of every priority (high, medium, low) as errors.
    passed, crashed = ComplianceChecker.run_checker(str(path), ["cf:1.8"], verbose=1, criteria="strict",
                                                    output_filename=str(report), output_format="text")
    assert passed and not crashed, report.read_text()


def test_netcdf_opens_as_one_dataarray_with_plain_xarray(tmp_path):
    stack = _dual_polarisation_stack()
    path = geodiff.to_netcdf(stack, tmp_path / "s.nc", progress=False)
    da = xr.open_dataarray(path)  # xarray's defaults: no decode_coords="all"
    assert "spatial_ref" in da.coords and da.rio.crs == stack.rio.crs
    assert list(da["band_name"].values) == ["VV", "VH"]
    np.testing.assert_array_equal(da.values, stack.values)
    back = geodiff.open_scene(path, stack_dim="sample")
    assert list(back["band"].values) == ["VV", "VH"] and back.dims == stack.dims


def test_zarr_chunks_append_and_parallel_regions(stack, tmp_path):
    store = to_zarr(stack, tmp_path / "s.zarr")
    back = xr.open_zarr(store, decode_coords="all")["data"]
    assert back.encoding["chunks"] == (1, 32, 32)
    assert back.rio.crs == stack.rio.crs
    np.testing.assert_array_equal(back.values, stack.values)
    to_zarr(stack.assign_coords(sample=[3, 4, 5]), store, append=True)
    assert xr.open_zarr(store)["data"].sizes["sample"] == 6

    template = zarr_template(stack, tmp_path / "r.zarr")
    for k in (2, 0, 1):  # independent writers, any order
        to_zarr(stack.isel(sample=[k]), template, region={"sample": slice(k, k + 1)})
    np.testing.assert_array_equal(xr.open_zarr(template)["data"].values, stack.values)


class Boom(RuntimeError):
    pass


def _explode(block, block_info=None):
    if block_info[None]["chunk-location"][-1] == 2:
        raise Boom("worker died")
    return block


@pytest.mark.parametrize("writer,name", [(geodiff.to_geotiff, "x.tif"), (geodiff.to_netcdf, "x.nc"),
                                         (geodiff.to_zarr, "x.zarr")])
def test_interrupted_export_leaves_no_file(stack, tmp_path, writer, name):
    broken = stack.copy(data=stack.data.map_blocks(_explode, dtype=stack.dtype))
    with pytest.raises(Boom):
        writer(broken, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def _explode_while_others_compute(block, block_info=None):
    import time

    if block_info[None]["chunk-location"][-1] == 2:
        raise Boom("worker died")
    time.sleep(0.3)  # still computing when the other chunk fails
    return block


@pytest.mark.parametrize("writer,name", [(geodiff.to_geotiff, "x.tif"), (geodiff.to_netcdf, "x.nc"),
                                         (geodiff.to_zarr, "x.zarr")])
def test_chunks_that_finish_after_a_failure_never_write(stack, tmp_path, writer, name):
    """dask raises at the first failed chunk while its other threads finish theirs: the writer
    must wait for them before it closes and removes its temporary, or they write into a closed
    GDAL dataset (a crash) or recreate the removed netCDF file or Zarr store."""
    import time

    broken = stack.copy(data=stack.data.map_blocks(_explode_while_others_compute, dtype=stack.dtype))
    with pytest.raises(Boom):
        writer(broken, tmp_path / name)
    time.sleep(1.0)  # any chunk still running comes back now
    assert list(tmp_path.iterdir()) == []


def test_a_scheduler_the_user_chose_is_kept(stack, tmp_path):
    """The writers drain threads of their own only under dask's default: a scheduler set in
    dask.config computes every chunk."""
    import dask

    calls = []

    def scheduler(dsk, keys, **kwargs):
        calls.append(keys)
        return dask.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=scheduler):
        geodiff.to_zarr(stack, tmp_path / "s.zarr", progress=False)
    assert calls
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "s.zarr")["data"].values, stack.values)


def test_unwritable_destination_is_a_clear_error(stack, tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        geodiff.to_geotiff(stack, tmp_path / "missing" / "x.tif")
    with pytest.raises(OutputError, match="cannot write"):
        geodiff.to_netcdf(stack, "/proc/geodiff-cannot-write.nc")


def test_streaming_export_holds_only_a_few_tiles(tmp_path):
    tile = 256
    scene = xr.DataArray(np.zeros((2048, 2048), np.float32), dims=("y", "x"),
                         coords={"y": np.arange(2048)[::-1] * 10.0, "x": np.arange(2048) * 10.0}).rio.write_crs("EPSG:32633")
    lazy = darr.random.default_rng(0).standard_normal((4, 2048, 2048), chunks=(1, tile, tile), dtype=np.float32)
    synth = xr.DataArray(lazy, dims=("sample", "y", "x"), coords={"y": scene.y, "x": scene.x}).rio.write_crs("EPSG:32633")
    total = 4 * 2048 * 2048 * 4
    for writer, name in [(geodiff.to_geotiff, "big.tif"), (geodiff.to_netcdf, "big.nc"), (geodiff.to_zarr, "big.zarr")]:
        tracemalloc.start()
        writer(synth, tmp_path / name)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < total / 4, f"{name}: peak {peak / 2**20:.0f} MiB of a {total / 2**20:.0f} MiB stack"


def test_samples_times_bands_become_described_geotiff_bands(tmp_path):
    values = np.arange(2 * 2 * 4 * 5, dtype="float32").reshape(2, 2, 4, 5)
    synth = xr.DataArray(values, dims=("sample", "band", "y", "x"),
                         coords={"band": ["VV", "VH"], "y": 100.0 - 10 * np.arange(4), "x": 10.0 * np.arange(5)})
    path, = geodiff.to_geotiff(synth.rio.write_crs("EPSG:32633"), tmp_path / "dual.tif")
    with rasterio.open(path) as src:
        assert src.descriptions == ("sample=0 VV", "sample=0 VH", "sample=1 VV", "sample=1 VH")
        np.testing.assert_array_equal(src.read(3), values[1, 0])


def test_zarr_takes_irregular_dask_chunks(stack, tmp_path):
    """Nearly equal blocks (fused scenes: 234, 233, 233) are rechunked so no Zarr chunk is shared."""
    irregular = stack.chunk({"y": (22, 21, 17), "x": (34, 33, 33)})
    store = geodiff.to_zarr(irregular, tmp_path / "i.zarr", progress=False)
    back = xr.open_zarr(store)["data"]
    assert back.encoding["chunks"] == (1, 22, 34)
    np.testing.assert_array_equal(back.values, stack.values)
