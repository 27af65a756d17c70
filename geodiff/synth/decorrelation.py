"""Decorrelation phase noise for a coherence and number of looks, and unwrapping errors.

The multilooked interferometric phase of a distributed scatterer with coherence ``gamma`` and
``L`` independent looks has the distribution of Lee et al. (1994, IEEE TGRS 32(5), 1017-1028,
eq. 12; Tough et al. 1995, Proc. R. Soc. A 449, 567-589). Noise is drawn from the physical
process (the phase of ``L`` summed products of correlated circular complex Gaussian pixels,
through its complex Wishart representation), so it follows that distribution exactly;
:func:`phase_pdf` and :func:`phase_std` give the theory to check it against.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, special

from geodiff.errors import GeodiffError
from geodiff.synth.rng import generator
from geodiff.synth.shapes import ellipse

__all__ = ["cramer_rao_std", "phase_noise", "phase_pdf", "phase_std", "unwrapping_errors"]


def _check(coherence: ArrayLike, looks: int) -> np.ndarray:
    g = np.asarray(coherence, dtype=float)
    if np.any((g < 0) | (g > 1)):
        raise GeodiffError("coherence must lie in [0, 1]")
    if int(looks) != looks or looks < 1:
        raise GeodiffError(f"looks must be a positive integer, got {looks}")
    return g


def phase_noise(
    coherence: ArrayLike,
    looks: int = 1,
    *,
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Interferometric phase noise (rad) for a coherence and number of looks.

    The phase of the ``L``-look sum ``sum z1 conj(z2)`` of pairs of unit-variance circular
    complex Gaussian pixels with correlation ``gamma`` is drawn exactly from the Bartlett
    decomposition of the complex Wishart sample covariance (Goodman 1963, Ann. Math. Stat.
    34(1), 152-177): it equals ``arg(gamma a + sqrt(1 - gamma**2) c)`` with ``a**2`` a
    Gamma(L, 1) variable and ``c`` a standard circular complex Gaussian, so the cost does not
    grow with ``L``. NaN coherence gives NaN noise.

    Parameters
    ----------
    coherence : array_like
        Coherence magnitude in ``[0, 1]`` per pixel (any shape) or a scalar.
    looks : int
        Number of independent looks averaged.
    size : int, optional
        Number of independent noise fields on a leading axis.
    seed : int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        Phase noise in radians, in ``(-pi, pi]``, shaped like ``coherence`` (with ``size`` in front).
    """
    coherence = np.asarray(coherence, dtype=float)
    g = _check(np.nan_to_num(coherence, nan=0.0), looks)
    shape = g.shape if size is None else (int(size), *g.shape)
    rng = generator(seed)
    a = np.sqrt(rng.standard_gamma(float(looks), shape))
    c_re = rng.standard_normal(shape)
    c_im = rng.standard_normal(shape)
    s = np.sqrt((1.0 - g**2) / 2.0)
    out = np.arctan2(s * c_im, g * a + s * c_re)
    return np.where(np.isnan(coherence), np.nan, out)


def phase_pdf(phase: ArrayLike, coherence: float, looks: int = 1) -> np.ndarray:
    """Probability density of multilooked interferometric phase (Lee et al. 1994, eq. 12).

    ``pdf = G(L+1/2) (1-g**2)**L b / (2 sqrt(pi) G(L) (1-b**2)**(L+1/2))
    + (1-g**2)**L / (2 pi) 2F1(L, 1; 1/2; b**2)`` with ``b = g cos(phase)``.

    Parameters
    ----------
    phase : array_like
        Phase in radians, in ``[-pi, pi)`` (relative to the true phase).
    coherence : float
        Coherence magnitude in ``[0, 1)``.
    looks : int
        Number of looks.

    Returns
    -------
    numpy.ndarray
        Density in 1/rad.
    """
    g = float(_check(coherence, looks))
    if g >= 1:
        raise GeodiffError("the phase density is a delta at coherence 1; use coherence < 1")
    beta = g * np.cos(np.asarray(phase, dtype=float))
    L = int(looks)
    c1 = np.exp(special.gammaln(L + 0.5) - special.gammaln(L) + L * np.log1p(-(g**2))) / (2.0 * np.sqrt(np.pi))
    term1 = c1 * beta / (1.0 - beta**2) ** (L + 0.5)
    term2 = (1.0 - g**2) ** L / (2.0 * np.pi) * special.hyp2f1(L, 1.0, 0.5, beta**2)
    return term1 + term2


def phase_std(coherence: float, looks: int = 1) -> float:
    """Standard deviation (rad) of multilooked phase, by integrating :func:`phase_pdf` over ``[-pi, pi)``."""
    g = float(_check(coherence, looks))
    if g >= 1:
        return 0.0
    var, _ = integrate.quad(lambda p: p * p * phase_pdf(p, g, looks), -np.pi, np.pi, limit=200)
    return float(np.sqrt(var))


def cramer_rao_std(coherence: ArrayLike, looks: int = 1) -> np.ndarray:
    """Cramer-Rao bound on the phase standard deviation: ``sqrt((1 - g**2) / (2 L g**2))`` (rad).

    Rodriguez & Martin (1992, IEE Proc. F 139(2), 147-159); tight for many looks and high
    coherence, where the multilooked phase is nearly Gaussian.
    """
    g = _check(coherence, looks)
    with np.errstate(divide="ignore"):
        return np.sqrt((1.0 - g**2) / (2.0 * looks * g**2))


def unwrapping_errors(
    shape: tuple[int, int],
    *,
    n_regions: int = 1,
    max_cycles: int = 1,
    size_range: tuple[float, float] = (0.05, 0.3),
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Unwrapping errors: whole-cycle (``2 pi k``) offsets over random elliptical patches.

    Real unwrapping errors are regions shifted by integer cycles relative to their
    neighbours, bounded by phase discontinuities; random ellipses imitate them.

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(ny, nx)``.
    n_regions : int
        Number of shifted regions per field.
    max_cycles : int
        Cycle offsets are drawn from ``{-max_cycles, ..., max_cycles} \\ {0}``.
    size_range : (float, float)
        Range of semi-axes as fractions of the smaller grid side.
    size : int, optional
        Number of fields on a leading axis.
    seed : int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        Phase offsets in radians, multiples of ``2 pi``.
    """
    if n_regions < 0 or max_cycles < 1:
        raise GeodiffError("n_regions must be >= 0 and max_cycles >= 1")
    rng = generator(seed)
    n = 1 if size is None else int(size)
    side = min(shape)
    out = np.zeros((n, *shape))
    for i in range(n):
        for _ in range(n_regions):
            centre = (rng.uniform(0, shape[0]), rng.uniform(0, shape[1]))
            axes = rng.uniform(*size_range, 2) * side
            angle = rng.uniform(0, 180)
            k = rng.integers(1, max_cycles + 1) * rng.choice([-1, 1])
            out[i] += ellipse(shape, centre, axes, angle, 2.0 * np.pi * k, blur=0)
    return out[0] if size is None else out
