"""``geodiff info`` on geodiff's own (sample, y, x) NetCDF and Zarr exports, checked against the
formats' own readers."""

import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

import geodiff
from geodiff.cli import main


@pytest.fixture
def synth():
    values = np.random.default_rng(4).normal(3.0, 2.0, (3, 12, 20)).astype("float32")
    values[:, :3, :4] = np.nan
    stack = xr.DataArray(values, dims=("sample", "y", "x"), attrs={"units": "rad"},
                         coords={"sample": np.arange(3), "y": 4.2e6 - 30.0 * np.arange(12),
                                 "x": 5.0e5 + 30.0 * np.arange(20)})
    stack = stack.rio.write_crs("EPSG:32611").chunk({"sample": 1})
    stack.encoding["_FillValue"] = 0.0  # as a PyRate interferogram's samples carry it
    return stack


def _netcdf_values(path):
    with netCDF4.Dataset(path) as nc:
        var = nc["data"]
        var.set_auto_mask(False)
        return var[:], var.getncattr("_FillValue"), var.getncattr("units")


def _zarr_values(path):
    array = zarr.open_group(str(path), mode="r")["data"]
    return array[:], array.fill_value, array.attrs["units"]


@pytest.mark.parametrize("writer,name,read", [(geodiff.to_netcdf, "synth.nc", _netcdf_values),
                                              (geodiff.to_zarr, "synth.zarr", _zarr_values)])
def test_info_describes_geodiff_stacks(synth, tmp_path, capsys, writer, name, read):
    path = writer(synth, tmp_path / name, progress=False)
    raw, fill, units = read(path)
    valid = raw[raw != fill]
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "'sample': 3, 'y': 12, 'x': 20" in out
    assert f"units {units}" in out and "EPSG:32611" in out
    assert f"nodata {fill}" in out
    assert f"valid pixels {valid.size / raw.size:.1%}" in out
    assert f"range {valid.min():.4g} .. {valid.max():.4g}" in out
