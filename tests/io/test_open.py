"""open_scene / open_stack on every kind of real product, checked against rasterio's own reads."""

import glob
import re
import warnings

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr

import geodiff
from geodiff.errors import SceneError
from geodiff.io import GeoreferenceWarning
from geodiff.io.scene import InfiniteValueWarning


def _raw(path):
    with rasterio.open(path) as src:
        return src.read(1), src.nodata, src.transform, src.crs


def test_licsbas_velocity(campi_flegrei):
    path = campi_flegrei / "vel.tif"
    da = geodiff.open_scene(path)
    raw, nodata, transform, crs = _raw(path)
    assert da.dims == ("y", "x") and da.dtype == np.float32
    assert da.attrs["units"] == "mm/yr"
    assert np.isnan(da.encoding["_FillValue"])
    assert da.rio.crs == crs and da.rio.transform() == transform
    assert "spatial_ref" in da.coords
    np.testing.assert_array_equal(da.values, raw)
    assert da.chunks is not None  # lazy


def test_pyrate_interferogram_zero_nodata(mexico_city_a):
    path = mexico_city_a / "cropA_20180106-20180130_VV_8rlks_eqa_unw.tif"
    da = geodiff.open_scene(path)
    raw, nodata, _, _ = _raw(path)
    assert nodata == 0
    assert da.encoding["_FillValue"] == 0
    assert da.attrs["units"] == "rad"
    np.testing.assert_array_equal(np.isnan(da.values), raw == 0)
    np.testing.assert_array_equal(da.values[raw != 0], raw[raw != 0])


def test_nodata_override_for_header_that_says_nan(mexico_city_b):
    path = mexico_city_b / "20180106-20180130_ifg.tif"
    raw, nodata, _, _ = _raw(path)
    assert np.isnan(nodata) and (raw == 0).any()
    da = geodiff.open_scene(path, nodata=0)
    np.testing.assert_array_equal(np.isnan(da.values), (raw == 0) | np.isnan(raw))
    assert da.encoding["_FillValue"] == 0


def test_integer_dem_with_integer_nodata(mexico_city_a):
    da = geodiff.open_scene(mexico_city_a / "cropA_T005A_dem.tif")
    raw, nodata, _, _ = _raw(mexico_city_a / "cropA_T005A_dem.tif")
    assert raw.dtype == np.int16 and nodata == 0
    assert da.dtype == np.float32 and da.encoding["dtype"] == "int16"
    np.testing.assert_array_equal(da.values, np.where(raw == 0, np.nan, raw))


def test_opera_rtc_backscatter(opera_rtc):
    path = sorted(glob.glob(str(opera_rtc / "2021-11-19" / "*IW1*_VV.tif")))[0]
    da = geodiff.open_scene(path, units="1")
    raw, _, transform, crs = _raw(path)
    assert crs.to_epsg() == 32611 and da.rio.crs.to_epsg() == 32611
    assert da.rio.resolution() == (30.0, -30.0)
    np.testing.assert_array_equal(da.values, raw)
    assert da.attrs["units"] == "1"


def test_bigearthnet_two_polarisations_as_bands(bigearthnet):
    vv = sorted(bigearthnet.rglob("*_VV.tif"))[0]
    vh = vv.with_name(vv.name.replace("_VV", "_VH"))
    ds = xr.Dataset({"VV": geodiff.open_scene(vv, chunks=None), "VH": geodiff.open_scene(vh, chunks=None)})
    da = geodiff.open_scene(ds, units="dB")
    assert da.dims == ("band", "y", "x") and list(da["band"].values) == ["VV", "VH"]
    np.testing.assert_array_equal(da.sel(band="VH").values, _raw(vh)[0])
    assert da.rio.crs.to_epsg() == _raw(vv)[3].to_epsg()
    assert geodiff.open_scene(ds, band="VV").attrs["band_name"] == "VV"


def test_stack_of_interferograms(mexico_city_a):
    paths = sorted(mexico_city_a.glob("*_unw.tif"))
    stack = geodiff.open_stack(paths)
    assert stack.dims == ("time", "y", "x") and stack.sizes["time"] == 30
    assert stack.rio.crs.to_epsg() == 4326
    np.testing.assert_array_equal(np.isnan(stack.isel(time=7).values), _raw(paths[7])[0] == 0)
    assert stack["time"].values[0] == paths[0].stem


def test_stack_of_one_burst_over_dates(opera_rtc):
    paths = sorted(glob.glob(str(opera_rtc / "*" / "*T137-292318-IW1*_VV.tif")))
    dates = [p.split("/")[-2] for p in paths]
    stack = geodiff.open_stack(paths, coords=np.array(dates, dtype="datetime64[ns]"))
    assert stack.sizes["time"] == 21 and stack["time"].dtype.kind == "M"


def test_stack_refuses_different_grids(mexico_city_a, mexico_city_b):
    with pytest.raises(SceneError, match="not one grid"):
        geodiff.open_stack([next(mexico_city_a.glob("*_unw.tif")), mexico_city_b / "20180106-20180130_ifg.tif"])


def _scene(tmp_path=None, *, y_desc=True, crs="EPSG:32633"):
    y = 1000.0 + 30.0 * np.arange(8)[::-1 if y_desc else 1]
    da = xr.DataArray(np.arange(48, dtype="float32").reshape(8, 6), dims=("y", "x"),
                      coords={"y": y, "x": 500.0 + 30.0 * np.arange(6)}, attrs={"units": "mm"})
    return da.rio.write_crs(crs) if crs else da


def test_netcdf_and_zarr_sources_keep_the_crs(tmp_path):
    da = _scene()
    da.encoding["_FillValue"] = -9999.0
    da.to_dataset(name="vel").to_netcdf(tmp_path / "s.nc")
    da.to_dataset(name="vel").to_zarr(tmp_path / "s.zarr")
    for source in (tmp_path / "s.nc", tmp_path / "s.zarr"):
        out = geodiff.open_scene(source)
        assert out.rio.crs.to_epsg() == 32633
        assert out.attrs["units"] == "mm"
        np.testing.assert_array_equal(out.values, da.values)


def test_y_increasing_is_turned_north_up():
    south_up = _scene(y_desc=False)
    out = geodiff.open_scene(south_up)
    assert out["y"].values[0] > out["y"].values[-1]
    np.testing.assert_array_equal(out.values, south_up.values[::-1])
    assert out.rio.transform().e < 0


def test_missing_crs_warns_and_keeps_coordinates():
    with pytest.warns(GeoreferenceWarning, match="no CRS"):
        out = geodiff.open_scene(_scene(crs=None))
    assert out.rio.crs is None and out["x"].values[0] == 500.0
    with pytest.warns(GeoreferenceWarning):
        bare = geodiff.open_scene(xr.DataArray(np.ones((4, 5)), dims=("y", "x")))
    np.testing.assert_array_equal(bare["x"].values, np.arange(5))


def test_bad_inputs_have_clear_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        geodiff.open_scene(tmp_path / "absent.tif")
    (tmp_path / "notes.tif").write_text("not a raster")
    with pytest.raises(SceneError, match="not a raster"):
        geodiff.open_scene(tmp_path / "notes.tif")
    (tmp_path / "dir").mkdir()
    with pytest.raises(SceneError, match="not a Zarr store"):
        geodiff.open_scene(tmp_path / "dir")
    cube = xr.DataArray(np.zeros((3, 4, 5)), dims=("time", "y", "x"))
    with pytest.raises(SceneError, match="extra dimension.*time=3"), warnings.catch_warnings():
        warnings.simplefilter("ignore", GeoreferenceWarning)
        geodiff.open_scene(cube)
    with pytest.raises(SceneError, match="needs spatial dims"):
        geodiff.open_scene(xr.DataArray(np.zeros((4, 5)), dims=("a", "b")))


def test_band_descriptions_become_names(tmp_path):
    path = tmp_path / "two.tif"
    profile = dict(driver="GTiff", width=6, height=5, count=2, dtype="float32", crs="EPSG:32611",
                   transform=rasterio.transform.from_origin(0, 150, 30, 30), nodata=-1)
    data = np.arange(60, dtype="float32").reshape(2, 5, 6)
    data[0, 0, 0] = -1
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("VV", "VH")
    da = geodiff.open_scene(path)
    assert list(da["band"].values) == ["VV", "VH"]
    assert np.isnan(da.values[0, 0, 0]) and da.encoding["_FillValue"] == -1
    np.testing.assert_array_equal(geodiff.open_scene(path, band="VH").values, data[1])
    assert geodiff.open_scene(path, band=["VH", "VV"]).sizes["band"] == 2
    with pytest.raises(SceneError, match="not in the scene"):
        geodiff.open_scene(path, band="HH")


def _infinite_scene(tmp_path):
    values = np.random.default_rng(3).normal(size=(20, 30)).astype("float32")
    values[2, 3], values[15, 25], values[19, 0] = np.inf, -np.inf, np.inf
    profile = {"driver": "GTiff", "width": 30, "height": 20, "count": 1, "dtype": "float32",
               "crs": "EPSG:32611", "transform": rasterio.transform.from_origin(0, 600, 30, 30)}
    with rasterio.open(tmp_path / "inf.tif", "w", **profile) as dst:
        dst.write(values, 1)
    return tmp_path / "inf.tif", values


def test_infinite_pixels_are_nodata_counted_lazily(tmp_path):
    path, raw = _infinite_scene(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InfiniteValueWarning)
        da = geodiff.open_scene(path, chunks=8)  # lazy: nothing is read, nothing warned yet
    assert da.chunks is not None
    with pytest.warns(InfiniteValueWarning) as caught:
        values = da.values
    counted = sum(int(re.match(r"(\d+) infinite", str(w.message)).group(1)) for w in caught)
    assert counted == np.isinf(raw).sum()
    np.testing.assert_array_equal(np.isnan(values), np.isinf(raw))
    np.testing.assert_array_equal(values[np.isfinite(raw)], raw[np.isfinite(raw)])


def test_infinite_pixels_of_an_eager_scene_are_counted_at_once(tmp_path):
    path, raw = _infinite_scene(tmp_path)
    with pytest.warns(InfiniteValueWarning, match=f"^{np.isinf(raw).sum()} infinite pixel"):
        da = geodiff.open_scene(path, chunks=None)
    assert np.isnan(da.values).sum() == np.isinf(raw).sum()
    assert float(da.min()) == raw[np.isfinite(raw)].min()
