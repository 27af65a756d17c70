"""FID, KID and improved precision/recall against closed forms, a brute-force computation and
torchmetrics as an independent implementation."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import cdist
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from geodiff.errors import GeodiffError
from geodiff.metrics.fid import KID, PrecisionRecall, fid, kid, precision_recall


def _gaussian_fid(mu1, cov1, mu2, cov2) -> float:
    """Closed form through the symmetric root: tr (S1^1/2 S2 S1^1/2)^1/2 = tr (S1 S2)^1/2."""
    root1 = scipy.linalg.sqrtm(cov1).real
    eig = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.sum(np.sqrt(np.clip(eig, 0, None))))


def test_fid_of_diagonal_gaussians_matches_the_closed_form():
    # Diagonal covariances: FID = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(0)
    a, b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, -0.5, 0.0])
    x = mu1 + rng.normal(size=(100_000, 3)) * np.sqrt(a)
    y = mu2 + rng.normal(size=(100_000, 3)) * np.sqrt(b)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fid(x, y) == pytest.approx(expected, abs=0.03)


def test_fid_of_correlated_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(1)
    d = 5
    l1, l2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    cov1, cov2 = l1 @ l1.T + 0.1 * np.eye(d), l2 @ l2.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    x = rng.multivariate_normal(mu1, cov1, 200_000)
    y = rng.multivariate_normal(mu2, cov2, 200_000)
    expected = _gaussian_fid(mu1, cov1, mu2, cov2)
    assert fid(x, y) == pytest.approx(expected, rel=0.02)
    # One set against itself: exactly equal Gaussians.
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to fetch weights (an Inception download) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


class _Identity(torch.nn.Module):
    """Feature network for torchmetrics that passes precomputed features through."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x):
        return x


def test_fid_and_kid_match_torchmetrics(no_network):
    rng = np.random.default_rng(2)
    d = 8
    real = rng.normal(size=(300, d)) @ rng.normal(size=(d, d))
    synthetic = 0.5 + rng.normal(size=(200, d)) @ rng.normal(size=(d, d))

    oracle = FrechetInceptionDistance(feature=_Identity(d))
    oracle.update(torch.from_numpy(real), real=True)
    oracle.update(torch.from_numpy(synthetic), real=False)
    assert fid(real, synthetic) == pytest.approx(oracle.compute().item(), rel=1e-6)

    # One subset of every sample: the MMD estimate is then free of torchmetrics' own draws.
    with pytest.warns(UserWarning):  # torchmetrics warns that KID keeps all features in memory
        kid_oracle = KernelInceptionDistance(feature=_Identity(d), subsets=1, subset_size=200)
    kid_oracle.update(torch.from_numpy(real[:200]), real=True)
    kid_oracle.update(torch.from_numpy(synthetic), real=False)
    expected_mean, _ = kid_oracle.compute()
    ours = kid(real[:200], synthetic, subsets=1, subset_size=200)
    assert ours.mean == pytest.approx(expected_mean.item(), rel=1e-6)
    assert ours.std == 0.0


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same = kid(a, b, subsets=50, subset_size=100, seed=0)
    assert isinstance(same, KID)
    assert abs(same.mean) < 3 * same.std
    shifted = kid(a, b + 0.5, subsets=50, subset_size=100, seed=0)
    assert shifted.mean > 10 * same.std
    assert kid(a, b, subsets=5, subset_size=50, seed=1) == kid(a, b, subsets=5, subset_size=50, seed=1)
    assert kid(a, b, subsets=5, subset_size=50, seed=1) != kid(a, b, subsets=5, subset_size=50, seed=2)


def _brute_force_pr(real, synthetic, k):
    """Kynkaanniemi et al.'s definition written out with a full distance matrix."""
    def inside(points, centres):
        radii = np.sort(cdist(centres, centres), axis=1)[:, k]
        return (cdist(points, centres) <= radii[None, :]).any(axis=1).mean()

    return inside(synthetic, real), inside(real, synthetic)


def test_precision_recall_matches_the_definition():
    rng = np.random.default_rng(4)
    real, synthetic = rng.normal(size=(150, 4)), 0.4 + 1.3 * rng.normal(size=(120, 4))
    for k in (1, 3, 5):
        result = precision_recall(real, synthetic, k=k)
        assert isinstance(result, PrecisionRecall)
        assert (result.precision, result.recall) == pytest.approx(_brute_force_pr(real, synthetic, k))


def test_precision_recall_identical_far_apart_and_half_the_modes():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 2))
    assert precision_recall(x, x) == PrecisionRecall(1.0, 1.0)
    same = precision_recall(x, rng.normal(size=(500, 2)))
    assert same.precision > 0.9 and same.recall > 0.9
    assert precision_recall(x, x + 100.0) == PrecisionRecall(0.0, 0.0)

    # Four well separated modes; the synthetic set has only two of them.
    modes = 20.0 * np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    real = np.concatenate([m + rng.normal(size=(250, 2)) for m in modes])
    half = np.concatenate([m + rng.normal(size=(250, 2)) for m in modes[:2]])
    result = precision_recall(real, half)
    assert result.precision > 0.9
    assert result.recall == pytest.approx(0.5, abs=0.05)


def test_bad_features_are_refused():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(50, 8))
    with pytest.raises(GeodiffError, match="more samples than features"):
        fid(x[:8], x)
    with pytest.raises(GeodiffError, match="8 dimensions but synthetic ones 7"):
        fid(x, x[:, :7])
    with pytest.raises(GeodiffError, match="8 dimensions but synthetic ones 7"):
        kid(x, x[:, :7])
    bad = x.copy()
    bad[3, 2] = np.nan
    for score in (fid, kid, precision_recall):
        with pytest.raises(GeodiffError, match="1 synthetic feature vector"):
            score(x, bad)
    with pytest.raises(GeodiffError, match=r"\(n, dim\) array"):
        fid(x, x[0])
    with pytest.raises(GeodiffError, match="needs at least 4"):
        precision_recall(x, x[:3], k=3)
    with pytest.raises(GeodiffError, match="subset_size"):
        kid(x, x, subset_size=51)
    with pytest.raises(GeodiffError, match="k must be"):
        precision_recall(x, x, k=0)
