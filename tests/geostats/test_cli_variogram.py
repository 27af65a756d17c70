"""The ``geodiff variogram`` command on a real scene, alone and against synthetic samples."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import rioxarray
import xarray as xr

from geodiff.cli import main
from geodiff.geostats import Exponential, gaussian_random_field, semivariogram


def _scene(path):
    return rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)


def test_variogram_command_writes_exact_curve_and_figure(campi_flegrei, tmp_path, capsys):
    src = campi_flegrei / "vel.tif"
    out, png = tmp_path / "v.nc", tmp_path / "v.png"
    assert (
        main(
            [
                "variogram",
                str(src),
                "--bins",
                "10",
                "--out",
                str(out),
                "--plot",
                str(png),
                "--fit",
                "gaussian",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "geodesic" in text and "FitResult(Gaussian" in text
    written = xr.open_dataset(out)
    ref = semivariogram(_scene(src), bins=10)
    np.testing.assert_array_equal(written.npairs.values, ref.npairs.values)
    np.testing.assert_allclose(written.gamma.values, ref.gamma.values, rtol=1e-12)
    assert png.stat().st_size > 10_000


def test_variogram_command_compare(campi_flegrei, tmp_path, capsys):
    src = campi_flegrei / "vel.tif"
    da = _scene(src)
    f = gaussian_random_field(da.shape, Exponential(100.0, 20.0), size=6, seed=0, padding=4)
    synth = xr.DataArray(
        f, dims=("sample", "y", "x"), coords={"y": da.y, "x": da.x}, name="velocity"
    )
    synth.rio.write_crs(da.rio.crs).to_dataset().to_netcdf(tmp_path / "synth.nc")
    out = tmp_path / "c.nc"
    args = [
        "variogram",
        str(src),
        "--compare",
        str(tmp_path / "synth.nc"),
        "--bins",
        "8",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert "RMS log-ratio" in capsys.readouterr().out
    c = xr.open_dataset(out)
    assert c.attrs["n_synthetic"] == 6 and c.sizes["lag"] == 8
    np.testing.assert_allclose(
        c.real_mean.values, semivariogram(da, bins=8).gamma.values, rtol=1e-12
    )


def _write_synthetic(da, path, units, stride=1):
    """Six Gaussian-field samples on ``da``'s grid (every ``stride``-th pixel), in ``units``."""
    grid = da.isel(y=slice(None, None, stride), x=slice(None, None, stride))
    f = gaussian_random_field(grid.shape, Exponential(100.0, 20.0), size=6, seed=0, padding=4)
    synth = xr.DataArray(
        f, dims=("sample", "y", "x"), coords={"y": grid.y, "x": grid.x}, name="synthetic"
    )
    synth.attrs["units"] = units
    synth.rio.write_crs(da.rio.crs).to_dataset().to_netcdf(path)


def test_variogram_command_refuses_other_units_and_grids(campi_flegrei, tmp_path, capsys):
    src = campi_flegrei / "vel.tif"
    da = _scene(src)
    assert da.attrs["units"] == "mm/yr"
    out = tmp_path / "c.nc"
    # Every other pixel: another grid; in radians, another unit as well (reported first).
    for i, (units, said) in enumerate((("radian", "'radian'"), ("mm/yr", "synthetic pixels"))):
        path = tmp_path / f"synth-{i}.nc"
        _write_synthetic(da, path, units, stride=2)
        assert main(["variogram", str(src), "--compare", str(path), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert said in captured.err and len(captured.err.strip().splitlines()) == 1
        assert not out.exists()


def test_variogram_command_warns_in_one_line_near_a_pole(tmp_path, capsys):
    # 0.64 degrees below 80 N: one pixel size misstates the lags at the scene's edges.
    lat = 80.0 - 0.005 - 0.01 * np.arange(64)
    lon = 10.005 + 0.01 * np.arange(64)
    z = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    da = xr.DataArray(z, dims=("y", "x"), coords={"y": lat, "x": lon}).rio.write_crs(4326)
    da.rio.to_raster(tmp_path / "polar.tif")
    out = tmp_path / "v.nc"
    assert (
        main(["variogram", str(tmp_path / "polar.tif"), "--bins", "4", "--out", str(out)]) == 0
    )
    err = capsys.readouterr().err.strip().splitlines()
    warned = [line for line in err if "SpacingWarning" in line or "warning:" in line]
    assert len(warned) == 1 and "reproject" in warned[0]
    written = xr.open_dataset(out)
    assert written.attrs["spacing_warning"] in warned[0]
    assert written.attrs["spacing_max_relative_error"] > 0.01


def test_variogram_command_reports_bad_input(tmp_path, capsys):
    assert main(["variogram", str(tmp_path / "missing.tif")]) == 2
    assert "error" in capsys.readouterr().err
