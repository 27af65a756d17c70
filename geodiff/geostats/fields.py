"""Gaussian random fields on regular grids: circulant embedding and power-law spectral synthesis.

Units: ``spacing`` is the pixel size ``(dy, dx)`` in the same linear unit as the covariance
model's length scales (metres for a model fitted to a variogram of a projected or geographic
scene; see :func:`geodiff.geostats.spacing.pixel_spacing`). With the default ``(1.0, 1.0)``
lags are in pixels. The field values carry the unit of ``sqrt(sill)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft

from geodiff.errors import EmbeddingError, GeodiffError

__all__ = ["gaussian_random_field", "power_law_field"]

# Eigenvalues of the embedding below -_NEG_RTOL * max are a real failure, not round-off.
_NEG_RTOL = 1e-8


def _check_grid(
    shape: tuple[int, int], spacing: tuple[float, float], size: int | None
) -> tuple[int, int, float, float, int]:
    """``(ny, nx, dy, dx, n)`` with ``n`` the number of realisations to draw."""
    if len(shape) != 2 or min(shape) < 1:
        raise GeodiffError(f"shape must be two positive integers (ny, nx), got {shape!r}")
    if len(spacing) != 2 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise GeodiffError(f"spacing must be two positive finite numbers (dy, dx), got {spacing!r}")
    if size is not None and int(size) < 1:
        raise GeodiffError(f"size must be a positive number of realisations, got {size}")
    return (
        int(shape[0]),
        int(shape[1]),
        float(spacing[0]),
        float(spacing[1]),
        1 if size is None else int(size),
    )


def _covariance_function(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    # Model objects are callable as variograms gamma(h); their covariance is a separate method.
    cov = getattr(model, "covariance", None)
    if callable(cov):
        return cov
    if callable(model):
        return model
    raise GeodiffError(
        f"model must be a geostats model or a callable C(h) of lag distance, got {type(model).__name__}"
    )


def _wrapped_lags(n: int, d: float) -> np.ndarray:
    """Lag of each index on a periodic grid of ``n`` cells: min(i, n - i) * d."""
    i = np.arange(n)
    return np.minimum(i, n - i) * d


def circulant_eigenvalues(covariance: Callable[[np.ndarray], np.ndarray], grid: tuple[int, int],
                          spacing: tuple[float, float] = (1.0, 1.0), *, clip: bool = False) -> np.ndarray:
    """Eigenvalues of the circulant embedding of a stationary covariance on a periodic grid.

    The covariance ``C(h)`` is laid on the ``grid`` (its wrapped lags, in the unit of
    ``spacing``); its 2-D FFT is the spectrum of the block-circulant covariance matrix, whose
    square root scales white noise into the field (Dietrich & Newsam 1997). This one numpy
    implementation serves :func:`gaussian_random_field` and the correlated forward noise of
    :mod:`geodiff.diffusion.noise`.

    Parameters
    ----------
    covariance
        ``C(h)`` of lag distance, vectorised.
    grid
        ``(my, mx)`` cells of the periodic grid (at least twice the field for an exact crop).
    spacing
        Cell size ``(dy, dx)``.
    clip
        Set negative eigenvalues to 0 (an approximate field) instead of raising.

    Returns
    -------
    numpy.ndarray
        ``(my, mx)`` float64 eigenvalues, all >= 0.

    Raises
    ------
    EmbeddingError
        An eigenvalue is negative beyond round-off (the embedding is not non-negative
        definite) and ``clip`` is False.
    GeodiffError
        The covariance is not finite, or has no positive variance on the grid.
    """
    my, mx = grid
    hy = _wrapped_lags(my, spacing[0])[:, None]
    hx = _wrapped_lags(mx, spacing[1])[None, :]
    c = np.asarray(covariance(np.hypot(hy, hx)), dtype=np.float64)
    if c.shape != (my, mx) or not np.all(np.isfinite(c)):
        raise GeodiffError(
            "the covariance must return finite values of the same shape as its lag array; "
            "models without a sill (power law) cannot be embedded: use power_law_field instead"
        )
    lam = scipy.fft.fft2(c, workers=-1).real
    top = lam.max()
    if top <= 0:
        raise GeodiffError("the covariance has no positive variance on this grid; check the model's sill")
    if lam.min() < -_NEG_RTOL * top and not clip:
        raise EmbeddingError(f"circulant embedding of size {my} x {mx} is not non-negative definite "
                             f"(smallest eigenvalue {lam.min():.3g} vs largest {top:.3g})")
    return np.clip(lam, 0.0, None)


def gaussian_random_field(
    shape: tuple[int, int],
    model: Any,
    *,
    spacing: tuple[float, float] = (1.0, 1.0),
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
    padding: float = 2.0,
) -> np.ndarray:
    """Exact stationary Gaussian random field with covariance ``model`` by circulant embedding.

    The covariance is sampled on a periodic grid of at least ``padding * shape`` cells (the
    minimal embedding is ``2 n - 1``), whose 2-D FFT gives the eigenvalues of the block-circulant
    covariance matrix; complex white noise scaled by their square roots and transformed back
    yields two independent realisations (real and imaginary parts) whose restriction to the
    ``shape`` window has exactly the requested covariance (Dietrich & Newsam 1997, SIAM J. Sci.
    Comput. 18(4), 1088-1107; Wood & Chan 1994, J. Comput. Graph. Stat. 3(4), 409-432).

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(ny, nx)`` in pixels.
    model : model object or callable
        A :mod:`geodiff.geostats.models` model (its ``covariance`` method is used; models without
        a finite sill such as ``Power`` cannot be embedded) or any callable ``C(h)`` returning the
        covariance at lag distance ``h`` (an array, in the unit of ``spacing``).
    spacing : (float, float)
        Pixel size ``(dy, dx)`` in the unit of the model's length scales.
    size : int, optional
        Number of realisations, stacked on a leading axis. ``None`` returns a single ``(ny, nx)``
        field.
    seed : int or numpy.random.Generator, optional
        Source of randomness; the same seed gives the same fields.
    padding : float
        Embedding grid size as a multiple of ``shape`` (at least 2). Long-range or very smooth
        covariances (large range, gaussian) may need 3-8.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` or ``(size, ny, nx)`` float64 field, zero mean, variance ``C(0)``, in the
        unit of ``sqrt(C)``.

    Raises
    ------
    EmbeddingError
        If the embedding is not non-negative definite (enlarge ``padding``).
    GeodiffError
        If the covariance is not finite at the sampled lags.
    """
    ny, nx, dy, dx, n = _check_grid(shape, spacing, size)
    if padding < 2:
        raise GeodiffError(
            f"padding must be at least 2 (the minimal circulant embedding), got {padding}"
        )
    my = scipy.fft.next_fast_len(max(int(np.ceil(padding * ny)), 2))
    mx = scipy.fft.next_fast_len(max(int(np.ceil(padding * nx)), 2))
    try:
        lam = circulant_eigenvalues(_covariance_function(model), (my, mx), (dy, dx))
    except EmbeddingError as err:
        raise EmbeddingError(f"{err}; enlarge padding (now {padding}), e.g. padding={2 * padding:g}, or use a "
                             "covariance that decays within the padded grid") from None
    amp = np.sqrt(lam / (my * mx))
    rng = np.random.default_rng(seed)
    pairs = (n + 1) // 2
    # Pair by pair, so the first realisations do not depend on how many are drawn.
    w = rng.standard_normal((pairs, 2, my, mx))
    y = scipy.fft.fft2((w[:, 0] + 1j * w[:, 1]) * amp, axes=(-2, -1), workers=-1, overwrite_x=True)[
        :, :ny, :nx
    ]
    fields = np.concatenate([y.real, y.imag])[:n]
    return fields[0] if size is None else np.ascontiguousarray(fields)


def power_law_field(
    shape: tuple[int, int],
    exponent: float,
    *,
    spacing: tuple[float, float] = (1.0, 1.0),
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
    std: float = 1.0,
    padding: float = 2.0,
) -> np.ndarray:
    """Gaussian field with isotropic power spectral density ``P(k) ~ k**-exponent``.

    White noise is filtered in the Fourier domain by ``k**(-exponent / 2)`` with ``k`` the
    radial wavenumber in cycles per unit of ``spacing`` (the zero frequency removed), on a
    grid ``padding`` times larger than ``shape`` so the cropped field is not periodic
    (spectral synthesis, e.g. Hanssen 2001, *Radar Interferometry*, sect. 4.7, for turbulent
    atmosphere with ``exponent = 8/3``). Each realisation is then shifted and scaled to exactly
    zero mean and standard deviation ``std``.

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(ny, nx)`` in pixels.
    exponent : float
        Spectral exponent beta of ``P(k) ~ k**-beta`` (0 gives white noise; 8/3 Kolmogorov
        turbulence; 11/3 its 3-D counterpart).
    spacing : (float, float)
        Pixel size ``(dy, dx)``; only the ratio matters (non-square pixels keep the field
        isotropic in physical units).
    size : int, optional
        Number of realisations on a leading axis; ``None`` returns one ``(ny, nx)`` field.
    seed : int or numpy.random.Generator, optional
        Source of randomness.
    std : float
        Standard deviation of each realisation, in the output unit.
    padding : float
        Synthesis grid size as a multiple of ``shape`` (1 gives a periodic field).

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` or ``(size, ny, nx)`` float64 field.
    """
    ny, nx, dy, dx, n = _check_grid(shape, spacing, size)
    if padding < 1:
        raise GeodiffError(f"padding must be at least 1, got {padding}")
    if not np.isfinite(exponent) or not np.isfinite(std) or std < 0:
        raise GeodiffError(f"exponent must be finite and std non-negative, got {exponent}, {std}")
    if ny * nx < 2:
        raise GeodiffError("a zero-mean field needs at least two pixels; enlarge shape")
    my = scipy.fft.next_fast_len(int(np.ceil(padding * ny)), real=True)
    mx = scipy.fft.next_fast_len(int(np.ceil(padding * nx)), real=True)
    ky = scipy.fft.fftfreq(my, dy)[:, None]
    kx = scipy.fft.rfftfreq(mx, dx)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    filt = k ** (-exponent / 2.0)
    filt[0, 0] = 0.0
    rng = np.random.default_rng(seed)
    spec = scipy.fft.rfft2(rng.standard_normal((n, my, mx)), workers=-1) * filt
    f = scipy.fft.irfft2(spec, s=(my, mx), workers=-1)[:, :ny, :nx]
    f -= f.mean(axis=(-2, -1), keepdims=True)
    sd = f.std(axis=(-2, -1), keepdims=True)
    f *= np.divide(std, sd, out=np.zeros_like(sd), where=sd > 0)
    return f[0] if size is None else np.ascontiguousarray(f)
