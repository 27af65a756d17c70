"""Ensemble bands, bootstrap intervals, real-vs-synthetic scores and figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import scipy.stats
import xarray as xr

from geodiff.errors import GeodiffError, SceneError
from geodiff.geostats import compare, ensemble, plot, semivariogram
from geodiff.geostats.fields import gaussian_random_field
from geodiff.geostats.models import Exponential


def _tiles(n, seed, scale=1.0, std=1.0):
    f = gaussian_random_field(
        (32, 32), Exponential(std**2, 3.0 * scale), size=n, seed=seed, padding=4
    )
    f[:, :3, :3] = np.nan
    coords = {"y": 4000.0 - 30.0 * np.arange(32), "x": 500.0 + 30.0 * np.arange(32)}
    return xr.DataArray(f, dims=("sample", "y", "x"), coords=coords).rio.write_crs("EPSG:32611")


def test_ensemble_band_and_mean_match_numpy():
    ds = semivariogram(_tiles(40, 0), bins=8)
    g = ds.gamma.values.copy()
    g[3, 2] = np.nan  # a member without a value in one bin
    ds["gamma"] = ds.gamma.copy(data=g)
    e = ensemble(ds, level=0.9, seed=1)
    np.testing.assert_allclose(e["mean"].values, np.nanmean(g, axis=0), rtol=1e-13)
    np.testing.assert_allclose(e["std"].values, np.nanstd(g, axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(e["lower"].values, np.nanpercentile(g, 5, axis=0), rtol=1e-13)
    np.testing.assert_allclose(e["upper"].values, np.nanpercentile(g, 95, axis=0), rtol=1e-13)
    assert e["count"].values[2] == 39 and e["count"].values[0] == 40


def test_bootstrap_interval_matches_scipy():
    ds = semivariogram(_tiles(60, 4), bins=6)
    e = ensemble(ds, n_boot=4000, seed=2)
    for k in (0, 3, 5):
        x = ds.gamma.values[:, k]
        ref = scipy.stats.bootstrap(
            (x,), np.mean, n_resamples=4000, method="percentile", random_state=3
        ).confidence_interval
        width = ref.high - ref.low
        assert abs(e["ci_lower"].values[k] - ref.low) < 0.1 * width
        assert abs(e["ci_upper"].values[k] - ref.high) < 0.1 * width


def test_compare_scores_against_closed_forms():
    real = _tiles(50, 10)
    same = _tiles(50, 11)
    c = compare(real, same, bins=10, seed=0)
    assert float(c.fraction_in_band) == 1.0
    assert float(c.rms_log_ratio) < 0.1
    assert np.all(np.abs(c.z.values) < 1.0)
    # Halving the amplitude quarters every semivariance: log-ratio exactly log(1/4) at each lag.
    weak = compare(real, real * 0.5, bins=10, seed=0)
    assert float(weak.rms_log_ratio) == pytest.approx(np.log(4.0), rel=1e-12)
    assert np.all(weak.z.values < 0)
    assert float(weak.fraction_in_band) < 0.5
    assert weak.attrs["n_real"] == 50 and weak.attrs["band_from"] == "real"


def test_compare_single_real_scene_uses_synthetic_band():
    real = _tiles(1, 20).isel(sample=0)
    c = compare(real, _tiles(30, 21), seed=0)
    assert c.attrs["band_from"] == "synthetic" and c.attrs["n_real"] == 1
    assert float(c.fraction_in_band) > 0.5
    rv = semivariogram(real)
    with pytest.raises(GeodiffError, match="different lag bins"):
        compare(rv, semivariogram(_tiles(3, 1), bins=3))


def test_plot_returns_figure_for_each_kind():
    real, syn = _tiles(10, 0), _tiles(10, 1)
    c = compare(real, syn, bins=6)
    _fig, ax = plot(c)
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    assert ax.get_xlabel().startswith("lag")
    _fig2, ax2 = plot(ensemble(semivariogram(real, bins=6)))
    assert len(ax2.collections) == 2
    _fig3, ax3 = plot(semivariogram(real, bins=6))
    assert len(ax3.lines) == 10
    import matplotlib.pyplot as plt

    _, axis = plt.subplots()
    assert plot(c, ax=axis)[1] is axis
    plt.close("all")


def _with_units(da, units):
    return da.assign_attrs(units=units)


def test_compare_refuses_different_data_units():
    real, synth = _with_units(_tiles(3, 0), "mm/yr"), _with_units(_tiles(3, 1), "radian")
    for r, s in ((real, synth), (semivariogram(real, bins=4), semivariogram(synth, bins=4))):
        with pytest.raises(SceneError, match=r"'mm/yr' but synthetic data in 'radian'"):
            compare(r, s)
    # Units missing on one side, or the same on both: compared as before.
    assert compare(real, _tiles(3, 1), bins=4).sizes["lag"] == 4
    assert compare(real, _with_units(_tiles(3, 1), "mm/yr"), bins=4).sizes["lag"] == 4


def test_compare_refuses_different_grids():
    real = _tiles(3, 0)
    coarse = _tiles(3, 1)
    coarse = coarse.assign_coords(y=4000.0 - 60.0 * np.arange(32), x=500.0 + 60.0 * np.arange(32))
    with pytest.raises(SceneError, match=r"real pixels are 30 x 30 metre .* synthetic pixels 60 x"):
        compare(real, coarse)
    # Same steps in another UTM zone: metres of different maps.
    other_zone = _tiles(3, 1).rio.write_crs("EPSG:32612")
    with pytest.raises(SceneError, match="CRS .*UTM zone 11N.* UTM zone 12N"):
        compare(real, other_zone)
    with pytest.raises(SceneError, match="CRS"):
        compare(semivariogram(real, bins=4), semivariogram(other_zone, bins=4))
    # No CRS: pixels against metres.
    with pytest.raises(SceneError, match="lags are in 'metre' but synthetic lags in 'pixel'"):
        compare(real, xr.DataArray(_tiles(3, 1).values, dims=("sample", "y", "x")))
    # Within 1 %: the same grid.
    close = _tiles(3, 1).assign_coords(x=500.0 + 30.1 * np.arange(32))
    assert compare(real, close, bins=4).sizes["lag"] == 4
