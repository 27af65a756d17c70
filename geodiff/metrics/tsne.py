"""A t-SNE map of real and synthetic feature vectors (matplotlib, imported on use).

t-SNE (van der Maaten & Hinton 2008) places points in the plane so that neighbours in feature
space stay neighbours; GANInSAR (Zhou et al. 2024) shows real and generated InSAR patches this
way. A synthetic set that covers the real one mixes with it; islands of one colour are modes the
other set lacks (or invents). Distances between clusters on the map mean little: read it
together with precision and recall (:func:`geodiff.metrics.fid.precision_recall`).
"""

from __future__ import annotations

import numpy as np

from geodiff.errors import GeodiffError

__all__ = ["tsne_plot"]

_MIN_POINTS = 4  # perplexity must be below the number of points, and >= 1 to be meaningful


def tsne_plot(real_features, synthetic_features, *, seed: int = 0, perplexity: float | None = None, ax=None):
    """Scatter plot of a joint 2-D t-SNE embedding of real and synthetic features.

    Both sets are embedded together (scikit-learn's ``TSNE``, PCA initialisation), so their
    positions are comparable, then drawn as two labelled point sets, ``"real"`` and
    ``"synthetic"``.

    Parameters
    ----------
    real_features, synthetic_features : array_like
        ``(n_real, dim)`` and ``(n_synthetic, dim)`` finite features of one extractor; together at
        least 4 points.
    seed
        Seeds t-SNE's optimisation.
    perplexity
        Effective number of neighbours; default ``min(30, (n - 1) / 3)`` for ``n`` points in all
        (scikit-learn requires it below ``n``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure otherwise.

    Returns
    -------
    (matplotlib.figure.Figure, matplotlib.axes.Axes)

    Raises
    ------
    geodiff.errors.GeodiffError
        Feature arrays that are not 2-D, differ in dimension, hold NaN or inf, or have too few
        points.
    """
    from sklearn.manifold import TSNE

    sets = [np.asarray(f, dtype=np.float64) for f in (real_features, synthetic_features)]
    for name, f in zip(("real", "synthetic"), sets):
        if f.ndim != 2 or len(f) == 0:
            raise GeodiffError(f"{name} features have shape {f.shape}; pass a non-empty (n, dim) array")
        if not np.isfinite(f).all():
            raise GeodiffError(f"{name} features contain NaN or inf; t-SNE needs finite features")
    real, synthetic = sets
    if real.shape[1] != synthetic.shape[1]:
        raise GeodiffError(f"real features have {real.shape[1]} dimensions but synthetic ones "
                           f"{synthetic.shape[1]}; compute both with the same feature extractor")
    n = len(real) + len(synthetic)
    if n < _MIN_POINTS:
        raise GeodiffError(f"t-SNE needs at least {_MIN_POINTS} points in all, got {n}")
    perplexity = min(30.0, (n - 1) / 3) if perplexity is None else perplexity
    if not 0 < perplexity < n:
        raise GeodiffError(f"perplexity must be positive and below the {n} points, got {perplexity}")
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(np.concatenate(sets))

    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    else:
        fig = ax.figure
    ax.scatter(*xy[:len(real)].T, s=8, color="C0", alpha=0.7, label="real")
    ax.scatter(*xy[len(real):].T, s=8, color="C1", alpha=0.7, label="synthetic")
    ax.set(title=f"t-SNE of features: {len(real)} real, {len(synthetic)} synthetic", xticks=[], yticks=[])
    ax.legend()
    return fig, ax
