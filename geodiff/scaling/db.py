"""Decibels for backscatter: linear power (gamma0, sigma0) to dB with a floor, and back."""

from __future__ import annotations

import numpy as np

#: Default floor in linear power: -100 dB. Terrain-corrected VH over calm water reaches about
#: -70 dB (1e-7) in OPERA RTC-S1 products, so a floor near the noise level would distort real pixels.
DB_FLOOR = 1e-10


def to_db(power, floor: float = DB_FLOOR):
    """``10 log10(max(power, floor))``; NaN stays NaN. Works on numpy, dask and xarray objects.

    Zero and negative powers (speckle-filtered or calibrated data can hold them) map to the floor
    instead of -inf/NaN.
    """
    if floor <= 0:
        raise ValueError(f"floor must be positive linear power, got {floor}")
    return 10.0 * np.log10(np.maximum(power, floor))


def from_db(db):
    """Inverse of :func:`to_db` above the floor: ``10 ** (db / 10)``."""
    return 10.0 ** (db / 10.0)
