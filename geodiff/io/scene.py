"""Bring any raster into geodiff's scene form: dims ``(y, x)`` or ``(band, y, x)``, north-up,
CRS in ``spatial_ref``, nodata as NaN (original value in encoding), ``units`` in attrs."""

from __future__ import annotations

import warnings

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from geodiff.errors import SceneError
from geodiff.units import Units, combine

#: Side of the default dask chunk, in pixels: a multiple of every usual tile size (64..1024).
DEFAULT_CHUNK = 1024

_DIM_ALIASES = {"lat": "y", "latitude": "y", "northing": "y", "lon": "x", "longitude": "x", "easting": "x"}
_BAND_ALIASES = ("band", "channel", "polarization", "polarisation", "variable")

# Unit spellings found in radar products (GAMMA/PyRate headers, LiCSBAS tags) mapped to UDUNITS.
_UNIT_ALIASES = {
    "radians": "rad",
    "radian": "rad",
    "millimetres": "mm",
    "millimeters": "mm",
    "metres": "m",
    "meters": "m",
    "mm/year": "mm/yr",
    "decibels": "dB",
    "db": "dB",
}
_UNIT_KEYS = ("units", "unit", "DATA_UNITS", "UNITS")


class GeoreferenceWarning(UserWarning):
    """A scene has no CRS: geodiff keeps working in pixel or coordinate units."""


class InfiniteValueWarning(UserWarning):
    """A scene has +/-inf pixels: geodiff treats them as nodata (NaN)."""


def standardize_scene(
    da: xr.DataArray,
    *,
    chunks="auto",
    band=None,
    masked: bool = True,
    nodata: float | None = None,
    units: str | None = None,
    stack_dim: str | None = None,
) -> xr.DataArray:
    """Validate and normalise a raster DataArray into geodiff's scene form.

    Parameters
    ----------
    da
        Raster with spatial dims ``y``/``x`` (or ``lat``/``lon`` aliases), optionally a band-like
        dim. Singleton extra dims are dropped; other extra dims are an error.
    chunks
        ``"auto"`` (``DEFAULT_CHUNK`` pixels a side, all bands in one chunk), a dict, an int, or
        ``None`` to keep the data as it is.
    band
        Band(s) to keep, by name or 1-based number as in GDAL.
    masked
        Replace the nodata value, and +/-inf, with NaN (the value stays in
        ``encoding["_FillValue"]``); infinite pixels are counted in an :class:`InfiniteValueWarning`.
    nodata
        Nodata value overriding the one the file declares (e.g. ``0`` for PyRate interferograms
        whose header says NaN).
    units
        Physical units overriding those found in the attributes.
    stack_dim
        One extra dimension to keep in front, e.g. ``"sample"`` for geodiff's own synthetic
        stacks: the result is then ``(stack_dim, [band,] y, x)``.
    """
    da = _standard_dims(da, stack_dim)
    da = _select_band(da, band)
    da = _north_up(da)
    da = _georeference(da)
    da = _mask_nodata(da, masked=masked, nodata=nodata)
    found = units or find_units(da.attrs)
    da.attrs = {k: v for k, v in da.attrs.items() if k not in _UNIT_KEYS + ("scale_factor", "add_offset")}
    if found:
        da.attrs["units"] = found
    return _rechunk(da, chunks)


def _standard_dims(da: xr.DataArray, stack_dim: str | None = None) -> xr.DataArray:
    da = da.rename({d: _DIM_ALIASES[d.lower()] for d in da.dims if d.lower() in _DIM_ALIASES})
    missing = {"y", "x"} - set(da.dims)
    if missing:
        raise SceneError(
            f"scene has dims {tuple(da.dims)} but needs spatial dims 'y' and 'x' "
            f"(or 'lat'/'lon'); rename them with da.rename(...)"
        )
    band_dims = [d for d in da.dims if d in _BAND_ALIASES]
    if band_dims and band_dims[0] != "band":
        da = da.rename({band_dims[0]: "band"})
    extra = [d for d in da.dims if d not in (stack_dim, "band", "y", "x")]
    squeezable = [d for d in extra if da.sizes[d] == 1]
    da = da.squeeze(squeezable, drop=True)
    unknown = [d for d in extra if d not in squeezable]
    if unknown:
        sizes = ", ".join(f"{d}={da.sizes[d]}" for d in unknown)
        raise SceneError(
            f"scene has extra dimension(s) {sizes}; select one slice with .isel()/.sel(), "
            f"or use geodiff.open_stack for a time series"
        )
    return da.transpose(*[d for d in (stack_dim, "band", "y", "x") if d in da.dims])


def _select_band(da: xr.DataArray, band) -> xr.DataArray:
    if "band" not in da.dims:
        if band is not None:
            raise SceneError(f"band={band!r} given but the scene has a single band")
        return da
    names = _band_names(da)
    if names is not None:
        da = da.drop_vars("band_name", errors="ignore").assign_coords(band=names)
    if band is not None:
        wanted = [band] if np.isscalar(band) else list(band)
        labels = list(da["band"].values)
        missing = [b for b in wanted if b not in labels]
        if missing:
            raise SceneError(f"band(s) {missing} not in the scene; available: {', '.join(map(str, labels))}")
        da = da.sel(band=wanted)
        if isinstance(da.attrs.get("units"), list):  # units per band follow the selection
            da.attrs["units"] = combine([da.attrs["units"][labels.index(b)] for b in wanted])
    if da.sizes["band"] == 1:
        name = da["band"].values[0]
        da = da.squeeze("band", drop=True)
        if isinstance(name, str):
            da.attrs["band_name"] = name
    if names is not None:
        da.attrs.pop("long_name", None)
    return da


def _band_names(da: xr.DataArray) -> list[str] | None:
    """Band names from a ``band_name`` label coordinate (geodiff's CF NetCDF) or from GDAL
    descriptions (rioxarray's ``long_name``) when every band has one."""
    if "band_name" in da.coords and da["band_name"].dims == ("band",):
        return [str(n) for n in da["band_name"].values]
    names = da.attrs.get("long_name")
    if isinstance(names, str):
        names = (names,)
    if isinstance(names, (tuple, list)) and len(names) == da.sizes["band"] and all(names):
        return [str(n) for n in names]
    return None


def _north_up(da: xr.DataArray) -> xr.DataArray:
    for dim in ("y", "x"):
        if dim not in da.coords:
            da = da.assign_coords({dim: np.arange(da.sizes[dim], dtype=float)})
        values = da[dim].values
        if values.ndim != 1:
            raise SceneError(f"coordinate {dim!r} must be 1-D; curvilinear grids are not supported")
        steps = np.diff(values)
        if steps.size and not (np.all(steps > 0) or np.all(steps < 0)):
            raise SceneError(f"coordinate {dim!r} is not strictly monotonic; sort the scene first")
    # Tiles, windows and written GeoTIFFs all assume rows run north to south.
    if da.sizes["y"] > 1 and da["y"].values[1] > da["y"].values[0]:
        da = da.isel(y=slice(None, None, -1))
    if da.sizes["x"] > 1 and da["x"].values[1] < da["x"].values[0]:
        da = da.isel(x=slice(None, None, -1))
    return da


def _georeference(da: xr.DataArray) -> xr.DataArray:
    crs = da.rio.crs
    if crs is None:
        warnings.warn(
            "scene has no CRS: keeping its coordinates as they are (pixel units if it had none); "
            "lags and exports will not be georeferenced. Set one with da.rio.write_crs(...)",
            GeoreferenceWarning,
            stacklevel=4,
        )
        return da
    # Re-writing puts the CRS on a 'spatial_ref' coordinate, whatever the source convention was.
    return da.rio.write_crs(crs).rio.write_coordinate_system()


def _mask_nodata(da: xr.DataArray, *, masked: bool, nodata: float | None) -> xr.DataArray:
    declared = da.rio.encoded_nodata if da.rio.encoded_nodata is not None else da.rio.nodata
    fill = nodata if nodata is not None else declared
    encoding = dict(da.encoding)
    if not masked:
        if fill is not None:
            da = da.rio.write_nodata(fill, encoded=False)
        return da
    if np.issubdtype(da.dtype, np.integer) or np.issubdtype(da.dtype, np.bool_):
        # Integers cannot hold NaN: 16-bit and smaller fit float32 exactly, wider ones need float64.
        # (Files arrive already masked by rioxarray; this is for in-memory integer arrays.)
        encoding.setdefault("dtype", str(da.dtype))
        da = da.astype(np.float32 if da.dtype.itemsize <= 2 else np.float64)
    if fill is not None and not np.isnan(fill):
        da = da.where(da != fill)
    if np.issubdtype(da.dtype, np.floating):
        da = _mask_infinite(da)
    # rioxarray's convention for masked data: NaN in the array, the on-disk value in encoding.
    da.encoding = encoding
    da.encoding["_FillValue"] = np.nan if fill is None else fill
    da.attrs.pop("_FillValue", None)
    return da


def _mask_infinite(da: xr.DataArray) -> xr.DataArray:
    """+/-inf as NaN: a lazy scene is masked (and warned about) chunk by chunk when computed."""
    if da.chunks is None:
        return da.copy(data=_infinite_to_nan(da.values))
    return da.copy(data=da.data.map_blocks(_infinite_to_nan, dtype=da.dtype))


def _infinite_to_nan(block: np.ndarray, block_info=None) -> np.ndarray:
    infinite = np.isinf(block)
    count = int(infinite.sum())
    if not count:
        return block
    where = ""
    if block_info and None in block_info:
        *_, rows, cols = block_info[None]["array-location"]
        where = f" in rows {rows[0]}..{rows[1] - 1}, columns {cols[0]}..{cols[1] - 1}"
    warnings.warn(f"{count} infinite pixel(s){where} of the scene are treated as nodata (NaN)",
                  InfiniteValueWarning, stacklevel=2)
    block = block.copy()
    block[infinite] = np.nan
    return block


def find_units(attrs: dict) -> Units:
    """The units named in raster attributes, spelled as UDUNITS (one per band when bands differ,
    see :mod:`geodiff.units`)."""
    for key in _UNIT_KEYS:
        value = attrs.get(key)
        if isinstance(value, (list, tuple)):
            return combine([find_units({key: v}) for v in value])
        if isinstance(value, str) and value.strip():
            return _UNIT_ALIASES.get(value.strip().lower(), value.strip())
    return None


def chunk_spec(chunks) -> dict | None:
    """Dask chunks by dimension name for ``chunks`` as :func:`geodiff.open_scene` takes it."""
    if chunks is None or isinstance(chunks, dict):
        return chunks
    if chunks == "auto":
        return {"band": -1, "y": DEFAULT_CHUNK, "x": DEFAULT_CHUNK}
    return {"y": int(chunks), "x": int(chunks)}


def _rechunk(da: xr.DataArray, chunks) -> xr.DataArray:
    spec = chunk_spec(chunks)
    if spec is None:
        return da
    return da.chunk({d: c for d, c in spec.items() if d in da.dims})
