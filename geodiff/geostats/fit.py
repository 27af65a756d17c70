"""Weighted least-squares fits of variogram models to empirical semivariograms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import xarray as xr

from geodiff.errors import GeodiffError
from geodiff.geostats.models import MODELS, Model

__all__ = ["FitResult", "fit_model"]

_WEIGHTS = ("npairs", "cressie", None)


@dataclass(frozen=True)
class FitResult:
    """A fitted model with its uncertainties; callable on lags like the model itself.

    Attributes
    ----------
    model : Model
        The model with fitted parameters.
    stderr : dict
        One-sigma standard error per free parameter (from the Jacobian at the optimum, scaled by
        the residual variance, as ``scipy.optimize.curve_fit``'s default).
    cov : numpy.ndarray
        Covariance matrix of the free parameters, in the order of ``free``.
    free : tuple of str
        Names of the fitted parameters.
    weights : str or None
        Weighting used.
    cost : float
        Weighted residual sum of squares at the optimum.
    """

    model: Model
    stderr: dict[str, float]
    cov: np.ndarray
    free: tuple[str, ...]
    weights: str | None
    cost: float

    def __call__(self, h) -> np.ndarray:
        return self.model(h)

    def covariance(self, h) -> np.ndarray:
        return self.model.covariance(h)

    @property
    def params(self) -> dict[str, float]:
        return self.model.params

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{k}={v:.6g}" + (f" ± {self.stderr[k]:.2g}" if k in self.stderr else "")
            for k, v in self.params.items()
        )
        return f"FitResult({type(self.model).__name__}: {parts}; weights={self.weights})"


def _template(model: Model | str) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, str) and model.lower() in MODELS:
        return MODELS[model.lower()]()
    raise GeodiffError(
        f"unknown model {model!r}; choose a Model instance or one of {sorted(MODELS)}"
    )


def _initial_and_bounds(
    name: str, lags: np.ndarray, gamma: np.ndarray, n_sills: int
) -> tuple[float, float, float]:
    """Data-driven starting value and bounds for a parameter named ``name``."""
    gmax = float(np.max(gamma))
    hmax = float(np.max(lags))
    if name == "sill":
        return gmax / n_sills, 0.0, 10.0 * gmax
    if name == "scale":
        return hmax / 3.0, 1e-6 * hmax, 100.0 * hmax
    if name == "nu":
        return 1.0, 0.05, 50.0
    if name == "alpha":
        return 1.0, 1e-3, 2.0
    if name == "exponent":
        return 1.0, 1e-3, 2.0 - 1e-9
    raise GeodiffError(f"no default start for parameter {name!r}; pass p0")


def fit_model(
    model: Model | str,
    lags: np.ndarray | xr.Dataset,
    gamma: np.ndarray | None = None,
    npairs: np.ndarray | None = None,
    *,
    weights: str | None = "npairs",
    p0: dict[str, float] | None = None,
    fixed: Sequence[str] = (),
) -> FitResult:
    """Fit ``model`` to an empirical semivariogram by weighted least squares.

    Minimises ``sum w_k (gamma_k - model(h_k))^2`` with ``w = npairs`` (``weights="npairs"``),
    or Cressie's ``sum N_k (gamma_k / model(h_k) - 1)^2`` (``weights="cressie"``; Cressie 1985,
    Math. Geol. 17(5), 563-586: weights ``N / model^2`` evaluated at the current model), or
    unweighted (``None``), with ``scipy.optimize.least_squares`` (trust-region reflective, all
    parameters bounded to physical ranges).

    Parameters
    ----------
    model : Model or str
        Template: a model instance (its values hold the ``fixed`` parameters and are tried as
        one start beside data-driven ones) or a name in :data:`geodiff.geostats.models.MODELS`.
        Sums (e.g. ``Spherical() + Nugget()``) are fitted jointly.
    lags : array or xarray.Dataset
        Lag distances (bin centres); or a :func:`semivariogram` Dataset with ``lag``, ``gamma``
        and ``npairs`` (1-D after selecting leading dims), in which case ``gamma``/``npairs`` are
        taken from it.
    gamma, npairs : array, optional
        Semivariances and pair counts per lag. Empty bins (NaN gamma or zero pairs) are skipped.
    weights : {"npairs", "cressie", None}
    p0 : dict, optional
        Starting values by parameter name (``"0.sill"`` style for sums).
    fixed : sequence of str
        Parameters held at the template's values (e.g. ``("nu",)`` for a Matérn).

    Returns
    -------
    FitResult
    """
    if weights not in _WEIGHTS:
        raise GeodiffError(f"weights must be one of {_WEIGHTS}, got {weights!r}")
    if isinstance(lags, xr.Dataset):
        ds = lags
        if ds.gamma.ndim != 1:
            raise GeodiffError(
                "fit one variogram at a time: select the leading dims first (e.g. ds.isel(sample=0))"
            )
        lags, gamma, npairs = ds.lag.values, ds.gamma.values, ds.npairs.values
    lags = np.asarray(lags, dtype=np.float64)
    gamma = np.asarray(gamma, dtype=np.float64)
    npairs = np.ones_like(gamma) if npairs is None else np.asarray(npairs, dtype=np.float64)
    ok = np.isfinite(gamma) & np.isfinite(lags) & (npairs > 0)
    lags, gamma, npairs = lags[ok], gamma[ok], npairs[ok]
    explicit = isinstance(model, Model)
    template = _template(model)
    names = list(template.params)
    free = tuple(n for n in names if n not in set(fixed))
    if len(gamma) <= len(free):
        raise GeodiffError(
            f"{len(gamma)} non-empty lag bins cannot determine {len(free)} parameters; use more bins or fix some"
        )
    n_sills = max(1, sum(n.rsplit(".", 1)[-1] == "sill" for n in names))
    x0, lo, hi = [], [], []
    for n in free:
        start, a, b = _initial_and_bounds(n.rsplit(".", 1)[-1], lags, gamma, n_sills)
        if p0 and n in p0:
            start = p0[n]
        x0.append(float(np.clip(start, a, b)))
        lo.append(a)
        hi.append(b)
    sw = np.sqrt(npairs) if weights is not None else np.ones_like(gamma)

    def build(x: np.ndarray) -> Model:
        return template.with_params(dict(zip(free, map(float, x))))

    def residuals(x: np.ndarray) -> np.ndarray:
        m = build(x)(lags)
        if weights == "cressie":
            return sw * (gamma / np.maximum(m, 1e-300) - 1.0)
        return sw * (gamma - m)

    # Length scales have flat directions (a spherical range below the first lag), so a few
    # starting scales are tried and the best optimum kept.
    is_scale = np.array([n.rsplit(".", 1)[-1] == "scale" for n in free])
    starts = [np.asarray(x0)]
    for f in (0.3, 3.0) if is_scale.any() else ():
        starts.append(np.clip(np.where(is_scale, np.asarray(x0) * f, x0), lo, hi))
    if explicit:
        starts.append(np.clip([template.params[n] for n in free], lo, hi))
    sol = min(
        (
            scipy.optimize.least_squares(
                residuals,
                x,
                bounds=(lo, hi),
                method="trf",
                xtol=1e-15,
                ftol=1e-15,
                gtol=1e-15,
                max_nfev=5000,
            )
            for x in starts
        ),
        key=lambda r: r.cost,
    )
    dof = max(len(gamma) - len(free), 1)
    rss = float(np.sum(sol.fun**2))
    jtj = sol.jac.T @ sol.jac
    try:
        cov = np.linalg.inv(jtj) * rss / dof
    except np.linalg.LinAlgError:
        cov = np.full((len(free), len(free)), np.inf)
    stderr = {n: float(np.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(free)}
    return FitResult(build(sol.x), stderr, cov, free, weights, rss)
