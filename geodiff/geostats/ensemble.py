"""Ensembles of semivariograms: percentile bands, bootstrap intervals, real-vs-synthetic scores.

(About 340 lines: the bands, the bootstrap and the comparison share their checks of common bins.)

The figure of real against generated variograms with 95 % bands (Tuel et al. 2023, Fig. 8)
becomes numbers: per-lag z-scores, the fraction of lags where the synthetic mean lies in the
real band, and the RMS log-ratio of the mean curves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import xarray as xr

from geodiff.errors import GeodiffError, SceneError
from geodiff.geostats import spacing
from geodiff.geostats.lags import default_edges
from geodiff.geostats.spacing import GridSpacing
from geodiff.geostats.variogram import semivariogram
from geodiff.units import combine

__all__ = ["compare", "ensemble"]

# Pixel sizes this close (relative) are one grid: the metric pixel size of a geographic scene
# moves slightly between the centre of the scene and that of a tile cut from it.
_STEP_RTOL = 0.01


def _sample_dim(gamma: xr.DataArray, dim: str | None) -> str | None:
    if dim is not None:
        if dim not in gamma.dims:
            raise GeodiffError(f"dimension {dim!r} not in the variogram dims {gamma.dims}")
        return dim
    if "sample" in gamma.dims:
        return "sample"
    lead = [d for d in gamma.dims if d not in ("lag", "direction")]
    if len(lead) == 1:
        return lead[0]
    if not lead:
        return None
    raise GeodiffError(f"several leading dims {lead}: name the ensemble dimension with dim=")


def ensemble(
    variograms: xr.Dataset,
    dim: str | None = None,
    *,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Mean curve, percentile band and bootstrap confidence interval over an ensemble.

    Parameters
    ----------
    variograms : xarray.Dataset
        Output of :func:`semivariogram` with an ensemble dimension (``sample`` by default, or the
        only leading dim). Empty bins (NaN) are left out per lag.
    dim : str, optional
        Ensemble dimension.
    level : float
        Coverage of the percentile band and of the bootstrap interval (0.95: 2.5 / 97.5 %).
    n_boot : int
        Bootstrap resamples of the ensemble members (percentile interval of the mean, Efron &
        Tibshirani 1993, ch. 13).
    seed : int or numpy.random.Generator, optional
        Source of the bootstrap draws.

    Returns
    -------
    xarray.Dataset
        ``mean``, ``std``, ``lower``, ``upper`` (percentile band of the members), ``ci_lower``,
        ``ci_upper`` (bootstrap interval of the mean) and ``count`` (members with a value) over
        the remaining dims and ``lag``; one member gives a zero-width band.
    """
    if not 0 < level < 1:
        raise GeodiffError(f"level must be in (0, 1), got {level}")
    gamma = variograms["gamma"]
    d = _sample_dim(gamma, dim)
    if d is None:
        gamma = gamma.expand_dims("sample")
        d = "sample"
    g = gamma.transpose(d, ...)
    arr = np.asarray(g.values, dtype=np.float64)
    finite = np.isfinite(arr)
    q = [(1 - level) / 2, (1 + level) / 2]
    rest = g.isel({d: 0}, drop=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        count = finite.sum(axis=0)
        mean = np.where(finite, arr, 0.0).sum(axis=0) / count
        std = np.sqrt(
            np.where(finite, (arr - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count - 1, 1)
        )
        band = np.full((2,) + arr.shape[1:], np.nan)
        has = count > 0
        if has.any():
            band[:, has] = np.nanquantile(arr[:, has], q, axis=0)
        rng = np.random.default_rng(seed)
        n = arr.shape[0]
        # Resampling with replacement = multinomial member counts per resample.
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=int(n_boot)).astype(np.float64)
        flat = np.where(finite, arr, 0.0).reshape(n, -1)
        boot = (w @ flat) / (w @ finite.reshape(n, -1).astype(np.float64))
        ci = np.full((2, flat.shape[1]), np.nan)
        ok = has.reshape(-1)
        if ok.any():
            ci[:, ok] = np.nanquantile(boot[:, ok], q, axis=0)
        ci = ci.reshape((2,) + arr.shape[1:])
    out = xr.Dataset(
        {
            "mean": rest.copy(data=np.where(has, mean, np.nan)),
            "std": rest.copy(data=np.where(count > 1, std, np.nan if n > 1 else 0.0)),
            "lower": rest.copy(data=band[0]),
            "upper": rest.copy(data=band[1]),
            "ci_lower": rest.copy(data=ci[0]),
            "ci_upper": rest.copy(data=ci[1]),
            "count": rest.copy(data=count.astype(np.int64)),
        }
    )
    for v in out.data_vars:
        out[v].attrs = {}
    for v in ("mean", "std", "lower", "upper", "ci_lower", "ci_upper"):
        out[v].attrs.update(gamma.attrs)
    if "lag_bounds" in variograms.coords:
        out = out.assign_coords(lag_bounds=variograms["lag_bounds"])
    out.attrs.update(variograms.attrs)
    out.attrs.update(level=level, n_boot=int(n_boot), n_members=int(n), ensemble_dim=d)
    return out


def _edges_of(ds: xr.Dataset) -> np.ndarray:
    b = ds["lag_bounds"].values
    return np.append(b[:, 0], b[-1, 1])


def _as_variogram(obj, edges, estimator) -> xr.Dataset:
    if isinstance(obj, xr.Dataset) and "gamma" in obj:
        own = _edges_of(obj)
        if edges is not None and (
            own.shape != edges.shape or not np.allclose(own, edges, rtol=1e-12, atol=0)
        ):
            raise GeodiffError(
                "the two variogram Datasets have different lag bins; compute both with the same bins="
            )
        return obj
    return semivariogram(obj, bins=edges, estimator=estimator)


def _common_edges(real, synthetic, bins, max_lag) -> np.ndarray | None:
    if bins is not None and np.ndim(bins) == 1:
        return np.asarray(bins, dtype=np.float64)
    datasets = [o for o in (real, synthetic) if isinstance(o, xr.Dataset) and "gamma" in o]
    if datasets:
        return _edges_of(datasets[0])
    grids = [(da.sizes["y"], da.sizes["x"], _measure(da)) for da in (real, synthetic)]
    ny, nx, sp = min(grids, key=lambda g: min(g[0] * g[2].step[0], g[1] * g[2].step[1]))
    return default_edges((ny, nx), sp.step, max_lag, None if bins is None else int(bins))


@dataclass(frozen=True)
class _Grid:
    """What must agree between two inputs for their variograms to be comparable."""

    units: str | tuple[str | None, ...] | None  # per band when bands differ
    lag_units: str | None
    step: tuple[float, float] | None
    crs: object | None  # pyproj.CRS


def _measure(obj) -> GridSpacing:
    return spacing._measure(obj, "y", "x", spacing.SCALE_TOLERANCE)


def _pyproj(crs):
    if crs is None:
        return None
    from pyproj import CRS

    return CRS.from_user_input(crs if isinstance(crs, str) else crs.to_wkt())


def _units(value) -> str | tuple[str | None, ...] | None:
    """A ``units`` attr, ``None`` when absent or blank; per band (a tuple) when bands differ."""
    if isinstance(value, (list, tuple)):
        return tuple(_units(v) for v in value)
    return None if value is None else (str(value).strip() or None)


def _variogram_grid(ds: xr.Dataset) -> _Grid:
    """The grid a :func:`semivariogram` Dataset was computed on, from its attrs."""
    a = ds.attrs
    step = None
    if "spacing_dy" in a and "spacing_dx" in a:
        step = (abs(float(a["spacing_dy"])), abs(float(a["spacing_dx"])))
    gamma = ds["gamma"].attrs.get("units", "")
    data_units = [_unsquared(g) for g in gamma] if isinstance(gamma, (list, tuple)) else _unsquared(gamma)
    return _Grid(_units(data_units), a.get("lag_units"), step, _pyproj(a.get("crs")))


def _unsquared(gamma_units: str) -> str | None:
    """``u`` from semivariogram's gamma label ``"(u)^2"``."""
    squared = re.fullmatch(r"\((.*)\)\^2", str(gamma_units))
    return squared.group(1) if squared else None


def _grid(obj: xr.DataArray | xr.Dataset) -> _Grid:
    if isinstance(obj, xr.Dataset) and "gamma" in obj:
        return _variogram_grid(obj)
    if isinstance(obj, xr.Dataset):
        names = [v for v in obj.data_vars if {"y", "x"} <= set(obj[v].dims)]
        units = combine([obj[v].attrs.get("units") for v in names]) if names else None
    else:
        units = obj.attrs.get("units")
    sp = _measure(obj)
    return _Grid(_units(units), sp.unit, sp.step, _pyproj(spacing._crs(obj)))


def _check_comparable(real, synthetic) -> None:
    """Refuse inputs whose semivariograms are in different units or on different grids."""
    r, s = _grid(real), _grid(synthetic)
    if r.units is not None and s.units is not None and r.units != s.units:
        raise SceneError(
            f"real data are in {r.units!r} but synthetic data in {s.units!r}, so their "
            "semivariograms cannot be compared; convert one to the other's unit (for phase: "
            "geodiff.insar.phase_to_displacement or phase_to_rate), or if both are the same unit "
            f"spelled differently set synthetic.attrs['units'] = {r.units!r}"
        )
    if r.lag_units != s.lag_units:
        raise SceneError(
            f"real lags are in {r.lag_units!r} but synthetic lags in {s.lag_units!r}; write the "
            "same CRS on both (da.rio.write_crs(...)) so lags are in one unit"
        )
    if r.crs is not None and s.crs is not None and not r.crs.equals(s.crs, ignore_axis_order=True):
        raise SceneError(
            f"real data are on CRS {r.crs.name!r} but synthetic data on {s.crs.name!r}; put both "
            "on one grid first, e.g. synthetic.rio.reproject_match(real)"
        )
    if (
        r.step is not None
        and s.step is not None
        and not np.allclose(r.step, s.step, rtol=_STEP_RTOL, atol=0)
    ):
        raise SceneError(
            f"real pixels are {r.step[0]:.6g} x {r.step[1]:.6g} {r.lag_units} (dy x dx) but "
            f"synthetic pixels {s.step[0]:.6g} x {s.step[1]:.6g} {s.lag_units}, more than "
            f"{_STEP_RTOL:.0%} apart: the curves would compare different resolutions; resample "
            "one onto the other's grid first, e.g. synthetic.rio.reproject_match(real)"
        )


def compare(
    real: xr.DataArray | xr.Dataset,
    synthetic: xr.DataArray | xr.Dataset,
    *,
    dim: str | None = None,
    bins: int | np.ndarray | None = None,
    max_lag: float | None = None,
    estimator: str = "matheron",
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Real against synthetic semivariograms on common lag bins, with bands and scores.

    Parameters
    ----------
    real, synthetic : xarray.DataArray or xarray.Dataset
        Scenes/tiles ``(..., y, x)`` (variograms computed here on common bins: by default those
        of the smaller extent) or :func:`semivariogram` Datasets with identical bins. Each may
        carry an ensemble dimension (``sample``); a single real scene is one member.
    dim : str, optional
        Ensemble dimension of both (default ``sample`` or the only leading dim).
    bins, max_lag, estimator
        As in :func:`semivariogram`.
    level, n_boot, seed
        As in :func:`ensemble`.

    Returns
    -------
    xarray.Dataset
        Over ``lag``: ``real_mean``, ``real_lower``, ``real_upper``, ``real_ci_lower``,
        ``real_ci_upper``, and the same for ``synthetic_``; ``z`` the per-lag z-score of the
        synthetic mean against the real spread, ``(synthetic_mean - real_mean) / real_std``
        (with one real member, the synthetic spread is used); ``in_band`` whether the
        synthetic mean lies in the real band (with one real member: whether the real curve lies
        in the synthetic band). Scalars: ``fraction_in_band`` over lags with values, and
        ``rms_log_ratio = sqrt(mean(log(synthetic_mean / real_mean)^2))`` (0 for identical
        curves; 0.1 is about 10 % typical mismatch in semivariance).

    Raises
    ------
    SceneError
        Before any variogram is computed, if the two are not comparable: data ``units`` attrs
        both present and different, lags in different units, different CRSs, or pixel sizes
        more than 1 % apart on either axis.
    """
    _check_comparable(real, synthetic)
    edges = _common_edges(real, synthetic, bins, max_lag)
    rv = _as_variogram(real, edges, estimator)
    sv = _as_variogram(synthetic, _edges_of(rv), estimator)
    re = ensemble(rv, dim, level=level, n_boot=n_boot, seed=seed)
    se = ensemble(sv, dim, level=level, n_boot=n_boot, seed=seed)
    out = xr.Dataset(coords={"lag": rv["lag"], "lag_bounds": rv["lag_bounds"]})
    for prefix, e in (("real", re), ("synthetic", se)):
        for v in ("mean", "std", "lower", "upper", "ci_lower", "ci_upper", "count"):
            out[f"{prefix}_{v}"] = e[v]
    single_real = re.attrs["n_members"] == 1
    with np.errstate(invalid="ignore", divide="ignore"):
        if single_real:
            out["z"] = (out.synthetic_mean - out.real_mean) / out.synthetic_std
            out["in_band"] = (out.real_mean >= out.synthetic_lower) & (
                out.real_mean <= out.synthetic_upper
            )
        else:
            out["z"] = (out.synthetic_mean - out.real_mean) / out.real_std
            out["in_band"] = (out.synthetic_mean >= out.real_lower) & (
                out.synthetic_mean <= out.real_upper
            )
        both = np.isfinite(out.real_mean) & np.isfinite(out.synthetic_mean)
        out["fraction_in_band"] = out.in_band.where(both).sum("lag") / both.sum("lag")
        pos = both & (out.real_mean > 0) & (out.synthetic_mean > 0)
        lr = np.log(out.synthetic_mean.where(pos) / out.real_mean.where(pos))
        out["rms_log_ratio"] = np.sqrt((lr**2).sum("lag") / pos.sum("lag"))
    out["z"].attrs.update(long_name="z-score of the synthetic mean semivariance")
    out["fraction_in_band"].attrs.update(long_name=f"fraction of lags in the {level:.0%} band")
    out["rms_log_ratio"].attrs.update(long_name="RMS of log(synthetic mean / real mean)")
    keep = (
        "estimator",
        "lag_units",
        "spacing_method",
        "spacing_max_relative_error",
        "spacing_warning",
    )
    out.attrs.update({k: rv.attrs[k] for k in keep if k in rv.attrs})
    out.attrs.update(
        level=level,
        n_real=int(re.attrs["n_members"]),
        n_synthetic=int(se.attrs["n_members"]),
        band_from="synthetic" if single_real else "real",
    )
    return out
