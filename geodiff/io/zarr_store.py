"""Consolidated Zarr stores: writes, appends marked incomplete until done, region templates (see
:mod:`geodiff.io.write` for the policies every writer shares)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from geodiff._version import __version__
from geodiff.errors import OutputError
from geodiff.files import atomic_path, written_by_geodiff
from geodiff.io.write import (
    _SPATIAL,
    INCOMPLETE_APPEND,
    _check,
    _computing,
    _fill_value,
    _history,
    _json_default,
    _now,
    _sources,
)


def to_zarr(obj: xr.DataArray, store, *, name: str | None = None, append: bool = False,
            region: dict | str | None = None, nodata: float | None = None, overwrite: bool = False,
            progress: bool = True) -> Path:
    """Write a DataArray to a Zarr store, one Zarr chunk per dask chunk (one tile).

    Parameters
    ----------
    store
        Path of the store (a directory).
    append
        Append along ``sample`` to an existing store of the same grid. The store is marked
        incomplete (attribute ``geodiff_incomplete_append``) until the last new chunk is written:
        :func:`geodiff.open_scene` refuses a store left so by an interrupted append, and running
        the append again replaces the unfinished samples.
    region
        Write into part of an existing store, e.g. ``{"sample": slice(8, 16)}`` or ``"auto"``:
        several workers may write disjoint regions at once, since each chunk is its own object.
        Create the store first with :func:`zarr_template`.
    nodata
        Value NaN is stored as in a new store (the array's ``fill_value``); by default the
        scene's original nodata, else NaN. Appends and region writes use the store's own.
    overwrite
        Replace an existing folder that is not a store geodiff wrote (with ``append`` or
        ``region``: change such a store in place).
    progress
        Show a progress bar while lazy data is computed.

    A new store (Zarr v2, consolidated metadata) is written under a temporary name and renamed
    when complete; appends and region writes modify the store in place, appends re-consolidating
    its metadata, region writes leaving it as :func:`zarr_template` consolidated it.
    """
    da = _regular(_check(obj))
    store = Path(store)
    name = name or da.name or "data"
    ds = _zarr_dataset(da, name)
    if append or region is not None:
        if not store.exists():
            raise FileNotFoundError(f"Zarr store {store} does not exist; write it first without append/region")
        if not overwrite and not written_by_geodiff(store):
            # Appends and region writes change a store in place: only geodiff's own, unless told.
            raise OutputError(f"{store} is a Zarr store geodiff did not write; appending or writing regions "
                              "would change it: pass overwrite=True to do so deliberately")
        if isinstance(region, dict):
            # Variables outside the region (coordinates, spatial_ref) were written with the store.
            ds = ds.drop_vars([k for k, v in ds.variables.items() if k != name and not set(v.dims) & set(region)])
        with _computing(progress, store):
            if region is not None:
                ds.to_zarr(store, region=region, consolidated=False)
            else:
                _append(ds, store)
        return store
    encoding = _zarr_encoding(da, name, nodata)
    with atomic_path(store, overwrite=overwrite, inputs=_sources(da)) as tmp, _computing(progress, store):
        ds.to_zarr(tmp, mode="w-", encoding=encoding, zarr_format=2, consolidated=True)
    return store


def zarr_template(obj: xr.DataArray, store, *, name: str | None = None, nodata: float | None = None,
                  overwrite: bool = False) -> Path:
    """Create a Zarr store with the metadata and coordinates of ``obj`` but no data chunks yet,
    ready for parallel :func:`to_zarr` region writes; chunks never written read as ``nodata``
    (as for :func:`to_zarr`). Its metadata is consolidated once, here: region writes do not
    change it."""
    da = _regular(_check(obj))
    store = Path(store)
    name = name or da.name or "data"
    ds = _zarr_dataset(da, name)
    with atomic_path(store, overwrite=overwrite) as tmp:
        ds.to_zarr(tmp, mode="w-", compute=False, encoding=_zarr_encoding(da, name, nodata), zarr_format=2,
                   consolidated=True)
    return store


def _zarr_dataset(da: xr.DataArray, name: str) -> xr.Dataset:
    variable = da.copy(deep=False)
    variable.attrs = {k: v for k, v in json.loads(json.dumps(da.attrs, default=_json_default)).items()
                      if k != "_FillValue"}
    variable.encoding = {}
    ds = variable.to_dataset(name=name)
    ds.attrs = {"history": _history(da.attrs), "source": f"geodiff {__version__}"}
    return ds


def _zarr_encoding(da: xr.DataArray, name: str, nodata) -> dict:
    fill = _fill_value(da, nodata)
    encoding = {"chunks": _chunks(da)}
    if np.issubdtype(da.dtype, np.floating) or not np.isnan(fill):
        encoding["_FillValue"] = fill
    return {name: encoding}


def _append(ds: xr.Dataset, store: Path) -> None:
    """Append along ``sample`` with the store marked incomplete until every chunk is written."""
    group = zarr.open_group(str(store), mode="r+")
    attrs = group.attrs.asdict()
    unfinished = attrs.pop(INCOMPLETE_APPEND, None)
    if unfinished is not None:
        # Running an interrupted append again replaces what it left behind.
        _resize_samples(group, unfinished["samples"][0])
    first = _sample_count(group)
    attrs["history"] = _history(attrs)
    marked = {**attrs, INCOMPLETE_APPEND: {"samples": [first, first + ds.sizes["sample"]], "started": _now()}}
    _put_attrs(store, marked)
    # xarray replaces the store's attributes with the dataset's before it writes any chunk.
    ds.attrs = marked
    ds.to_zarr(store, append_dim="sample", consolidated=True)
    _put_attrs(store, attrs)


def _put_attrs(store: Path, attrs: dict) -> None:
    zarr.open_group(str(store), mode="r+").attrs.put(attrs)
    zarr.consolidate_metadata(str(store))


def _sample_arrays(group) -> list[tuple]:
    """(array, axis of ``sample``) for every array of the group that has that dimension."""
    found = []
    for _, array in group.arrays():
        dims = getattr(array.metadata, "dimension_names", None) or array.attrs.get("_ARRAY_DIMENSIONS", ())
        if "sample" in dims:
            found.append((array, list(dims).index("sample")))
    return found


def _sample_count(group) -> int:
    return max((array.shape[axis] for array, axis in _sample_arrays(group)), default=0)


def _resize_samples(group, count: int) -> None:
    for array, axis in _sample_arrays(group):
        shape = list(array.shape)
        shape[axis] = count
        array.resize(tuple(shape))


def _regular(da: xr.DataArray) -> xr.DataArray:
    """``da`` with regular dask chunks (all equal but a smaller last one), rechunked to its
    largest chunk where they are not (fused scenes' nearly equal blocks): each Zarr chunk must
    then come from one dask chunk, or parallel writes would share Zarr chunks."""
    if not da.chunks:
        return da
    irregular = {dim: max(c) for dim, c in zip(da.dims, da.chunks)
                 if len(set(c[:-1])) > 1 or (len(c) > 1 and c[-1] > c[0])}
    return da.chunk(irregular) if irregular else da


def _chunks(da: xr.DataArray) -> tuple[int, ...]:
    if da.chunks:
        return tuple(c[0] for c in da.chunks)
    return tuple(min(n, 256) if d in _SPATIAL else 1 for d, n in da.sizes.items())
