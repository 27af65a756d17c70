"""Wrapped-phase identities and displacement <-> phase conversions."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from geodiff.errors import GeodiffError
from geodiff.insar import (
    SENTINEL1_WAVELENGTH,
    displacement_to_phase,
    phase_to_displacement,
    phase_to_rate,
    rate_to_phase,
    wrap,
)

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(finite, st.integers(min_value=-50, max_value=50))
def test_wrap_identities(phi, k):
    w = wrap(phi)
    assert -np.pi <= w < np.pi
    # Same point on the unit circle, and invariant to whole cycles.
    assert np.exp(1j * w) == pytest.approx(np.exp(1j * phi), abs=1e-9)
    assert np.isclose(np.exp(1j * wrap(phi + 2 * np.pi * k)), np.exp(1j * w), atol=1e-8)
    # Idempotent, and differs from the input by an integer number of cycles.
    assert wrap(w) == pytest.approx(w, abs=1e-12)
    cycles = (phi - w) / (2 * np.pi)
    assert cycles == pytest.approx(round(cycles), abs=1e-9)


def test_wrap_interval_ends_and_nan():
    out = wrap(np.array([np.pi, -np.pi, 0.0, np.nan, 3 * np.pi]))
    np.testing.assert_allclose(out[:3], [-np.pi, -np.pi, 0.0], atol=0)
    assert np.isnan(out[3])
    # 3 * np.pi is not exactly 3 pi in floating point: either end of the interval within rounding.
    assert abs(abs(out[4]) - np.pi) < 1e-12


def test_wrap_matches_modular_arithmetic():
    x = np.random.default_rng(0).uniform(-100, 100, 10_000)
    np.testing.assert_allclose(wrap(x), np.mod(x + np.pi, 2 * np.pi) - np.pi, atol=1e-9)


def test_wrap_keeps_xarray_coordinates():
    da = xr.DataArray(np.linspace(-10, 10, 6), dims="x", coords={"x": np.arange(6.0) * 30}, attrs={"units": "rad"})
    out = wrap(da)
    assert isinstance(out, xr.DataArray) and out.dims == ("x",)
    np.testing.assert_array_equal(out.x, da.x)
    np.testing.assert_allclose(out.values, np.mod(da.values + np.pi, 2 * np.pi) - np.pi, atol=1e-12)


def test_one_fringe_is_half_a_wavelength():
    # A 2 pi cycle of two-way phase is lambda / 2 of LOS motion; motion towards the sensor is negative phase.
    assert displacement_to_phase(SENTINEL1_WAVELENGTH / 2) == pytest.approx(-2 * np.pi)
    assert phase_to_displacement(-2 * np.pi) == pytest.approx(0.0277329)


@settings(max_examples=50, deadline=None)
@given(finite, st.floats(min_value=0.01, max_value=0.3))
def test_displacement_phase_round_trip(d, lam):
    assert phase_to_displacement(displacement_to_phase(d, lam), lam) == pytest.approx(d, rel=1e-12, abs=1e-12)


def test_rate_to_phase_over_a_year_and_back():
    rate = np.array([0.01, -0.02])  # m/yr
    phase = rate_to_phase(rate, days=365.25)
    np.testing.assert_allclose(phase, displacement_to_phase(rate))
    np.testing.assert_allclose(rate_to_phase(rate, days=12), phase * 12 / 365.25)
    np.testing.assert_allclose(phase_to_rate(rate_to_phase(rate, 24), 24), rate)


def test_bad_wavelength_and_span():
    with pytest.raises(GeodiffError):
        displacement_to_phase(1.0, wavelength=0.0)
    with pytest.raises(GeodiffError):
        phase_to_rate(1.0, days=0)
