"""Normalise tiles for a network and bring generated tiles back to physical units."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import xarray as xr

from geodiff.errors import GeodiffError
from geodiff.scaling.coefficients import Coefficients
from geodiff.scaling.db import DB_FLOOR, check_power, from_db, to_db

Method = Literal["minmax", "robust", "standard", "fixed"]
_PIXELS = ("y", "x")


@dataclass(frozen=True)
class Scaler:
    """Affine normalisation of tiles, per tile or global, optionally in dB.

    Each tile and band maps by ``z = c + r * (x - loc) / scale`` where ``c, r`` are the centre and
    half-width of ``feature_range`` and ``loc, scale`` come from the data:

    ================  ===========================  ===================================
    method            loc                          scale
    ================  ===========================  ===================================
    ``"minmax"``      (min + max) / 2              (max - min) / 2
    ``"robust"``      (p_lo + p_hi) / 2            (p_hi - p_lo) / 2  (``percentiles``)
    ``"standard"``    mean                         standard deviation (``c=0, r=1``)
    ``"fixed"``       (low + high) / 2             (high - low) / 2   (``fixed_range``)
    ================  ===========================  ===================================

    A constant tile (``scale == 0``) maps to the centre ``c`` and inverts back to its value
    exactly, with no NaN or inf. NaN pixels are ignored by the statistics and stay NaN.

    Parameters
    ----------
    method
        See the table.
    feature_range
        Target interval, ``(-1, 1)`` (the default, as for DDPM) or ``(0, 1)``.
    per_tile
        Statistics per tile (the seed paper's choice), or one set for all tiles per band.
    percentiles
        Lower and upper percentile for ``"robust"``.
    fixed_range
        ``(low, high)`` in the data's units for ``"fixed"``.
    db
        Take ``10 log10`` of linear backscatter power first (values below ``db_floor`` are
        clipped to it), and return to linear power on inverse. Data with more than
        ``DB_MAX_NONPOSITIVE`` of its pixels <= 0 is refused: it is not power.
    db_floor
        Floor in linear power for the dB transform.
    """

    method: Method = "minmax"
    feature_range: tuple[float, float] = (-1.0, 1.0)
    per_tile: bool = True
    percentiles: tuple[float, float] = (2.0, 98.0)
    fixed_range: tuple[float, float] | None = None
    db: bool = False
    db_floor: float = DB_FLOOR

    def __post_init__(self):
        if self.method not in ("minmax", "robust", "standard", "fixed"):
            raise GeodiffError(f"unknown scaling method {self.method!r}")
        lo, hi = self.feature_range
        if not hi > lo:
            raise GeodiffError(f"feature_range must be increasing, got {self.feature_range}")
        if self.method == "fixed" and (self.fixed_range is None or not self.fixed_range[1] > self.fixed_range[0]):
            raise GeodiffError("method='fixed' needs fixed_range=(low, high) with high > low")
        p_lo, p_hi = self.percentiles
        if not 0 <= p_lo < p_hi <= 100:
            raise GeodiffError(f"percentiles must satisfy 0 <= lo < hi <= 100, got {self.percentiles}")

    @property
    def _center_halfwidth(self) -> tuple[float, float]:
        if self.method == "standard":
            return 0.0, 1.0
        lo, hi = self.feature_range
        return (lo + hi) / 2.0, (hi - lo) / 2.0

    def to_config(self) -> dict:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> Scaler:
        config = dict(config)
        for key in ("feature_range", "percentiles", "fixed_range"):
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        return cls(**config)

    def _forward(self, tiles):
        return to_db(tiles, self.db_floor) if self.db else tiles

    def _tile_statistics(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(loc, scale)`` over the last two axes of a numpy block, ignoring NaN."""
        return self._statistics_of(self._forward(values))

    def _statistics_of(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape = x.shape[:-2]
        flat = x.reshape(-1, x.shape[-2] * x.shape[-1])
        loc, scale = np.full(len(flat), np.nan), np.full(len(flat), np.nan)
        # Tiles without data keep NaN coefficients. They are left out of the reductions rather
        # than silenced with catch_warnings, which is not thread-safe under dask's threads.
        has = np.isfinite(flat).any(-1)
        if not has.any():
            return loc.reshape(shape), scale.reshape(shape)
        data = flat[has]
        if self.method == "standard":
            loc[has], scale[has] = np.nanmean(data, -1, dtype=np.float64), np.nanstd(data, -1, dtype=np.float64)
        else:
            if self.method == "fixed":
                low, high = self.fixed_range
            elif self.method == "minmax":
                low, high = np.nanmin(data, -1), np.nanmax(data, -1)
            else:
                low, high = np.nanpercentile(data, self.percentiles, axis=-1)
            low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
            loc[has], scale[has] = (low + high) / 2.0, (high - low) / 2.0
        return loc.reshape(shape), scale.reshape(shape)

    def _affine(self, x: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
        dtype = np.dtype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)
        center, half = self._center_halfwidth
        # Constant tiles: x - loc is exactly 0, so any non-zero divisor maps them to the centre.
        factor = (half / np.where(scale > 0, scale, 1.0)).astype(dtype)[..., None, None]
        return ((x - loc.astype(dtype)[..., None, None]) * factor + dtype.type(center)).astype(dtype, copy=False)

    def _scale_block(self, values: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return self._affine(self._forward(values), loc, scale)

    def _scale_own(self, values: np.ndarray) -> np.ndarray:
        x = self._forward(values)
        return self._affine(x, *self._statistics_of(x))

    def statistics(self, tiles: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
        """``(loc, scale)`` per tile (and band), lazily when ``tiles`` is a dask array."""
        if self.per_tile or self.method == "fixed":
            # One numpy kernel per tile: a chain of xarray reductions costs dozens of dask tasks
            # per tile, which dominates on scenes of thousands of tiles. (Fixed coefficients are
            # the same per tile or global.)
            return xr.apply_ufunc(
                self._tile_statistics, tiles, input_core_dims=[list(_PIXELS)], output_core_dims=[[], []],
                dask="parallelized", output_dtypes=[np.float64, np.float64],
            )
        data = self._forward(tiles).astype(np.float64)
        dims = [d for d in data.dims if d != "band"]
        if self.method == "standard":
            loc, scale = data.mean(dims), data.std(dims)
        else:
            if self.method == "minmax":
                low, high = data.min(dims), data.max(dims)
            else:
                # Quantiles need each reduced dim in one dask chunk.
                data = data.chunk({d: -1 for d in dims}) if data.chunks else data
                q = data.quantile(np.array(self.percentiles) / 100.0, dim=dims)
                low, high = q.isel(quantile=0, drop=True), q.isel(quantile=1, drop=True)
            loc, scale = (low + high) / 2.0, (high - low) / 2.0
        if "tile" in tiles.dims:
            loc, scale = loc.expand_dims(tile=tiles["tile"]), scale.expand_dims(tile=tiles["tile"])
        return loc, scale

    def fit(self, tiles: xr.DataArray) -> Coefficients:
        """Measure the coefficients of ``(tile, [band,] y, x)`` tiles (reads the data once, twice
        with ``db``, which first checks that the data is power)."""
        if self.db:
            check_power(tiles)
        loc, scale = (v.compute() for v in self.statistics(tiles))
        order = [d for d in ("tile", "band") if d in loc.dims]
        loc, scale = loc.transpose(*order).values, scale.transpose(*order).values
        if "band" not in order:
            loc, scale = loc[:, None], scale[:, None]
        bands = [str(b) for b in tiles["band"].values] if "band" in tiles.dims else None
        rows = tiles["row"].values if "row" in tiles.coords else None
        cols = tiles["col"].values if "col" in tiles.coords else None
        return Coefficients(self.method, loc, scale, rows, cols, bands, tiles.attrs.get("units"), self.db)

    def transform(self, tiles: xr.DataArray, coefficients: Coefficients | None = None) -> xr.DataArray:
        """Scale tiles with given coefficients, or with their own statistics when ``None``.

        With ``None`` the statistics stay lazy, so a dask pipeline reads each tile only once.
        """
        core = [list(_PIXELS)]
        dtype = tiles.dtype if np.issubdtype(tiles.dtype, np.floating) else np.float32
        if coefficients is None and self.per_tile:
            out = xr.apply_ufunc(self._scale_own, tiles, input_core_dims=core, output_core_dims=core,
                                 dask="parallelized", output_dtypes=[dtype])
        else:
            loc, scale = self.statistics(tiles) if coefficients is None else _as_arrays(coefficients, tiles)
            out = xr.apply_ufunc(self._scale_block, tiles, loc, scale, input_core_dims=core + [[], []],
                                 output_core_dims=core, dask="parallelized", output_dtypes=[dtype])
        out.attrs = {k: v for k, v in tiles.attrs.items() if k != "units"}
        out.attrs.update(units="1", scaling=self.method)
        return out.transpose(*tiles.dims)

    def inverse(self, scaled, coefficients: Coefficients, *, units: str | None = None):
        """Back to physical units: ``x = loc + scale * (z - c) / r`` (then out of dB if ``db``).

        ``scaled`` is a ``(tile|sample, [band,] y, x)`` DataArray whose leading dimension matches
        the coefficients one to one, or a numpy array of that shape.
        """
        center, half = self._center_halfwidth
        is_xr = isinstance(scaled, xr.DataArray)
        da = scaled if is_xr else _wrap(np.asarray(scaled))
        loc, scale = _as_arrays(coefficients, da)
        out = loc + scale * (da.astype(np.float64) - center) / half
        if self.db:
            out = from_db(out)
        out = out.astype(da.dtype if np.issubdtype(da.dtype, np.floating) else np.float32).transpose(*da.dims)
        if not is_xr:
            return out.values
        out.attrs = {k: v for k, v in da.attrs.items() if k not in ("units", "scaling")}
        resolved = units or coefficients.units
        if resolved:
            out.attrs["units"] = resolved
        return out

    def inverse_field(self, scaled: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """:meth:`inverse` with coefficients per pixel: ``loc`` and ``scale`` broadcast against
        ``scaled`` (e.g. ``(sample, band, y, x)``), as fused scene sampling uses them."""
        center, half = self._center_halfwidth
        out = loc + scale * (np.asarray(scaled, np.float64) - center) / half
        return from_db(out) if self.db else out

    def transform_field(self, values: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Physical values to the normalised space with coefficients per pixel, the inverse of
        :meth:`inverse_field` (a zero ``scale`` maps to the centre, as for constant tiles)."""
        center, half = self._center_halfwidth
        x = self._forward(np.asarray(values, np.float64))
        return center + half * (x - loc) / np.where(scale > 0, scale, 1.0)

    def check_renormalisable(self) -> None:
        """Raise :class:`~geodiff.errors.GeodiffError` unless :meth:`renormalise` applies."""
        if not self.per_tile or self.method == "fixed":
            raise GeodiffError("renormalising needs a per-tile scaler ('minmax', 'robust' or 'standard'); "
                               f"this one is {'global' if not self.per_tile else 'fixed'}")

    def renormalise(self, scaled):
        """Stretch each generated tile (and band) back onto ``feature_range`` by its own statistics.

        Generated tiles tend to fill less of the range than the training tiles did (Tuel et al.
        2023 found too little variance); mapping each one by its own ``loc, scale`` before the
        drawn coefficients are applied gives it exactly the normalised extent a training tile
        had (min-max: its extremes on the range's ends; standard: mean 0, std 1; robust: its
        percentiles there). Works on DataArrays or numpy arrays in normalised space (no dB step).

        Raises
        ------
        geodiff.errors.GeodiffError
            The scaler is global or ``"fixed"``: its coefficients are not per tile, so there is
            no tile extent to restore.
        """
        self.check_renormalisable()
        if isinstance(scaled, xr.DataArray):
            return scaled.copy(data=self.renormalise(scaled.values))
        values = np.asarray(scaled)
        return self._affine(values, *self._statistics_of(values))

    def fit_transform(self, tiles: xr.DataArray) -> tuple[xr.DataArray, Coefficients]:
        coefficients = self.fit(tiles)
        return self.transform(tiles, coefficients), coefficients


def _leading(da: xr.DataArray) -> str:
    lead = [d for d in da.dims if d not in ("band", *_PIXELS)]
    if len(lead) != 1:
        raise GeodiffError(f"expected one leading dim (tile or sample) besides band/y/x, got {da.dims}")
    return lead[0]


def _as_arrays(coefficients: Coefficients, da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    lead = _leading(da)
    if da.sizes[lead] != len(coefficients):
        raise GeodiffError(f"{len(coefficients)} coefficient sets for {da.sizes[lead]} {lead}s")
    n_bands = da.sizes.get("band", 1)
    if coefficients.loc.shape[1] != n_bands:
        raise GeodiffError(f"coefficients have {coefficients.loc.shape[1]} band(s), data has {n_bands}")
    if "band" in da.dims:
        dims, loc, scale = (lead, "band"), coefficients.loc, coefficients.scale
    else:
        dims, loc, scale = (lead,), coefficients.loc[:, 0], coefficients.scale[:, 0]
    coords = {lead: da[lead].values} if lead in da.coords else {}
    return xr.DataArray(loc, dims=dims, coords=coords), xr.DataArray(scale, dims=dims, coords=coords)


def _wrap(values: np.ndarray) -> xr.DataArray:
    dims = ("tile", "band", "y", "x") if values.ndim == 4 else ("tile", "y", "x")
    return xr.DataArray(values, dims=dims)
