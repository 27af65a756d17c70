"""Interferometric phase: wrapping and conversions between LOS displacement and phase.

Sign convention: LOS displacement is positive towards the satellite (uplift under a
zero-incidence look is positive), and the two-way path change gives
``phase = -4 pi d / wavelength`` (e.g. Hanssen 2001, *Radar Interferometry*, ch. 2;
the convention of LiCSBAS and PyRate products), so motion towards the sensor shortens the
range and decreases the phase.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from geodiff.errors import GeodiffError
from geodiff.insar.constants import DAYS_PER_YEAR, SENTINEL1_WAVELENGTH

__all__ = ["displacement_to_phase", "phase_to_displacement", "phase_to_rate", "rate_to_phase", "wrap"]


def _as_array(x: ArrayLike):
    """xarray objects pass through (keeping coords and attrs); anything else becomes an ndarray."""
    return x if hasattr(x, "dims") else np.asarray(x, dtype=float)


def _check_wavelength(wavelength: float) -> float:
    if not np.isfinite(wavelength) or wavelength <= 0:
        raise GeodiffError(f"wavelength must be a positive length in metres, got {wavelength!r}")
    return float(wavelength)


def wrap(phase: ArrayLike) -> np.ndarray:
    """Wrap phase into ``[-pi, pi)``.

    ``atan2(sin, cos)`` gives ``(-pi, pi]``; the single value ``+pi`` is mapped to ``-pi`` so
    the interval is half-open as modular arithmetic expects. NaN stays NaN. Works on numpy
    arrays and on xarray objects (returned as the same type, with their coordinates).

    Parameters
    ----------
    phase : array_like
        Phase in radians.

    Returns
    -------
    numpy.ndarray or xarray object
        Wrapped phase in radians, in ``[-pi, pi)``.
    """
    phase = _as_array(phase)
    wrapped = np.arctan2(np.sin(phase), np.cos(phase))
    return wrapped - 2.0 * np.pi * (wrapped >= np.pi)


def displacement_to_phase(displacement: ArrayLike, wavelength: float = SENTINEL1_WAVELENGTH) -> np.ndarray:
    """Unwrapped phase of a LOS displacement: ``-4 pi d / wavelength``.

    Parameters
    ----------
    displacement : array_like
        LOS displacement in metres, positive towards the satellite.
    wavelength : float
        Radar wavelength in metres (Sentinel-1 C band by default).

    Returns
    -------
    numpy.ndarray
        Phase in radians.
    """
    return -4.0 * np.pi / _check_wavelength(wavelength) * _as_array(displacement)


def phase_to_displacement(phase: ArrayLike, wavelength: float = SENTINEL1_WAVELENGTH) -> np.ndarray:
    """LOS displacement of an unwrapped phase: ``-wavelength phase / (4 pi)``.

    Parameters
    ----------
    phase : array_like
        Unwrapped phase in radians.
    wavelength : float
        Radar wavelength in metres.

    Returns
    -------
    numpy.ndarray
        LOS displacement in metres, positive towards the satellite.
    """
    return -_check_wavelength(wavelength) / (4.0 * np.pi) * _as_array(phase)


def rate_to_phase(rate: ArrayLike, days: float, wavelength: float = SENTINEL1_WAVELENGTH) -> np.ndarray:
    """Phase accumulated by a constant LOS velocity over an interferogram's time span.

    Parameters
    ----------
    rate : array_like
        LOS velocity in metres per year, positive towards the satellite.
    days : float
        Temporal baseline in days (e.g. 12 for a Sentinel-1 single-satellite pair).
    wavelength : float
        Radar wavelength in metres.

    Returns
    -------
    numpy.ndarray
        Phase in radians.
    """
    if not np.isfinite(days):
        raise GeodiffError(f"days must be a finite time span, got {days!r}")
    return displacement_to_phase(_as_array(rate) * (days / DAYS_PER_YEAR), wavelength)


def phase_to_rate(phase: ArrayLike, days: float, wavelength: float = SENTINEL1_WAVELENGTH) -> np.ndarray:
    """Constant LOS velocity (m/yr) that accumulates ``phase`` (rad) over ``days``."""
    if not np.isfinite(days) or days == 0:
        raise GeodiffError(f"days must be a finite non-zero time span, got {days!r}")
    return phase_to_displacement(phase, wavelength) * (DAYS_PER_YEAR / days)
