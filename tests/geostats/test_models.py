"""Variogram models and fits against closed forms, scikit-gstat and the fields they generate."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skgstat

from geodiff.errors import GeodiffError
from geodiff.geostats.fields import gaussian_random_field
from geodiff.geostats.fit import fit_model
from geodiff.geostats.models import (
    Exponential,
    Gaussian,
    Matern,
    Nugget,
    Power,
    Spherical,
    Stable,
)
from geodiff.geostats.variogram import semivariogram

H = np.array([0.0, 0.3, 1.0, 2.5, 7.0])


def test_closed_forms_against_scikit_gstat_functions():
    # scikit-gstat parametrises by effective range r; convert to geodiff's length scales.
    for h in H[1:]:
        assert Exponential(2.0, 1.5)(h) == pytest.approx(skgstat.models.exponential(h, 4.5, 2.0))
        assert Gaussian(2.0, 1.5)(h) == pytest.approx(skgstat.models.gaussian(h, 3.0, 2.0))
        assert Spherical(2.0, 4.0)(h) == pytest.approx(skgstat.models.spherical(h, 4.0, 2.0))
        assert Stable(2.0, 1.5, 0.7)(h) == pytest.approx(
            skgstat.models.stable(h, 1.5 * 3 ** (1 / 0.7), 2.0, 0.7)
        )
        assert Matern(2.0, 1.5, 1.7)(h) == pytest.approx(
            skgstat.models.matern(h, 1.5 * 2 * np.sqrt(2), 2.0, 1.7)
        )


def test_matern_special_cases_and_sums():
    np.testing.assert_allclose(
        Matern(1.0, 2.0, 0.5)(H), Exponential(1.0, 2.0)(H), rtol=1e-12, atol=1e-15
    )
    # nu = 3/2: 1 - (1 + sqrt3 h/a) exp(-sqrt3 h/a)
    x = np.sqrt(3) * H / 2.0
    np.testing.assert_allclose(
        Matern(1.0, 2.0, 1.5)(H), 1 - (1 + x) * np.exp(-x), rtol=1e-12, atol=1e-15
    )
    m = Spherical(1.0, 3.0) + Nugget(0.5) + Power(0.1, 1.5)
    np.testing.assert_allclose(
        m(H), Spherical(1.0, 3.0)(H) + np.where(H > 0, 0.5, 0) + 0.1 * H**1.5
    )
    assert not m.bounded and np.isinf(m.sill)
    with pytest.raises(GeodiffError, match="power_law_field"):
        m.covariance(H)
    c = Exponential(2.0, 1.0) + Nugget(0.5)
    assert c.sill == 2.5 and c.covariance(0.0) == 2.5
    assert Exponential(1.0, 2.0).effective_range == pytest.approx(2.0 * np.log(20.0))
    assert Gaussian(1.0, 2.0).effective_range == pytest.approx(2.0 * np.sqrt(np.log(20.0)))
    assert Spherical(1.0, 2.0).effective_range < 2.0


def _skgstat_case():
    n = 40
    f = gaussian_random_field((n, n), Exponential(2.0, 2.5), seed=0, padding=4)
    f = f + 0.4 * np.random.default_rng(1).normal(size=f.shape)
    yy, xx = np.meshgrid(np.arange(n * 1.0), np.arange(n * 1.0), indexing="ij")
    return np.column_stack([xx.ravel(), yy.ravel()]), f.ravel()


SK_CASES = [
    ("exponential", False, lambda p: {"sill": p[1], "scale": p[0] / 3}),
    ("spherical", False, lambda p: {"sill": p[1], "scale": p[0]}),
    ("gaussian", False, lambda p: {"sill": p[1], "scale": p[0] / 2}),
    ("stable", False, lambda p: {"sill": p[1], "scale": p[0] / 3 ** (1 / p[2]), "alpha": p[2]}),
    ("matern", False, lambda p: {"sill": p[1], "scale": p[0] / (2 * np.sqrt(2)), "nu": p[2]}),
    ("spherical", True, lambda p: {"0.sill": p[1], "0.scale": p[0], "1.sill": p[2]}),
    ("gaussian", True, lambda p: {"0.sill": p[1], "0.scale": p[0] / 2, "1.sill": p[2]}),
]


@pytest.mark.parametrize("name, nugget, convert", SK_CASES)
def test_weighted_fit_matches_scikit_gstat(name, nugget, convert):
    coords, values = _skgstat_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = skgstat.Variogram(
            coords, values, model=name, bin_func="even", n_lags=15, maxlag=15.5, use_nugget=nugget
        )
        v.fit(force=True, method="trf", sigma=1 / np.sqrt(v.bin_count))
    expected = convert(v.parameters)
    template = {
        "exponential": Exponential,
        "spherical": Spherical,
        "gaussian": Gaussian,
        "stable": Stable,
        "matern": Matern,
    }[name]()
    if nugget:
        template = template + Nugget()
    # the same empirical points (scikit-gstat's bins are upper edges; it fits at them)
    res = fit_model(template, v.bins, v.experimental, v.bin_count, weights="npairs")
    for k, val in expected.items():
        assert res.params[k] == pytest.approx(val, rel=1e-2), k
    # standard errors: scikit-gstat keeps curve_fit's covariance of its own parameters
    if not nugget and name in ("exponential", "spherical", "gaussian"):
        sd = np.sqrt(np.diag(v.cov))
        scale_div = {"exponential": 3, "spherical": 1, "gaussian": 2}[name]
        assert res.stderr["scale"] == pytest.approx(sd[0] / scale_div, rel=1e-2)
        assert res.stderr["sill"] == pytest.approx(sd[1], rel=1e-2)


@pytest.mark.parametrize("weights", ["npairs", "cressie", None])
def test_fit_recovers_exact_parameters(weights):
    truth = Matern(3.0, 40.0, 1.2) + Nugget(0.4)
    lags = np.linspace(5, 300, 25)
    npairs = np.linspace(2000, 100, 25)
    res = fit_model(Matern() + Nugget(), lags, truth(lags), npairs, weights=weights)
    for k, v in truth.params.items():
        assert res.params[k] == pytest.approx(v, rel=1e-6)
    fixed = fit_model(
        Matern(nu=1.2) + Nugget(), lags, truth(lags), npairs, weights=weights, fixed=("0.nu",)
    )
    assert fixed.free == ("0.sill", "0.scale", "1.sill")
    np.testing.assert_allclose(fixed(lags), truth(lags), rtol=1e-8)


def test_fit_from_dataset_and_errors():
    rng = np.random.default_rng(2)
    f = gaussian_random_field((64, 64), Exponential(1.0, 4.0), size=2, seed=rng, padding=4)
    ds = semivariogram(f, bins=16)
    res = fit_model("exponential", ds.isel(dim_0=0))
    assert 2.0 < res.params["scale"] < 8.0 and 0.5 < res.params["sill"] < 1.5
    with pytest.raises(GeodiffError, match="one variogram"):
        fit_model("exponential", ds)
    with pytest.raises(GeodiffError, match="unknown model"):
        fit_model("cubic", ds.isel(dim_0=0))
    with pytest.raises(GeodiffError, match="cannot determine"):
        fit_model("stable", [1.0, 2.0], [0.1, 0.2], [5, 5])


def test_grf_reproduces_model_variogram():
    """Many realisations: mean empirical variogram equals the model (finite-domain corrected)."""
    model = Spherical(2.0, 12.0) + Nugget(0.3)
    spacing = (1.0, 1.5)
    f = gaussian_random_field((48, 40), model, spacing=spacing, size=300, seed=11, padding=3)
    ds = semivariogram(f, spacing=spacing, bins=np.linspace(0, 24, 9))
    mean = ds.gamma.mean("dim_0").values
    # E[(z_i - z_j)^2] / 2 = gamma(h_ij) pair by pair, so the ensemble mean of a bin approaches
    # the model averaged over that bin's pairs, within sampling error.
    ny, nx = 48, 40
    edges = np.linspace(0, 24, 9)
    expected = np.empty(8)
    for b in range(8):
        hy, hx = np.meshgrid(np.arange(0, ny), np.arange(-nx + 1, nx), indexing="ij")
        half = (hy > 0) | ((hy == 0) & (hx > 0))
        d = np.hypot(hy * 1.0, hx * 1.5)
        sel = half & (d >= edges[b]) & (d < edges[b + 1])
        w = (ny - hy[sel]) * (nx - np.abs(hx[sel]))
        expected[b] = np.sum(w * model(d[sel])) / w.sum()
    sd = ds.gamma.std("dim_0").values / np.sqrt(300)
    assert np.all(np.abs(mean - expected) < 4 * sd + 1e-3)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Exponential(1.0, 0.0),
        lambda: Spherical(1.0, -2.0),
        lambda: Stable(1.0, 1.0, 2.5),
        lambda: Matern(1.0, 1.0, 0.0),
        lambda: Power(1.0, 2.0),
        lambda: Gaussian(1.0, 1.0).with_params({"scale": 0.0}),
    ],
)
def test_invalid_parameters_rejected_when_built(build):
    with pytest.raises(GeodiffError):
        build()
