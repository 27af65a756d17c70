"""Semivariogram and power-spectrum metrics against brute-force pair sums and analytic spectra."""

import warnings

import numpy as np
import pytest
from scipy import ndimage, stats
from scipy.spatial.distance import pdist

from geodiff.errors import GeodiffError
from geodiff.metrics.structure import psd_log_ratio, radial_psd, variogram_score


def _brute_gamma(tile: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Matheron semivariogram of one tile by an explicit loop over pixel pairs (scipy's pdist)."""
    yy, xx = np.nonzero(np.isfinite(tile))
    z = tile[yy, xx][:, None]
    dist = pdist(np.column_stack([yy, xx]).astype(float))
    sq = pdist(z, "sqeuclidean")
    idx = np.digitize(dist, edges) - 1  # half-open [lo, hi)
    gamma = np.full(len(edges) - 1, np.nan)
    for b in range(len(edges) - 1):
        if (idx == b).any():
            gamma[b] = sq[idx == b].sum() / (2 * (idx == b).sum())
    return gamma


def _brute_score(real, synth, edges):
    gr = np.array([_brute_gamma(t, edges) for t in real])
    gs = np.array([_brute_gamma(t, edges) for t in synth])
    with warnings.catch_warnings():  # lags without pairs are all-NaN columns
        warnings.simplefilter("ignore", RuntimeWarning)
        mr, ms = np.nanmean(gr, axis=0), np.nanmean(gs, axis=0)
        lo, hi = np.nanpercentile(gr, [2.5, 97.5], axis=0)
    ok = np.isfinite(mr) & np.isfinite(ms)
    inside = (ms[ok] >= lo[ok]) & (ms[ok] <= hi[ok])
    return np.sqrt(np.mean(np.log(ms[ok] / mr[ok]) ** 2)), inside.mean()


def test_variogram_score_matches_a_brute_force_pair_loop():
    rng = np.random.default_rng(1)
    real = ndimage.gaussian_filter(rng.normal(size=(7, 10, 10)), (0, 1.5, 1.5))
    synth = 0.5 * ndimage.gaussian_filter(rng.normal(size=(5, 10, 10)), (0, 0.8, 0.8)) + 4.0
    real[0, :3, :4] = np.nan
    synth[2, 5:, 5:] = np.nan
    score = variogram_score(real, synth, bins=8)
    rms, frac = _brute_score(real, synth, np.linspace(0, 5, 9))
    assert score.rms_log_ratio == pytest.approx(rms, rel=1e-9)
    assert score.fraction_in_band == pytest.approx(frac)
    assert 0 < frac < 1  # the case exercises both sides of the band


def test_variogram_score_of_scaled_tiles_is_the_log_of_the_squared_factor():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 16, 16))
    same = variogram_score(x, x + 10.0)  # an offset leaves every difference unchanged
    assert same.rms_log_ratio == pytest.approx(0.0, abs=1e-9) and same.fraction_in_band == 1.0
    scaled = variogram_score(x, 3.0 * x)
    assert scaled.rms_log_ratio == pytest.approx(np.log(9.0)) and scaled.fraction_in_band == 0.0


def test_variogram_score_is_per_band():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 2, 12, 12))
    y = x.copy()
    y[:, 1] *= 2.0
    score = variogram_score(x, y, bins=6)
    assert score.rms_log_ratio == pytest.approx((0.0, np.log(4.0)), abs=1e-9)
    assert score.fraction_in_band == (1.0, 0.0)


def test_variogram_score_needs_two_tiles_for_a_band():
    x = np.random.default_rng(0).normal(size=(5, 8, 8))
    with pytest.raises(GeodiffError, match=r"at least 2 \(a 95 % band"):
        variogram_score(x[:1], x)


@pytest.mark.parametrize("shape", [(32, 32), (16, 48)])
def test_white_noise_has_a_flat_spectrum_at_its_variance_despite_gaps(shape):
    rng = np.random.default_rng(4)
    x = 3.0 * rng.normal(size=(300, *shape))
    x[rng.random(x.shape) < 0.2] = np.nan
    freq, psd = radial_psd(x)
    side = min(shape)
    assert freq[0] == pytest.approx(1 / side) and freq[-1] == pytest.approx(0.5)
    assert psd.shape == (1, side // 2)
    np.testing.assert_allclose(psd[0], 9.0, rtol=0.08)


def test_radial_psd_of_gaussian_filtered_noise_is_the_squared_filter_response():
    sigma, n = 2.0, 32
    rng = np.random.default_rng(5)
    x = ndimage.gaussian_filter(rng.normal(size=(400, n, n)), (0, sigma, sigma), mode="wrap")
    freq, psd = radial_psd(x)
    # The continuous Gaussian's transfer function exp(-2 pi^2 sigma^2 f^2), squared, averaged
    # over each annulus of the DFT grid with scipy's binned statistic.
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    f = np.hypot(fy, fx).ravel()
    edges = np.append(freq - 0.5 / n, freq[-1] + 0.5 / n)
    expected = stats.binned_statistic(
        f, np.exp(-4 * np.pi**2 * sigma**2 * f**2), "mean", bins=edges
    ).statistic
    low = (
        freq <= 0.2
    )  # above, the spectrum is < 1e-3 of its peak and truncation of the kernel shows
    np.testing.assert_allclose(psd[0, low], expected[low], rtol=0.12)


def test_psd_log_ratio_white_against_white_is_near_zero_and_against_smooth_large():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(2, 200, 32, 32))
    assert psd_log_ratio(a, b) < 0.03
    smooth = ndimage.gaussian_filter(b, (0, 1.5, 1.5))
    smooth /= smooth.std()  # same variance: only the shape of the spectrum differs
    assert psd_log_ratio(a, smooth) > 1.0


def test_psd_log_ratio_of_a_scaled_set_is_the_log_of_the_power_factor_per_band():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(10, 2, 16, 16))
    y = x.copy()
    y[:, 1] *= 2.0
    assert psd_log_ratio(x, y) == pytest.approx((0.0, np.log10(4.0)), abs=1e-12)


def test_tiles_with_too_many_gaps_are_left_out():
    rng = np.random.default_rng(8)
    clean = rng.normal(size=(6, 16, 16))
    gappy = 100.0 * rng.normal(size=(4, 16, 16))
    gappy[:, :6] = np.nan  # 37.5 % nodata
    _, psd_all = radial_psd(np.concatenate([clean, gappy]))
    _, psd_clean = radial_psd(clean)
    np.testing.assert_allclose(psd_all, psd_clean)
    with pytest.raises(GeodiffError, match=r"more than 25% nodata.*raise max_nodata"):
        psd_log_ratio(clean, gappy)
    assert np.isfinite(psd_log_ratio(clean, gappy, max_nodata=0.5))


def test_a_constant_synthetic_set_is_infinitely_far():
    x = np.random.default_rng(9).normal(size=(4, 16, 16))
    assert psd_log_ratio(x, np.ones_like(x)) == np.inf
    assert psd_log_ratio(np.ones_like(x), np.full_like(x, 2.0)) == 0.0
