"""Turbulent and stratified atmosphere: spectral slope, covariance model, linearity in the DEM."""

from __future__ import annotations

import numpy as np
import pytest

from geodiff.errors import GeodiffError
from geodiff.synth import stratified, turbulent


def _psd_slope(fields: np.ndarray, spacing: float) -> float:
    """Log-log slope of the radially averaged, Hann-windowed periodogram between 4/N and 1/4 cycles per pixel."""
    n = fields.shape[-1]
    w = np.hanning(n)[:, None] * np.hanning(n)[None, :]
    spec = (np.abs(np.fft.fft2((fields - fields.mean(axis=(-2, -1), keepdims=True)) * w)) ** 2).mean(axis=0)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n, spacing), np.fft.fftfreq(n, spacing)))
    edges = np.geomspace(4 / (n * spacing), 0.25 / spacing, 16)
    idx = np.digitize(k.ravel(), edges)
    kc = np.array([k.ravel()[idx == i].mean() for i in range(1, len(edges))])
    pc = np.array([spec.ravel()[idx == i].mean() for i in range(1, len(edges))])
    return float(np.polyfit(np.log(kc), np.log(pc), 1)[0])


@pytest.mark.parametrize("exponent", [5 / 3, 8 / 3, 11 / 3])
def test_power_law_screen_has_requested_spectral_slope(exponent):
    f = turbulent((256, 256), std=3.0, exponent=exponent, spacing=(100.0, 100.0), size=12, seed=3)
    assert f.shape == (12, 256, 256)
    assert -_psd_slope(f, 100.0) == pytest.approx(exponent, abs=0.1)
    np.testing.assert_allclose(f.std(axis=(-2, -1)), 3.0, rtol=1e-10)


def test_exponential_screen_variogram_matches_model():
    std, length, dx = 4.0, 1000.0, 100.0
    f = turbulent((64, 64), std=std, model="exponential", correlation_length=length, spacing=(dx, dx), size=96, seed=5)
    lags = np.array([1, 2, 4, 8, 16])
    gamma = np.array(
        [0.25 * (np.mean((f[:, :, h:] - f[:, :, :-h]) ** 2) + np.mean((f[:, h:, :] - f[:, :-h, :]) ** 2)) for h in lags]
    )
    model = std**2 * (1 - np.exp(-lags * dx / length))
    np.testing.assert_allclose(gamma, model, rtol=0.08)
    assert f.var() == pytest.approx(std**2, rel=0.1)


def test_same_seed_same_screen_and_errors():
    a = turbulent((32, 40), std=1.0, seed=9)
    np.testing.assert_array_equal(a, turbulent((32, 40), std=1.0, seed=9))
    assert not np.allclose(a, turbulent((32, 40), std=1.0, seed=10))
    with pytest.raises(GeodiffError, match="correlation_length"):
        turbulent((8, 8), model="exponential")
    with pytest.raises(GeodiffError, match="model"):
        turbulent((8, 8), model="kolmogorov")


def test_stratified_delay_is_linear_in_elevation():
    dem = np.array([[0.0, 100.0], [200.0, np.nan]])
    out = stratified(dem, 0.01)
    np.testing.assert_allclose(out[:1], [[-1.0, 0.0]])
    assert out[1, 0] == pytest.approx(1.0) and np.isnan(out[1, 1])
    np.testing.assert_allclose(stratified(dem, -0.02, reference=0.0)[0], [0.0, -2.0])


def test_long_correlation_lengths_enlarge_the_embedding():
    from geodiff.errors import EmbeddingError
    from geodiff.geostats import gaussian_random_field

    length = 25.0  # too long for the default embedding of a 48-pixel grid, not for padding 8
    with pytest.raises(EmbeddingError):
        gaussian_random_field((48, 48), lambda h: np.exp(-h / length), padding=2.0)
    screens = turbulent((48, 48), std=3.0, model="exponential", correlation_length=length, size=400, seed=0)
    assert screens.shape == (400, 48, 48)
    np.testing.assert_allclose(screens.std(), 3.0, rtol=0.05)
