"""The one input check every metric shares: two tile sets as float64 ``(n, C, H, W)`` arrays.

A tile set is an xarray DataArray ``(sample, y, x)`` or ``(sample, band, y, x)`` in physical
units with NaN as nodata (what ``DiffusionModel.sample_tiles`` returns; ``TileGrid.stack``'s
``tile`` dimension is read as ``sample``), or a numpy array of the same shape. Metrics skip
NaN pixels; what they cannot skip (too few tiles, a tile with no data, sets in different units or
shapes) is refused here with a message that says what to do.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr

from geodiff.errors import GeodiffError
from geodiff.units import Units, combine, label, per_band

__all__ = ["TileSet", "TileSets", "band_result", "tile_set", "tile_sets"]

_SAMPLE_DIMS = ("sample", "tile")


class TileSet(NamedTuple):
    """One checked tile set."""

    tiles: np.ndarray  # float64 (n, C, H, W), NaN nodata
    units: Units  # the ``units`` attr: a string, one per band (a list), or None


class TileSets(NamedTuple):
    """Two checked, comparable tile sets."""

    real: np.ndarray  # float64 (n_real, C, H, W)
    synthetic: np.ndarray  # float64 (n_synthetic, C, H, W)
    units: Units  # the units both share (those known on either side)


def _as_array(x, name: str) -> tuple[np.ndarray, Units]:
    """``x`` as ``(n, C, H, W)`` float64 and its units attr."""
    if isinstance(x, xr.Dataset):
        raise GeodiffError(
            f"{name} is a Dataset; pass a DataArray, e.g. ds.to_dataarray('band').transpose('sample', 'band', 'y', 'x')"
        )
    units = None
    if isinstance(x, xr.DataArray):
        units = x.attrs.get("units")
        lead = [d for d in x.dims if d not in ("band", "y", "x")]
        if not {"y", "x"} <= set(x.dims) or len(lead) != 1 or lead[0] not in _SAMPLE_DIMS:
            raise GeodiffError(
                f"{name} has dims {x.dims}; a tile set is (sample, y, x) or (sample, band, y, x): "
                "rename its tile dimension to 'sample' (da.rename(tile='sample')) and stack other "
                "leading dims into it (da.stack(sample=[...]))"
            )
        order = [lead[0], "band", "y", "x"] if "band" in x.dims else [lead[0], "y", "x"]
        x = x.transpose(*order).values
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise GeodiffError(
            f"{name} has dtype {arr.dtype}; metrics need real numbers in physical units "
            "(for complex interferograms take the phase, np.angle, or the amplitude first)"
        )
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise GeodiffError(
            f"{name} has {arr.ndim} dimensions (shape {arr.shape}); a tile set is (sample, y, x) "
            "or (sample, band, y, x)"
        )
    return arr.astype(np.float64, copy=False), units


def tile_set(
    x: xr.DataArray | np.ndarray,
    *,
    min_tiles: int = 2,
    why: str | None = None,
    name: str = "the tile set",
) -> TileSet:
    """Check one tile set and return it as float64 ``(n, C, H, W)`` with its units.

    Parameters
    ----------
    x : xarray.DataArray or numpy.ndarray
        ``(sample, y, x)`` or ``(sample, band, y, x)``, NaN nodata.
    min_tiles : int
        Fewest tiles the calling metric can use.
    why : str, optional
        Why the metric needs ``min_tiles`` (put in the error message).
    name : str
        What to call the set in messages (``"real"``, ``"synthetic"``).

    Raises
    ------
    GeodiffError
        Wrong dims or dtype, an empty tile, fewer than ``min_tiles`` tiles, tiles (or bands of
        a tile) with no valid pixel, or infinite values.
    """
    arr, units = _as_array(x, name)
    n, c, h, w = arr.shape
    if h == 0 or w == 0 or c == 0:
        raise GeodiffError(f"{name} tiles are {h} x {w} pixels with {c} bands; tiles need pixels")
    if n < min_tiles:
        reason = why or "a distribution over tiles needs at least that many"
        raise GeodiffError(
            f"{name} has {n} tile(s) but this metric needs at least {min_tiles} ({reason}); "
            "pass more tiles (sample more, or cut the scene into smaller or overlapping tiles)"
        )
    infinite = np.isinf(arr)
    if infinite.any():
        raise GeodiffError(
            f"{name} has {int(infinite.sum())} infinite values (e.g. 10*log10 of zero power); "
            "mark them as nodata first, e.g. da.where(np.isfinite(da))"
        )
    empty = ~np.isfinite(arr).any(axis=(2, 3))  # (n, C): a band of a tile with no valid pixel
    if empty.any():
        bad = int(empty.any(axis=1).sum())
        raise GeodiffError(
            f"{bad} of {n} {name} tiles are all NaN (in at least one band), so they have no "
            "statistics; drop them first, e.g. "
            "da.isel(sample=da.notnull().any(['y', 'x']).all([d for d in da.dims if d == 'band']).values)"
        )
    return TileSet(arr, units)


def _shared_units(real: Units, synthetic: Units, bands: int) -> Units:
    """The units of both sets; refuse bands whose units are known on both sides and differ."""
    r, s = per_band(real, bands), per_band(synthetic, bands)
    for i, (a, b) in enumerate(zip(r, s)):
        if a is not None and b is not None and a != b:
            where = "" if bands == 1 else f" in band {i}"
            raise GeodiffError(
                f"real tiles are in {label(real)!r} but synthetic tiles in {label(synthetic)!r}{where}; "
                "convert one to the other's unit (dB = 10*log10(linear power); phase to displacement: "
                "geodiff.insar.phase_to_displacement), or if they are the same unit spelled "
                f"differently set synthetic.attrs['units'] = {real!r}"
            )
    return combine([a if a is not None else b for a, b in zip(r, s)])


def tile_sets(
    real: xr.DataArray | np.ndarray,
    synthetic: xr.DataArray | np.ndarray,
    *,
    min_tiles: int = 2,
    why: str | None = None,
) -> TileSets:
    """Check two tile sets for a metric and return them as float64 ``(n, C, H, W)`` arrays.

    Parameters
    ----------
    real, synthetic : xarray.DataArray or numpy.ndarray
        ``(sample, y, x)`` or ``(sample, band, y, x)`` in physical units, NaN nodata. Numpy
        arrays carry no units, so only DataArrays' ``units`` attrs are compared.
    min_tiles : int
        Fewest tiles the metric needs in each set.
    why : str, optional
        Why it needs them (put in the error message).

    Returns
    -------
    TileSets
        ``(real, synthetic, units)``; ``units`` is the ``units`` attr both share (per band a
        list when bands differ; ``None`` when unknown on both sides).

    Raises
    ------
    GeodiffError
        Everything :func:`tile_set` refuses, plus ``units`` attrs both present and different,
        and different tile sizes or band counts.
    """
    r = tile_set(real, min_tiles=min_tiles, why=why, name="real")
    s = tile_set(synthetic, min_tiles=min_tiles, why=why, name="synthetic")
    (_, rc, rh, rw), (_, sc, sh, sw) = r.tiles.shape, s.tiles.shape
    if (rh, rw) != (sh, sw):
        raise GeodiffError(
            f"real tiles are {rh} x {rw} pixels but synthetic tiles {sh} x {sw}; compare tiles of "
            "one size: cut the real scene with the model's tile size (TileGrid(scene, tile=...)) "
            "or sample with the real tiles' size"
        )
    if rc != sc:
        raise GeodiffError(
            f"real tiles have {rc} band(s) but synthetic tiles {sc}; select the same bands in "
            "both, e.g. real.sel(band=synthetic.band)"
        )
    return TileSets(r.tiles, s.tiles, _shared_units(r.units, s.units, rc))


def band_result(values) -> float | tuple[float, ...]:
    """A metric's value from its per-band values: a float for one band, else a tuple in band order."""
    values = [float(v) for v in np.asarray(list(values), dtype=np.float64).reshape(-1)]
    return values[0] if len(values) == 1 else tuple(values)
