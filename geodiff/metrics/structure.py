"""Spatial structure of real against synthetic tiles: mean semivariograms and power spectra.

Generated radar tiles tend to lack long-range covariance and variance (Tuel et al. 2023); these
two metrics measure it in the lag domain (semivariograms, with the real ensemble's 95 % band)
and in the frequency domain (radially averaged power spectral densities).

Each metric is computed per band: one band gives floats, several bands a tuple of floats per
field, in band order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from geodiff.errors import GeodiffError
from geodiff.geostats import compare, semivariogram
from geodiff.metrics.checks import band_result, tile_set, tile_sets

__all__ = ["VariogramScore", "psd_log_ratio", "radial_psd", "variogram_score"]

_ENSEMBLE = "a 95 % band and a mean over tiles need an ensemble"


@dataclass(frozen=True)
class VariogramScore:
    """Mean semivariograms of synthetic against real tiles.

    Attributes
    ----------
    rms_log_ratio : float or tuple of float
        ``sqrt(mean_h log(gamma_syn(h) / gamma_real(h))^2)`` over lags with values; 0 is
        identical curves, lower is better (0.1 ~ a typical 10 % mismatch in semivariance).
    fraction_in_band : float or tuple of float
        Fraction of lags where the synthetic mean lies inside the 2.5-97.5 % band of the real
        tiles' semivariograms; 1 is best.
    """

    rms_log_ratio: float | tuple[float, ...]
    fraction_in_band: float | tuple[float, ...]


def variogram_score(
    real, synthetic, *, bins: int = 16, max_lag: float | None = None
) -> VariogramScore:
    """Mean-semivariogram RMS log-ratio and fraction of lags in the real 95 % band.

    Every tile's Matheron semivariogram ``gamma(h) = 1/(2 N(h)) sum (z_i - z_j)^2`` over its
    ``N(h)`` pairs of valid pixels at distance ``h`` (in pixels) is computed on common bins; the
    mean over tiles of each set gives ``gamma_real``, ``gamma_syn``, and the real tiles' 2.5 and
    97.5 percentiles per lag the band (Tuel et al. 2023, Fig. 8, as numbers). This is
    :func:`geodiff.geostats.compare` on the two ensembles.

    Parameters
    ----------
    real, synthetic : xarray.DataArray or numpy.ndarray
        Tile sets ``(sample, [band,] y, x)`` in physical units, NaN nodata (see
        :func:`geodiff.metrics.checks.tile_sets`); at least 2 tiles each.
    bins : int
        Equal-width lag bins over ``[0, max_lag)``; bins without pairs are left out.
    max_lag : float, optional
        Largest lag in pixels (exclusive); default half the shorter tile side.

    Returns
    -------
    VariogramScore
        Dimensionless; see its attributes for which way is better.
    """
    r, s, _ = tile_sets(real, synthetic, min_tiles=2, why=_ENSEMBLE)
    h, w = r.shape[-2:]
    edges = np.linspace(0.0, 0.5 * min(h, w) if max_lag is None else float(max_lag), int(bins) + 1)
    dims = ("sample", "band", "lag")
    rv = semivariogram(r, bins=edges)
    sv = semivariogram(s, bins=edges)
    # The ensembles' bootstrap intervals are not part of the score: one resample is enough.
    out = compare(
        rv.rename(dict(zip(rv["gamma"].dims, dims))),
        sv.rename(dict(zip(sv["gamma"].dims, dims))),
        dim="sample",
        n_boot=1,
        seed=0,
    )
    return VariogramScore(
        band_result(out["rms_log_ratio"].values), band_result(out["fraction_in_band"].values)
    )


def radial_psd(x, *, max_nodata: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectral density of a tile set, averaged over tiles.

    Each tile's periodogram ``P(k) = |FFT(I (z - mean))|^2 / N_valid`` (``I`` the validity mask,
    gaps filled with the tile mean, i.e. zero after centring, and ``N_valid`` its valid pixels, so
    white noise of variance ``s^2`` has ``E P(k) = s^2`` at every ``k != 0`` whatever the gaps) is
    averaged over tiles and over annuli of ``|k|``. No taper: real and synthetic tiles of one
    size share the same edge leakage, and the expected periodogram of a periodic field stays
    its exact spectrum.

    Parameters
    ----------
    x : xarray.DataArray or numpy.ndarray
        Tile set ``(sample, [band,] y, x)``, NaN nodata.
    max_nodata : float
        Tiles with a larger fraction of NaN pixels (in any band) are left out: mean-filled gaps
        that large would flatten the spectrum.

    Returns
    -------
    frequency : numpy.ndarray
        ``(K,)`` annulus centres ``k df`` in cycles per pixel, ``k = 1 .. min(H, W) // 2``,
        ``df = 1 / min(H, W)``; annulus ``k`` holds ``|f|`` in ``[(k - 1/2) df, (k + 1/2) df)``.
    psd : numpy.ndarray
        ``(C, K)`` power per band, in the data's units squared times pixels (cycles per pixel
        squared being the frequency unit); the mean of ``P`` over all ``k`` is the variance.

    Raises
    ------
    GeodiffError
        Fewer than one tile left after ``max_nodata``, or an invalid tile set.
    """
    return _radial_psd(tile_set(x, min_tiles=1).tiles, max_nodata, "tile set")


def _radial_psd(t: np.ndarray, max_nodata: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    valid = np.isfinite(t)
    keep = (1.0 - valid.mean(axis=(2, 3))).max(axis=1) <= max_nodata
    if not keep.any():
        raise GeodiffError(
            f"every {name} tile has more than {max_nodata:.0%} nodata; raise max_nodata= or fill the "
            "gaps first (geodiff.tiling's NaN filling)"
        )
    t, valid = t[keep], valid[keep]
    n_valid = valid.sum(axis=(2, 3), keepdims=True)
    z = np.where(valid, t, 0.0)
    z = np.where(valid, z - z.sum(axis=(2, 3), keepdims=True) / n_valid, 0.0)
    power = (np.abs(scipy.fft.fft2(z, axes=(2, 3), workers=-1)) ** 2 / n_valid).mean(
        axis=0
    )  # (C, H, W)
    h, w = t.shape[-2:]
    df = 1.0 / min(h, w)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    k = np.floor(radius / df + 0.5).astype(np.int64).ravel()  # annulus index, 0 = DC
    n_k = min(h, w) // 2
    inside = (k >= 1) & (k <= n_k)
    counts = np.bincount(k[inside], minlength=n_k + 1)[1:]
    psd = np.stack(
        [np.bincount(k[inside], weights=p.ravel()[inside], minlength=n_k + 1)[1:] for p in power]
    )
    return np.arange(1, n_k + 1) * df, psd / counts


def psd_log_ratio(real, synthetic, *, max_nodata: float = 0.25) -> float | tuple[float, ...]:
    """RMS log10-ratio of the radially averaged power spectral densities of two tile sets.

    ``sqrt(mean_k log10(P_syn(k) / P_real(k))^2)`` over the radial frequency annuli ``k`` of
    :func:`radial_psd` (tile-averaged spectra). Dimensionless; 0 is identical spectra, lower is
    better; 0.1 is a typical factor of 10**0.1 ~ 1.26 in power. A spectrum that is zero where
    the other is not (a constant set) gives ``inf``.

    Parameters
    ----------
    real, synthetic : xarray.DataArray or numpy.ndarray
        Tile sets ``(sample, [band,] y, x)``, NaN nodata.
    max_nodata : float
        As in :func:`radial_psd`, for both sets.

    Returns
    -------
    float or tuple of float
        One value per band.
    """
    r, s, _ = tile_sets(real, synthetic, min_tiles=1)
    _, pr = _radial_psd(r, max_nodata, "real")
    _, ps = _radial_psd(s, max_nodata, "synthetic")
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log10(ps / pr)
    lr[(pr == 0) & (ps == 0)] = 0.0  # both flat: no difference in that annulus
    return band_result(np.sqrt(np.mean(lr**2, axis=1)))
