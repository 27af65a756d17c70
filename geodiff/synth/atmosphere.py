"""Atmospheric phase screens: turbulent (power-law or exponential covariance) and stratified (k * DEM).

Fields come from :mod:`geodiff.geostats.fields` (spectral synthesis and circulant embedding), so
a batch of thousands of tiles is one vectorised FFT call. Amplitudes are in whatever unit the
caller works in (mm of LOS delay or radians of phase); the fields carry that unit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from geodiff.errors import EmbeddingError, GeodiffError
from geodiff.geostats.fields import gaussian_random_field, power_law_field

__all__ = ["KOLMOGOROV_EXPONENT", "stratified", "turbulent"]

_PADDINGS = (2.0, 4.0, 8.0)

KOLMOGOROV_EXPONENT = 8.0 / 3.0
"""Spectral exponent of 2-D turbulent delay in the scaling range of Kolmogorov turbulence
(Hanssen 2001, *Radar Interferometry*, sect. 4.7: P(k) ~ k^-8/3 between about 2 and 50 km)."""


def turbulent(
    shape: tuple[int, int],
    *,
    std: float = 1.0,
    model: str = "power_law",
    exponent: float = KOLMOGOROV_EXPONENT,
    correlation_length: float | None = None,
    spacing: tuple[float, float] = (1.0, 1.0),
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Turbulent atmospheric delay: zero-mean Gaussian fields with a power-law or exponential structure.

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(ny, nx)`` in pixels.
    std : float
        Standard deviation of the screen, in the output unit (mm or rad).
    model : {"power_law", "exponential"}
        ``"power_law"``: isotropic PSD ``P(k) ~ k**-exponent``, each realisation scaled to exactly
        ``std`` (Hanssen 2001, sect. 4.7). ``"exponential"``: covariance
        ``std**2 exp(-h / correlation_length)``, the model fitted to interferogram noise by
        Hanssen (2001, sect. 4.6) and used for InSAR error covariances (e.g. Lohman & Simons 2005,
        G-cubed 6, Q01007); the variance is ``std**2`` in expectation.
    exponent : float
        Spectral exponent of the power law (8/3 for Kolmogorov turbulence).
    correlation_length : float, optional
        e-folding length of the exponential covariance, in the unit of ``spacing`` (metres).
    spacing : (float, float)
        Pixel size ``(dy, dx)``, in metres for a metric ``correlation_length``.
    size : int, optional
        Number of screens on a leading axis; ``None`` returns one ``(ny, nx)`` screen.
    seed : int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` or ``(size, ny, nx)`` float64 screens in the unit of ``std``.
    """
    if not (np.isfinite(std) and std >= 0):
        raise GeodiffError(f"std must be a non-negative amplitude (mm or rad), got {std}")
    if model == "power_law":
        return power_law_field(shape, exponent, spacing=spacing, size=size, seed=seed, std=std)
    if model == "exponential":
        if correlation_length is None or not correlation_length > 0:
            raise GeodiffError(
                "the exponential model needs correlation_length= (a positive length in the unit of spacing)"
            )
        var = float(std) ** 2
        # Long correlation lengths need a larger circulant embedding to stay non-negative definite.
        for padding in _PADDINGS:
            try:
                return gaussian_random_field(
                    shape, lambda h: var * np.exp(-h / correlation_length), spacing=spacing, size=size, seed=seed,
                    padding=padding,
                )
            except EmbeddingError:
                if padding == _PADDINGS[-1]:
                    raise
    raise GeodiffError(f"model must be 'power_law' or 'exponential', got {model!r}")


def stratified(dem: ArrayLike, k: float, *, reference: float | None = None) -> np.ndarray:
    """Stratified (topography-correlated) delay ``k * (dem - reference)``.

    The vertical stratification of the troposphere gives a delay linear in elevation over a
    scene (Hanssen 2001, sect. 4.7; Doin et al. 2009, J. Appl. Geophys. 69, 35-50).

    Parameters
    ----------
    dem : array_like
        Elevation in metres (NaN allowed).
    k : float
        Delay per metre of elevation, in the output unit per metre (e.g. mm/m or rad/m).
    reference : float, optional
        Reference elevation in metres; by default the mean of ``dem``, so the screen has zero mean.

    Returns
    -------
    numpy.ndarray
        Delay in the unit of ``k`` times metres.
    """
    dem = np.asarray(dem, dtype=float)
    ref = np.nanmean(dem) if reference is None else float(reference)
    return k * (dem - ref)
