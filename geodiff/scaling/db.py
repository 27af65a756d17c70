"""Decibels for backscatter: linear power (gamma0, sigma0) to dB with a floor, and back."""

from __future__ import annotations

import numpy as np

from geodiff.errors import GeodiffError

#: Default floor in linear power: -100 dB. Terrain-corrected VH over calm water reaches about
#: -70 dB (1e-7) in OPERA RTC-S1 products, so a floor near the noise level would distort real pixels.
DB_FLOOR = 1e-10

#: Largest fraction of valid pixels <= 0 that dB accepts: zero-filled borders and the odd
#: calibration underflow of real backscatter stay well below it, while signed data (velocities,
#: phase) has about half its pixels there and would be clipped to the floor wholesale.
DB_MAX_NONPOSITIVE = 0.01


def check_power(values) -> float:
    """Fraction of the finite values that are <= 0; raise when it is too large for power.

    Works on numpy, dask and xarray objects (one pass over lazy data).

    Raises
    ------
    geodiff.errors.GeodiffError
        More than :data:`DB_MAX_NONPOSITIVE` of the finite values are <= 0.
    """
    import dask

    return power_fraction(*dask.compute(*nonpositive_counts(values)))


def nonpositive_counts(values):
    """``(values <= 0, finite values)`` counts, lazy for dask data: to compute with other
    reductions of the same data in one pass, then check with :func:`power_fraction`."""
    finite = np.isfinite(values)
    return (finite & (values <= 0)).sum(), finite.sum()


def power_fraction(nonpositive, count) -> float:
    """:func:`check_power` on counts already computed."""
    fraction = float(nonpositive) / max(int(count), 1)
    if fraction > DB_MAX_NONPOSITIVE:
        raise GeodiffError(
            f"dB needs linear backscatter power, but {fraction:.1%} of the valid pixels are <= 0 "
            f"(at most {DB_MAX_NONPOSITIVE:.0%} are accepted, as nodata-like zeros): this looks like signed "
            "data such as velocities or phase, which 10 log10 would clip to the floor; scale it without dB")
    return fraction


def to_db(power, floor: float = DB_FLOOR):
    """``10 log10(max(power, floor))``; NaN stays NaN. Works on numpy, dask and xarray objects.

    Zero and negative powers (speckle-filtered or calibrated data can hold them) map to the floor
    instead of -inf/NaN.
    """
    if floor <= 0:
        raise GeodiffError(f"floor must be positive linear power, got {floor}")
    return 10.0 * np.log10(np.maximum(power, floor))


def from_db(db):
    """Inverse of :func:`to_db` above the floor: ``10 ** (db / 10)``."""
    return 10.0 ** (db / 10.0)
