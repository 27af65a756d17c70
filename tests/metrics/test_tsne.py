"""The t-SNE map: two labelled point sets of the right sizes, separate when the features are."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from geodiff.errors import GeodiffError
from geodiff.metrics.tsne import tsne_plot


def _points(ax) -> dict[str, np.ndarray]:
    return {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections}


def test_two_labelled_sets_of_the_right_sizes_apart_when_the_features_are():
    rng = np.random.default_rng(0)
    real, synthetic = rng.normal(size=(60, 16)), 6.0 + rng.normal(size=(40, 16))
    fig, ax = tsne_plot(real, synthetic, seed=0)
    points = _points(ax)
    assert fig is ax.figure and set(points) == {"real", "synthetic"}
    assert points["real"].shape == (60, 2) and points["synthetic"].shape == (40, 2)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["real", "synthetic"]
    # Far-apart feature sets stay apart on the map: each point's map neighbours share its set.
    xy = np.concatenate([points["real"], points["synthetic"]])
    labels = np.r_[np.zeros(60), np.ones(40)]
    assert KNeighborsClassifier(5).fit(xy, labels).score(xy, labels) == 1.0
    # Same seed, same map.
    again = _points(tsne_plot(real, synthetic, seed=0)[1])
    np.testing.assert_array_equal(again["real"], points["real"])
    plt.close("all")


def test_draws_on_given_axes():
    rng = np.random.default_rng(1)
    fig, axes = plt.subplots(1, 2)
    out_fig, out_ax = tsne_plot(rng.normal(size=(10, 4)), rng.normal(size=(10, 4)), ax=axes[1])
    assert out_fig is fig and out_ax is axes[1] and len(axes[0].collections) == 0
    plt.close(fig)


def test_bad_features_are_refused():
    x = np.zeros((10, 4))
    with pytest.raises(GeodiffError, match="4 dimensions but synthetic ones 3"):
        tsne_plot(x, np.zeros((10, 3)))
    with pytest.raises(GeodiffError, match="NaN"):
        tsne_plot(x, np.full((10, 4), np.nan))
    with pytest.raises(GeodiffError, match="at least 4 points"):
        tsne_plot(x[:2], x[:1])
    with pytest.raises(GeodiffError, match=r"\(n, dim\)"):
        tsne_plot(x, x[0])
