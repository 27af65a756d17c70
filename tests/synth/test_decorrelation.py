"""Decorrelation phase noise against the multilook phase PDF (Lee et al. 1994) and the Cramer-Rao bound."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from geodiff.errors import GeodiffError
from geodiff.synth import cramer_rao_std, phase_noise, phase_pdf, phase_std, unwrapping_errors


@pytest.mark.parametrize(("coherence", "looks"), [(0.2, 1), (0.6, 1), (0.6, 5), (0.9, 20)])
def test_pdf_is_normalised(coherence, looks):
    total, _ = integrate.quad(phase_pdf, -np.pi, np.pi, args=(coherence, looks))
    assert total == pytest.approx(1.0, abs=1e-8)


def test_single_look_pdf_matches_closed_form():
    # Single look (Lee et al. 1994, eq. 4; Just & Bamler 1994):
    # (1 - g^2) / (2 pi (1 - b^2)) * (1 + b arccos(-b) / sqrt(1 - b^2)), b = g cos(phi).
    phi = np.linspace(-np.pi, np.pi, 101)
    g = 0.7
    b = g * np.cos(phi)
    ref = (1 - g**2) / (2 * np.pi * (1 - b**2)) * (1 + b * np.arccos(-b) / np.sqrt(1 - b**2))
    np.testing.assert_allclose(phase_pdf(phi, g, 1), ref, rtol=1e-10)


@pytest.mark.parametrize(("coherence", "looks"), [(0.0, 1), (0.3, 1), (0.7, 1), (0.7, 4), (0.9, 20), (0.5, 50)])
def test_noise_std_matches_theory(coherence, looks):
    noise = phase_noise(np.full(200_000, coherence), looks, seed=11)
    assert noise.std() == pytest.approx(phase_std(coherence, looks), rel=0.01)
    assert abs(noise.mean()) < 0.02


def test_noise_distribution_matches_pdf():
    g, looks = 0.6, 3
    grid = np.linspace(-np.pi, np.pi, 20001)
    cdf = integrate.cumulative_trapezoid(phase_pdf(grid, g, looks), grid, initial=0.0)
    sample = phase_noise(np.full(20_000, g), looks, seed=12)
    result = stats.kstest(sample, lambda s: np.interp(s, grid, cdf))
    assert result.pvalue > 1e-3


def test_zero_coherence_is_uniform_and_many_looks_reach_cramer_rao():
    assert phase_std(0.0, 1) == pytest.approx(np.pi / np.sqrt(3), rel=1e-6)
    assert phase_std(0.8, 64) == pytest.approx(float(cramer_rao_std(0.8, 64)), rel=0.03)
    assert phase_std(1.0, 3) == 0.0


def test_noise_shapes_nan_and_errors():
    coh = np.array([[0.5, np.nan], [1.0, 0.0]])
    out = phase_noise(coh, 2, size=3, seed=0)
    assert out.shape == (3, 2, 2)
    assert np.isnan(out[:, 0, 1]).all() and np.allclose(out[:, 1, 0], 0.0)
    assert np.all((out[~np.isnan(out)] >= -np.pi) & (out[~np.isnan(out)] <= np.pi))
    np.testing.assert_array_equal(out, phase_noise(coh, 2, size=3, seed=0))
    with pytest.raises(GeodiffError, match="coherence"):
        phase_noise(1.5)
    with pytest.raises(GeodiffError, match="looks"):
        phase_noise(0.5, looks=0)


def test_unwrapping_errors_are_whole_cycles():
    e = unwrapping_errors((64, 64), n_regions=3, max_cycles=2, size=4, seed=1)
    cycles = e / (2 * np.pi)
    np.testing.assert_allclose(cycles, np.round(cycles), atol=1e-12)
    assert np.all(np.abs(cycles) <= 6)
    assert all((c != 0).any() for c in cycles)
    assert not unwrapping_errors((16, 16), n_regions=0, seed=1).any()
