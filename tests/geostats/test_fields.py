"""Gaussian random fields: covariance and spectrum against their closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from geodiff.errors import EmbeddingError, GeodiffError
from geodiff.geostats.fields import gaussian_random_field, power_law_field


def _expcov(h):
    return 2.0 * np.exp(-np.asarray(h) / 3.0)


def test_grf_empirical_covariance_matches_model_non_square_pixels():
    ny, nx, dy, dx = 9, 7, 1.5, 0.75
    f = gaussian_random_field((ny, nx), _expcov, spacing=(dy, dx), size=6000, seed=1, padding=6)
    assert f.shape == (6000, ny, nx)
    flat = f.reshape(len(f), -1)
    emp = flat.T @ flat / len(f)  # zero-mean field: E[z_i z_j]
    yy, xx = np.meshgrid(np.arange(ny) * dy, np.arange(nx) * dx, indexing="ij")
    pts = np.column_stack([yy.ravel(), xx.ravel()])
    h = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    expected = _expcov(h)
    # sample covariance of Gaussians: sd = sqrt((C_ij^2 + C_ii C_jj) / n)
    sd = np.sqrt((expected**2 + 4.0) / len(f))
    assert np.max(np.abs(emp - expected) / sd) < 4.5
    assert abs(np.mean(np.diag(emp)) - 2.0) < 0.03


def test_grf_seed_and_single_shape():
    a = gaussian_random_field((20, 30), _expcov, seed=3)
    b = gaussian_random_field((20, 30), _expcov, seed=np.random.default_rng(3))
    assert a.shape == (20, 30)
    np.testing.assert_array_equal(a, b)
    c = gaussian_random_field((20, 30), _expcov, size=3, seed=3)
    np.testing.assert_array_equal(c[0], a)


def test_grf_embedding_failure_advises_padding():
    def smooth(h):  # gaussian covariance with a range far beyond the grid
        return np.exp(-((np.asarray(h) / 40.0) ** 2))

    with pytest.raises(EmbeddingError, match="padding"):
        gaussian_random_field((32, 32), smooth, padding=2)


def test_grf_rejects_bad_model():
    with pytest.raises(GeodiffError):
        gaussian_random_field((8, 8), "exponential")


@pytest.mark.parametrize("beta", [0.0, 8.0 / 3.0])
def test_power_law_field_spectral_slope_and_moments(beta):
    f = power_law_field((128, 128), beta, size=40, seed=0, std=2.5, padding=1.0)
    np.testing.assert_allclose(f.mean(axis=(1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(f.std(axis=(1, 2)), 2.5, rtol=1e-12)
    psd = np.mean(np.abs(np.fft.fft2(f)) ** 2, axis=0)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    sel = (k > 0.02) & (k < 0.45)
    slope = np.polyfit(np.log(k[sel]), np.log(psd[sel]), 1)[0]
    assert abs(slope + beta) < 0.1
