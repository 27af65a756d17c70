"""Distances between the feature distributions of real and synthetic tiles: FID, KID and
improved precision/recall.

Each function takes two feature arrays ``(n, dim)`` (e.g. from
:meth:`geodiff.metrics.features.FeatureExtractor.features`); :func:`feature_scores` takes tile sets
and an extractor. Features have no physical unit, so neither do the scores: they compare
distributions, and a number means something next to its real-vs-real floor (the same score
between two disjoint sets of real tiles).

Fewest samples per set:

=====================  ===========================  ==========================================
score                  fewest samples per set       why
=====================  ===========================  ==========================================
``fid``                ``dim + 1``                  a full-rank ``dim x dim`` covariance
``kid``                2 (``subset_size`` >= 2)     the unbiased MMD divides by ``m (m - 1)``
``precision_recall``   ``k + 1``                    a k-th neighbour besides the point itself
=====================  ===========================  ==========================================

These are the mathematical minimums. The estimates are biased or noisy long before them: FID's
bias falls roughly as ``1 / n`` (Chong & Forsyth 2020), so compare scores at equal ``n`` and
prefer several times ``dim`` samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from geodiff.errors import GeodiffError
from geodiff.metrics.checks import tile_sets

__all__ = ["KID", "FeatureScores", "PrecisionRecall", "feature_scores", "fid", "kid", "precision_recall"]


def _features(real, synthetic, *, min_samples: int, why: str) -> tuple[np.ndarray, np.ndarray]:
    """Both feature sets as float64 ``(n, dim)``, refusing what no score can use."""
    pair = []
    for name, f in (("real", real), ("synthetic", synthetic)):
        f = np.asarray(f, dtype=np.float64)
        if f.ndim != 2:
            raise GeodiffError(f"{name} features have shape {f.shape}; pass an (n, dim) array, "
                               "e.g. FeatureExtractor.features(tiles)")
        if not np.isfinite(f).all():
            raise GeodiffError(f"{int((~np.isfinite(f)).any(axis=1).sum())} {name} feature vector(s) contain NaN "
                               "or inf; features of finite tiles are finite, so check the extractor's input")
        if len(f) < min_samples:
            raise GeodiffError(f"{name} has {len(f)} feature vector(s) but this score needs at least "
                               f"{min_samples} ({why}); pass more tiles")
        pair.append(f)
    if pair[0].shape[1] != pair[1].shape[1]:
        raise GeodiffError(f"real features have {pair[0].shape[1]} dimensions but synthetic ones "
                           f"{pair[1].shape[1]}; compute both with the same feature extractor")
    return pair[0], pair[1]


def fid(real_features, synthetic_features) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017).

    .. math::

        \\mathrm{FID} = \\lVert \\mu_r - \\mu_s \\rVert^2
        + \\operatorname{tr}\\left(\\Sigma_r + \\Sigma_s - 2 (\\Sigma_r \\Sigma_s)^{1/2}\\right)

    with the sample means ``mu`` and covariances ``Sigma`` (``n - 1`` normalisation) of each set.
    ``(Sigma_r Sigma_s)^(1/2)`` is computed by ``scipy.linalg.sqrtm``; rounding gives it tiny
    imaginary parts, which are dropped, and a singular product gets ``1e-6`` added to both
    diagonals first (as in Heusel et al.'s reference code).

    Parameters
    ----------
    real_features, synthetic_features : array_like
        ``(n_real, dim)`` and ``(n_synthetic, dim)``; each needs more than ``dim`` rows, since
        ``n`` samples span at most ``n - 1`` dimensions and a singular covariance has no
        meaningful square root.

    Returns
    -------
    float
        Squared feature units, >= 0; lower is better, 0 for identical Gaussians.
    """
    dim = np.shape(real_features)[-1] if np.ndim(real_features) == 2 else 0
    r, s = _features(real_features, synthetic_features, min_samples=dim + 1,
                     why=f"a full-rank covariance of {dim} features needs more samples than features")
    mu_r, mu_s = r.mean(0), s.mean(0)
    cov_r, cov_s = np.cov(r, rowvar=False), np.cov(s, rowvar=False)
    root = scipy.linalg.sqrtm(cov_r @ cov_s)
    if not np.isfinite(root).all():
        offset = 1e-6 * np.eye(len(cov_r))
        root = scipy.linalg.sqrtm((cov_r + offset) @ (cov_s + offset))
    if np.iscomplexobj(root):
        # The eigenvalues of a product of two covariances are real and >= 0; imaginary parts
        # much larger than rounding mean the covariances are too ill-conditioned to trust.
        scale = max(np.trace(cov_r), np.trace(cov_s), np.finfo(float).tiny)
        if np.abs(root.imag).max() > 1e-3 * scale:
            raise GeodiffError("the feature covariances are too ill-conditioned for FID (the matrix square root "
                               "has large imaginary parts); pass more tiles than features, several times more")
        root = root.real
    value = np.sum((mu_r - mu_s) ** 2) + np.trace(cov_r) + np.trace(cov_s) - 2.0 * np.trace(root)
    return float(max(value, 0.0))


@dataclass(frozen=True)
class KID:
    """Kernel inception distance: mean and standard deviation over random subsets."""

    mean: float
    std: float


def kid(real_features, synthetic_features, *, subsets: int = 100, subset_size: int | None = None,
        seed: int = 0) -> KID:
    """Kernel inception distance (Bińkowski et al. 2018, *Demystifying MMD GANs*).

    The unbiased estimate of the squared maximum mean discrepancy between ``m`` real features
    ``x`` and ``m`` synthetic features ``y`` of dimension ``d``, with the cubic polynomial kernel
    ``k(a, b) = (a . b / d + 1)^3``:

    .. math::

        \\mathrm{MMD}^2_u = \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(x_i, x_j)
        + \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(y_i, y_j)
        - \\frac{2}{m^2} \\sum_{i, j} k(x_i, y_j)

    averaged over ``subsets`` random subsets of ``m = subset_size`` features drawn without
    replacement from each set. Unlike FID it is unbiased, so its value at small ``n`` is
    comparable to that at large ``n``, and it can be slightly negative.

    Parameters
    ----------
    real_features, synthetic_features : array_like
        ``(n_real, dim)`` and ``(n_synthetic, dim)``, at least 2 rows each.
    subsets
        Number of random subsets (Bińkowski et al. use 100).
    subset_size
        Features per subset, at least 2; default half the smaller set, at most 1000 (1000 as in
        Bińkowski et al.). Subsets as large as a whole set would all be that set, and their
        spread (``std``) would say nothing.
    seed
        Seeds the subset draws.

    Returns
    -------
    KID
        ``mean`` and ``std`` (population) of MMD^2 over the subsets; lower is better, ~0 for
        sets from one distribution.
    """
    r, s = _features(real_features, synthetic_features, min_samples=2,
                     why="the unbiased MMD needs two samples per set")
    if not isinstance(subsets, int) or subsets < 1:
        raise GeodiffError(f"subsets must be a positive integer, got {subsets!r}")
    m = max(2, min(1000, len(r) // 2, len(s) // 2)) if subset_size is None else subset_size
    if not isinstance(m, int) or m < 2 or m > min(len(r), len(s)):
        raise GeodiffError(f"subset_size must be an integer from 2 to the smaller set's size "
                           f"({min(len(r), len(s))}), got {subset_size!r}")
    rng = np.random.default_rng(seed)
    dim = r.shape[1]
    values = np.empty(subsets)
    for i in range(subsets):
        x = r[rng.choice(len(r), m, replace=False)]
        y = s[rng.choice(len(s), m, replace=False)]
        k_xx, k_yy, k_xy = ((a @ b.T / dim + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        values[i] = ((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1)) + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
                     - 2.0 * k_xy.sum() / m**2)
    return KID(float(values.mean()), float(values.std()))


@dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision (fidelity) and recall (coverage) of synthetic features."""

    precision: float
    recall: float


def _inside(points: np.ndarray, centres: np.ndarray, k: int) -> np.ndarray:
    """Whether each point lies in at least one ball around ``centres`` of radius the distance
    from the centre to its k-th nearest other centre."""
    from sklearn.metrics import pairwise_distances_chunked
    from sklearn.neighbors import NearestNeighbors

    # Column 0 of the k+1 neighbours is the centre itself.
    radii = NearestNeighbors(n_neighbors=k + 1).fit(centres).kneighbors(centres)[0][:, k]
    chunks = pairwise_distances_chunked(points, centres, reduce_func=lambda d, _: (d <= radii).any(axis=1))
    return np.concatenate(list(chunks))


def precision_recall(real_features, synthetic_features, *, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    The real manifold is the union of balls around every real feature ``r`` with radius
    ``NND_k(r)``, the distance to its k-th nearest real neighbour; the synthetic manifold
    likewise. With ``f(x, S) = 1`` when ``x`` lies in the manifold of ``S``:

    .. math::

        \\mathrm{precision} = \\frac{1}{n_s} \\sum_{s} f(s, R), \\qquad
        \\mathrm{recall} = \\frac{1}{n_r} \\sum_{r} f(r, S)

    Precision is the share of synthetic tiles that look like some real tile (fidelity); recall
    the share of real tiles that the synthetic set reproduces (diversity, mode coverage).

    Parameters
    ----------
    real_features, synthetic_features : array_like
        ``(n_real, dim)`` and ``(n_synthetic, dim)``, at least ``k + 1`` rows each.
    k
        Neighbour defining the radii (3, as recommended by Kynkäänniemi et al.).

    Returns
    -------
    PrecisionRecall
        Fractions in [0, 1]; higher is better. Real-vs-real sets score below 1 since the balls
        of a finite sample miss part of its own distribution.
    """
    if not isinstance(k, int) or k < 1:
        raise GeodiffError(f"k must be a positive integer, got {k!r}")
    r, s = _features(real_features, synthetic_features, min_samples=k + 1,
                     why=f"each feature needs a {k}-th nearest neighbour besides itself")
    return PrecisionRecall(float(_inside(s, r, k).mean()), float(_inside(r, s, k).mean()))


@dataclass(frozen=True)
class FeatureScores:
    """FID, KID and improved precision/recall of one pair of tile sets, on one extractor."""

    fid: float
    kid_mean: float
    kid_std: float
    precision: float
    recall: float
    extractor_id: str


def feature_scores(extractor, real, synthetic, *, k: int = 3, kid_subsets: int = 100, seed: int = 0) -> FeatureScores:
    """:func:`fid`, :func:`kid` and :func:`precision_recall` of two tile sets on the features of
    ``extractor`` (a :class:`~geodiff.metrics.features.FeatureExtractor`).

    Parameters
    ----------
    extractor
        Trained on real tiles of the same size, bands and units (not on ``real`` itself, if
        ``real`` is held out for the real-vs-real floor).
    real, synthetic : xarray.DataArray or numpy.ndarray
        ``(sample, [band,] y, x)`` in physical units, NaN nodata; each needs more tiles than
        ``extractor.dim`` (FID's full-rank covariance).
    k, kid_subsets, seed
        As for :func:`precision_recall` and :func:`kid`.

    Returns
    -------
    FeatureScores
        The scores and the extractor's id (scores are comparable only on one extractor).
    """
    dim = extractor.dim
    tile_sets(real, synthetic, min_tiles=dim + 1,
              why=f"FID needs more tiles than the {dim} features for a full-rank covariance")
    # The originals, not tile_sets' arrays: the extractor checks their units against its own.
    f_r, f_s = extractor.features(real), extractor.features(synthetic)
    k_score = kid(f_r, f_s, subsets=kid_subsets, seed=seed)
    pr = precision_recall(f_r, f_s, k=k)
    return FeatureScores(fid(f_r, f_s), k_score.mean, k_score.std, pr.precision, pr.recall, extractor.extractor_id)
