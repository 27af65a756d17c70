"""Write scenes and synthetic stacks to GeoTIFF (tiled, COG), CF NetCDF and Zarr.

Every writer streams dask arrays chunk by chunk (a lazily generated synthetic stack is computed
tile by tile while it is written) and writes under a temporary name in the destination folder,
renamed at the end, so an interrupted export never leaves a truncated file under the final name.
An existing target is replaced only if geodiff wrote it, or with ``overwrite=True``; a target
that is the source the data was read from is always refused (see :mod:`geodiff.files`).

Nodata, one policy for the three formats: NaN pixels are written as the ``nodata`` argument when
given, else as the scene's own nodata value (``encoding["_FillValue"]``, which
:func:`geodiff.open_scene` keeps, e.g. 0 for PyRate interferograms), else as NaN. Each format
declares that value its own way: the GeoTIFF nodata tag, the NetCDF ``_FillValue`` attribute, the
Zarr array's ``fill_value``; rioxarray (``masked=True``), xarray and GDAL read NaN back. A Zarr
append or region write uses the value the store was created with.

Each writer shows a progress bar while dask computes the data (``progress=False`` for none).
Zarr stores are written as Zarr v2 with consolidated metadata, so ``xr.open_zarr`` opens them
in one read; an append is marked in the store's attributes until it completes, and
:func:`geodiff.open_scene` refuses a store whose append was interrupted.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import dask
import dask.array as darr
import numpy as np
import rasterio
import rasterio.shutil
import rasterio.windows
import xarray as xr
import zarr

from geodiff import units
from geodiff._version import __version__
from geodiff.errors import OutputError, SceneError
from geodiff.files import atomic_path, check_destination, temporary_name, written_by_geodiff
from geodiff.progress import dask_progress

_SPATIAL = ("y", "x")

#: Store attribute present while an append is in progress: {"samples": [first, stop], "started": ISO time}.
INCOMPLETE_APPEND = "geodiff_incomplete_append"


def _check(obj) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        raise SceneError("pass a DataArray (use ds.to_dataarray('band') to write variables as bands)")
    if obj.dims[-2:] != _SPATIAL:
        raise SceneError(f"expected dims (..., y, x), got {obj.dims}")
    return obj


def _fill_value(da: xr.DataArray, nodata) -> float:
    """Nodata to encode NaN with, for every writer: the explicit value, the scene's original one,
    else NaN."""
    if nodata is not None:
        return nodata
    fill = da.encoding.get("_FillValue")
    return np.nan if fill is None else fill


@contextmanager
def _computing(progress: bool, target: Path) -> Iterator[None]:
    """Where a writer computes its dask data: a progress bar, and dask's threads drained before
    the writer goes on (see :func:`_drained_threads`)."""
    with _drained_threads(), dask_progress(progress, f"writing {Path(target).name}"):
        yield


@contextmanager
def _drained_threads() -> Iterator[None]:
    """Run the computations inside on a thread pool that has finished every chunk it started
    when the block exits, failed or not.

    When one chunk fails, dask's threaded scheduler raises at once while its other threads
    finish the chunks they hold; those would then write into a temporary that is being closed
    (GDAL crashes) or removed (netCDF and Zarr recreate it, and it is left behind). Queued
    chunks are cancelled. A scheduler the user chose (a distributed client, ``dask.config``) is
    left alone.
    """
    if dask.base.get_scheduler() is not None:
        yield
        return
    pool = ThreadPoolExecutor(dask.system.CPU_COUNT)
    try:
        with dask.config.set(scheduler="threads", pool=pool):
            yield
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def flat_attrs(attrs: dict) -> dict:
    """Attributes as strings and numbers only (NetCDF and TIFF tags): others become JSON."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[key] = value
        else:
            out[key] = json.dumps(value, default=_json_default)
    return out


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return str(value)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _history(attrs: dict) -> str:
    line = f"{_now()} written by geodiff {__version__}"
    return f"{attrs['history']}\n{line}" if attrs.get("history") else line


def to_geotiff(obj: xr.DataArray, path, *, layout: str = "bands", compress: str = "deflate",
               blocksize: int = 256, cog: bool = False, nodata: float | None = None,
               overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Write a scene or a ``(sample, [band,] y, x)`` stack as tiled, compressed GeoTIFF.

    Parameters
    ----------
    obj
        Georeferenced DataArray. A lazy array is computed chunk by chunk and each chunk written as
        it comes into the one open file, so the file is as compact as an eager write whatever
        the chunks (GDAL completes a block shared by chunks before compressing it).
    path
        Output file. With ``layout="files"`` each sample goes to ``<stem>_<i>.tif`` beside it.
    layout
        ``"bands"``: samples (times bands) become the bands of one file, with descriptions such
        as ``sample=3`` or ``sample=3 band=VV``; ``"files"``: one file per sample.
    compress
        GDAL compression (``"deflate"``, ``"lzw"``, ``"zstd"``, ``"none"``).
    blocksize
        Internal tile size in pixels (a multiple of 16).
    cog
        Write a Cloud-Optimised GeoTIFF (with overviews) instead of a plain tiled GeoTIFF.
    nodata
        Value that NaN is encoded with; by default the scene's original nodata, else NaN. A scene
        opened from an integer file (e.g. a uint16 GRD) is written back in that type when its
        nodata fits it, else as floating point.
    overwrite
        Replace existing files that geodiff did not write.
    progress
        Show a progress bar while lazy data is computed.

    Returns
    -------
    list of Path
        The files written.
    """
    da = _check(obj)
    path = Path(path)
    if layout not in ("bands", "files"):
        raise ValueError(f"layout must be 'bands' or 'files', got {layout!r}")
    if layout == "files" and "sample" in da.dims:
        width = max(3, len(str(da.sizes["sample"] - 1)))
        targets = [path.with_name(f"{path.stem}_{i:0{width}d}{path.suffix or '.tif'}") for i in range(da.sizes["sample"])]
        for target in targets:  # all refused before any is written
            check_destination(target, overwrite=overwrite, inputs=_sources(da))
        for i, target in enumerate(targets):
            _write_one_geotiff(da.isel(sample=i), target, compress, blocksize, cog, nodata, overwrite,
                               progress)
        return targets
    _write_one_geotiff(da, path, compress, blocksize, cog, nodata, overwrite, progress)
    return [path]


def _sources(da: xr.DataArray) -> list[str]:
    """Files the data was read from, or whose grid a synthetic scene was sampled on
    (:func:`geodiff.sampling.sample_scene` records it): writing onto them would destroy them."""
    return [s for s in (da.encoding.get("source"), da.attrs.get("source_scene")) if s]


def _write_one_geotiff(da, path, compress, blocksize, cog, nodata, overwrite, progress) -> None:
    # Decided on the array as given: stacking the leading dims below drops its encoding.
    fill = _fill_value(da, nodata)
    dtype = _geotiff_dtype(da, fill)
    inputs = _sources(da)
    lead = [d for d in da.dims if d not in _SPATIAL]
    bands = [str(b) for b in da["band"].values] if "band" in da.dims else [None]
    unit_of = dict(zip(bands, units.per_band(da.attrs.get("units"), len(bands))))
    if lead:
        # Every combination of the leading dims (sample, band, ...) becomes one GeoTIFF band.
        flat = da.stack(geotiff_band=lead)
        combos = [dict(zip(lead, labels)) for labels in flat["geotiff_band"].values]
        descriptions = [" ".join(str(v) if d == "band" else f"{d}={v}" for d, v in combo.items())
                        for combo in combos]
        band_units = [unit_of[str(combo["band"]) if "band" in combo else None] for combo in combos]
        da = flat.drop_vars(["geotiff_band", *lead], errors="ignore").rename(geotiff_band="band")
        da = da.transpose("band", *_SPATIAL)
    else:
        descriptions = [str(da.attrs.get("band_name", da.name or ""))]
        band_units = [unit_of[None]]
    tags = flat_attrs({k: v for k, v in da.attrs.items() if k not in ("_FillValue",)})
    tags["history"] = _history(da.attrs)
    profile = {"driver": "GTiff", "width": da.sizes["x"], "height": da.sizes["y"], "count": len(descriptions),
               "dtype": dtype.name, "crs": da.rio.crs, "transform": da.rio.transform(), "nodata": fill,
               "tiled": True, "blockxsize": blocksize, "blockysize": blocksize, "compress": compress,
               "interleave": "band", "BIGTIFF": "IF_SAFER"}
    if compress in ("deflate", "lzw", "zstd"):
        profile["predictor"] = 3 if np.issubdtype(dtype, np.floating) else 2
    with atomic_path(path, overwrite=overwrite, inputs=inputs) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst, _computing(progress, path):
            _write_bands(dst, _encoded(da, fill, dtype))
            dst.update_tags(**tags)
            for i, (text, unit) in enumerate(zip(descriptions, band_units), start=1):
                dst.set_band_description(i, text)
                if unit:
                    dst.set_band_unit(i, unit)
        if cog:
            # A second temporary of the same target, so that a killed conversion is cleaned up too.
            plain = temporary_name(path)
            os.replace(tmp, plain)
            try:
                rasterio.shutil.copy(plain, tmp, driver="COG", compress=compress, blocksize=blocksize,
                                     overview_resampling="average", BIGTIFF="IF_SAFER")
            finally:
                plain.unlink()


def _encoded(da: xr.DataArray, fill, dtype: np.dtype):
    """The values as stored, ``(band, y, x)``, still lazy for a dask array: NaN as ``fill``,
    rounded and clipped to an integer type's range."""
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        da = da.round().clip(limits.min, limits.max)
    if not np.isnan(fill):
        da = da.fillna(fill)
    data = da.astype(dtype).data
    return data if data.ndim == 3 else data[None]


def _write_bands(dst, data) -> None:
    """Write into the one open file: a dask array chunk by chunk as each is computed, so GDAL
    completes a block shared by several chunks in its cache and compresses it once.

    Not rioxarray's ``to_raster(lock=...)``: it reopens the file for every chunk, so a block that
    several chunks share is compressed and appended again each time (files 14-31x too large).
    """
    if not isinstance(data, darr.Array):
        dst.write(data)
        return
    darr.store(data, _WindowWriter(dst), lock=threading.Lock())  # one GDAL dataset, one write at a time


class _WindowWriter:
    """``dask.array.store`` target writing each ``(band, y, x)`` chunk to its window of ``dst``."""

    def __init__(self, dst):
        self.dst = dst

    def __setitem__(self, key, block):
        bands, rows, cols = key
        self.dst.write(block, indexes=list(range(bands.start + 1, bands.stop + 1)),
                       window=rasterio.windows.Window.from_slices(rows, cols))


def _geotiff_dtype(da: xr.DataArray, fill) -> np.dtype:
    """The on-disk type: the scene's original integer type when it was read from one (masked to
    float) and ``fill`` is a value of that type, else the array's own type."""
    original = da.encoding.get("dtype")
    if original is None or not np.issubdtype(np.dtype(original), np.integer):
        return np.dtype(da.dtype)
    limits = np.iinfo(np.dtype(original))
    if np.isfinite(fill) and float(fill).is_integer() and limits.min <= fill <= limits.max:
        return np.dtype(original)
    return np.dtype(da.dtype)


def to_netcdf(obj: xr.DataArray, path, *, name: str | None = None, complevel: int = 4,
              title: str | None = None, nodata: float | None = None, overwrite: bool = False,
              progress: bool = True) -> Path:
    """Write a DataArray as a compressed CF-1.8 NetCDF4 file.

    The data variable has ``grid_mapping`` pointing at ``spatial_ref`` (with ``crs_wkt``), which
    its ``coordinates`` attribute also lists so that plain ``xr.open_dataarray`` reads one data
    variable with ``spatial_ref`` as a coordinate; ``_FillValue`` (``nodata``, by default the
    scene's original nodata, else NaN), ``units``, and geodiff's provenance as attributes. Global
    attributes carry ``Conventions``, ``title``, ``history`` and ``source``. Coordinates are CF:
    each has a ``long_name`` or ``standard_name``, integers are 32-bit, and text band labels
    (``VV``, ``VH``) go to a ``band_name`` label variable beside a numeric ``band`` (1, 2, ...).
    Chunks on disk follow the dask chunks (one tile each for synthetic stacks). ``overwrite``
    replaces an existing file that geodiff did not write; ``progress`` shows a bar while lazy
    data is computed.
    """
    da = _check(obj)
    path = Path(path)
    name = name or da.name or "data"
    fill = _fill_value(da, nodata)
    attrs = {k: v for k, v in da.attrs.items() if k not in ("_FillValue", "history")}
    if isinstance(attrs.get("units"), list):
        # CF allows one units string per variable: bands in different units keep theirs beside it.
        attrs["band_units"] = attrs.pop("units")
    attrs = flat_attrs(attrs)
    attrs.setdefault("long_name", str(attrs.get("description", name)))
    variable = da.copy(deep=False)
    variable.attrs = attrs
    variable.encoding = {}
    ds = _cf_coordinates(variable.to_dataset(name=name))
    if da.rio.crs is not None:
        ds = ds.rio.write_crs(da.rio.crs).rio.write_coordinate_system()
        ds[name].attrs["grid_mapping"] = "spatial_ref"
        ds["spatial_ref"].attrs.setdefault("long_name", "coordinate reference system")
    # xarray leaves a grid mapping out of ``coordinates``; listed there it decodes as a coordinate.
    ds[name].encoding["coordinates"] = " ".join(sorted(str(c) for c in ds.coords if c not in ds.dims)) or None
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": title or f"geodiff {name}",
        "history": _history(da.attrs),
        "source": f"geodiff {__version__}",
    }
    encoding = {name: {"zlib": complevel > 0, "complevel": complevel, "_FillValue": fill,
                       "dtype": da.dtype}}
    if da.chunks:
        encoding[name]["chunksizes"] = tuple(c[0] for c in da.chunks)
    for coord in ds.coords:
        encoding[coord] = {"_FillValue": None}
        if ds[coord].dtype.kind in "iu":
            encoding[coord]["dtype"] = _cf_integer(ds[coord].values)
    with atomic_path(path, overwrite=overwrite, inputs=_sources(da)) as tmp, _computing(progress, path):
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return path


_COORD_NAMES = {"sample": "sample number", "band": "band number", "y": "y coordinate", "x": "x coordinate"}


def _cf_coordinates(ds: xr.Dataset) -> xr.Dataset:
    """Coordinates as CF wants them: text band labels become a ``band_name`` label variable
    beside numeric bands (coordinate variables must be numeric), and every coordinate has a
    ``long_name`` unless it has a ``standard_name``."""
    if "band" in ds.coords and ds["band"].dtype.kind in "OUS":
        labels = xr.DataArray(ds["band"].values.astype(str), dims="band", attrs={"long_name": "band name"})
        ds = ds.assign_coords(band=np.arange(1, ds.sizes["band"] + 1, dtype=np.int32), band_name=labels)
    for coord in ds.coords:
        attrs = ds[coord].attrs
        if "long_name" not in attrs and "standard_name" not in attrs:
            attrs["long_name"] = _COORD_NAMES.get(str(coord), str(coord))
    return ds


def _cf_integer(values: np.ndarray) -> str:
    """int32 for integers that fit (CF-1.8 has no 64-bit integers), else float64."""
    limits = np.iinfo(np.int32)
    fits = values.size == 0 or (values.min() >= limits.min and values.max() <= limits.max)
    return "int32" if fits else "float64"


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
