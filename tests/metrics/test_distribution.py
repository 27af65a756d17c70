"""Per-tile spread and pixel-value distances against analytic cases and direct computations."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from geodiff.errors import GeodiffError
from geodiff.metrics.distribution import pixel_wasserstein, tile_statistics


def _checkerboards(amplitudes, size=6, offset=0.0):
    """Tiles of +-a in a checkerboard: std exactly a, range exactly 2a."""
    sign = np.where(np.add.outer(np.arange(size), np.arange(size)) % 2 == 0, 1.0, -1.0)
    return np.asarray(amplitudes, dtype=float)[:, None, None] * sign + offset


def test_tile_statistics_of_known_stds_and_ranges():
    real = _checkerboards(np.arange(1, 11))  # stds 1..10, median 5.5
    synth = _checkerboards(np.arange(6, 16), offset=100.0)  # stds 6..15, median 10.5
    got = tile_statistics(real, synth)
    assert got.std_ratio == pytest.approx(10.5 / 5.5)
    assert got.range_ratio == pytest.approx(10.5 / 5.5)
    assert got.std_ks == pytest.approx(0.5)  # the ECDFs are 5 of 10 steps apart at most
    assert got.range_ks == pytest.approx(0.5)


def test_tile_statistics_of_an_offset_set_is_neutral_and_of_a_scaled_set_disjoint():
    x = (
        np.random.default_rng(0).integers(-50, 50, size=(30, 8, 8)).astype(float)
    )  # exact arithmetic
    same = tile_statistics(x, x - 7.0)
    assert (same.std_ratio, same.range_ratio) == (pytest.approx(1.0), pytest.approx(1.0))
    assert same.std_ks == pytest.approx(0.0, abs=1e-12) and same.range_ks == pytest.approx(
        0.0, abs=1e-12
    )
    wide = tile_statistics(x, 100.0 * x)
    assert wide.std_ratio == pytest.approx(100.0) and wide.std_ks == 1.0 and wide.range_ks == 1.0


def test_tile_statistics_match_a_per_tile_loop_with_gaps_and_bands():
    rng = np.random.default_rng(1)
    real, synth = rng.gamma(2.0, size=(12, 2, 9, 9)), rng.normal(size=(9, 2, 9, 9))
    real[rng.random(real.shape) < 0.3] = np.nan
    got = tile_statistics(real, synth)

    def loop(tiles, band, f):
        return np.array([f(t[band][np.isfinite(t[band])]) for t in tiles])

    for band in range(2):
        rs, ss = loop(real, band, np.std), loop(synth, band, np.std)
        rr, sr = loop(real, band, np.ptp), loop(synth, band, np.ptp)
        assert got.std_ratio[band] == pytest.approx(np.median(ss) / np.median(rs))
        assert got.range_ratio[band] == pytest.approx(np.median(sr) / np.median(rr))
        assert got.std_ks[band] == pytest.approx(stats.ks_2samp(ss, rs).statistic)
        assert got.range_ks[band] == pytest.approx(stats.ks_2samp(sr, rr).statistic)


def test_tile_statistics_need_two_tiles():
    x = np.ones((3, 4, 4))
    with pytest.raises(GeodiffError, match="at least 2"):
        tile_statistics(x[:1], x)


def test_wasserstein_of_a_shifted_set_is_the_shift():
    x = np.random.default_rng(2).normal(size=(5, 8, 8))
    assert pixel_wasserstein(x, x + 2.5) == pytest.approx(2.5)
    assert pixel_wasserstein(x, x) == 0.0


def test_wasserstein_equals_the_mean_gap_of_sorted_values_and_skips_nan():
    rng = np.random.default_rng(3)
    real, synth = rng.normal(size=(4, 8, 8)), rng.exponential(size=(4, 8, 8))
    real[0, :2] = np.nan
    synth[1, :2] = np.nan  # as many gaps: equal counts, so W1 = mean |sorted a - sorted b|
    expected = np.mean(
        np.abs(np.sort(real[np.isfinite(real)]) - np.sort(synth[np.isfinite(synth)]))
    )
    assert pixel_wasserstein(real, synth) == pytest.approx(expected)


def test_wasserstein_of_two_normals_is_the_scale_gap_times_mean_abs_normal():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, size=(50, 32, 32)), rng.normal(0, 3, size=(50, 32, 32))
    assert pixel_wasserstein(a, b) == pytest.approx(2.0 * np.sqrt(2 / np.pi), rel=0.02)


def test_wasserstein_is_per_band_in_physical_units():
    x = xr.DataArray(
        np.random.default_rng(5).normal(size=(3, 2, 6, 6)),
        dims=("sample", "band", "y", "x"),
        attrs={"units": "dB"},
    )
    y = x.copy()
    y[:, 1] += 4.0
    assert pixel_wasserstein(x, y) == pytest.approx((0.0, 4.0))
    with pytest.raises(GeodiffError, match="convert one"):
        pixel_wasserstein(x, y.assign_attrs(units="linear"))
