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
                "--output",
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
        "--output",
        str(out),
    ]
    assert main(args) == 0
    assert "RMS log-ratio" in capsys.readouterr().out
    c = xr.open_dataset(out)
    assert c.attrs["n_synthetic"] == 6 and c.sizes["lag"] == 8
    np.testing.assert_allclose(
        c.real_mean.values, semivariogram(da, bins=8).gamma.values, rtol=1e-12
    )


def test_variogram_command_reports_bad_input(tmp_path, capsys):
    assert main(["variogram", str(tmp_path / "missing.tif")]) == 2
    assert "error" in capsys.readouterr().err
