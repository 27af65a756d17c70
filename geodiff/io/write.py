"""Write scenes and synthetic stacks to GeoTIFF (tiled, COG), CF NetCDF and Zarr.

Every writer streams dask arrays chunk by chunk (a lazily generated synthetic stack is computed
tile by tile while it is written) and writes under a temporary name in the destination folder,
renamed at the end, so an interrupted export never leaves a truncated file under the final name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr

from geodiff._version import __version__
from geodiff.errors import SceneError

_SPATIAL = ("y", "x")


def check_destination(path) -> Path:
    """Fail early, before any work, when ``path`` cannot be written: its folder is missing or
    not writable."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"output folder {folder} is not writable")
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary sibling of ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    folder = check_destination(path).parent
    # Keep the suffix: drivers are chosen by it.
    tmp = folder / f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}"
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except PermissionError as err:
        raise PermissionError(f"cannot write {path}: {err.strerror or err} (is the folder writable?)") from err
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _check(obj) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        raise SceneError("pass a DataArray (use ds.to_dataarray('band') to write variables as bands)")
    if obj.dims[-2:] != _SPATIAL:
        raise SceneError(f"expected dims (..., y, x), got {obj.dims}")
    return obj


def _fill_value(da: xr.DataArray, nodata) -> float:
    """Nodata to encode NaN with: the explicit value, the scene's original one, else NaN."""
    if nodata is not None:
        return nodata
    fill = da.encoding.get("_FillValue")
    return np.nan if fill is None else fill


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


def _history(attrs: dict) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp} written by geodiff {__version__}"
    return f"{attrs['history']}\n{line}" if attrs.get("history") else line


def to_geotiff(obj: xr.DataArray, path, *, layout: str = "bands", compress: str = "deflate",
               blocksize: int = 256, cog: bool = False, nodata: float | None = None) -> list[Path]:
    """Write a scene or a ``(sample, [band,] y, x)`` stack as tiled, compressed GeoTIFF.

    Parameters
    ----------
    obj
        Georeferenced DataArray (lazy arrays are computed block by block while writing).
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
        Value that NaN is encoded with; by default the scene's original nodata, else NaN.

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
        for i, target in enumerate(targets):
            _write_one_geotiff(da.isel(sample=i), target, compress, blocksize, cog, nodata)
        return targets
    _write_one_geotiff(da, path, compress, blocksize, cog, nodata)
    return [path]


def _write_one_geotiff(da, path, compress, blocksize, cog, nodata) -> None:
    lead = [d for d in da.dims if d not in _SPATIAL]
    if lead:
        # Every combination of the leading dims (sample, band, ...) becomes one GeoTIFF band.
        flat = da.stack(geotiff_band=lead)
        descriptions = [" ".join(str(v) if d == "band" else f"{d}={v}" for d, v in zip(lead, labels))
                        for labels in flat["geotiff_band"].values]
        da = flat.drop_vars(["geotiff_band", *lead], errors="ignore").rename(geotiff_band="band")
        da = da.transpose("band", *_SPATIAL)
    else:
        descriptions = [str(da.attrs.get("band_name", da.name or ""))]
    fill = _fill_value(da, nodata)
    tags = flat_attrs({k: v for k, v in da.attrs.items() if k not in ("_FillValue",)})
    tags["history"] = _history(da.attrs)
    out = da.rio.write_nodata(fill, encoded=True)
    options = dict(tiled=True, blockxsize=blocksize, blockysize=blocksize, compress=compress,
                   interleave="band", BIGTIFF="IF_SAFER")
    if compress in ("deflate", "lzw", "zstd"):
        options["predictor"] = 3 if np.issubdtype(da.dtype, np.floating) else 2
    with atomic_path(path) as tmp:
        # A lock makes rioxarray write dask blocks one at a time as they are computed.
        out.rio.to_raster(tmp, driver="GTiff", lock=threading.Lock(), **options)
        with rasterio.open(tmp, "r+") as dst:
            dst.update_tags(**tags)
            for i, text in enumerate(descriptions, start=1):
                dst.set_band_description(i, text)
                if "units" in da.attrs:
                    dst.set_band_unit(i, str(da.attrs["units"]))
        if cog:
            plain = tmp.with_suffix(".plain.tif")
            os.replace(tmp, plain)
            try:
                rasterio.shutil.copy(plain, tmp, driver="COG", compress=compress, blocksize=blocksize,
                                     overview_resampling="average", BIGTIFF="IF_SAFER")
            finally:
                plain.unlink()


def to_netcdf(obj: xr.DataArray, path, *, name: str | None = None, complevel: int = 4,
              title: str | None = None) -> Path:
    """Write a DataArray as a compressed CF-1.8 NetCDF4 file.

    The data variable has ``grid_mapping`` pointing at ``spatial_ref`` (with ``crs_wkt``),
    ``_FillValue`` (the scene's original nodata, or NaN), ``units``, and geodiff's provenance as
    attributes; global attributes carry ``Conventions``, ``title``, ``history`` and ``source``.
    Chunks on disk follow the dask chunks (one tile each for synthetic stacks).
    """
    da = _check(obj)
    path = Path(path)
    name = name or da.name or "data"
    fill = _fill_value(da, None)
    attrs = flat_attrs({k: v for k, v in da.attrs.items() if k not in ("_FillValue", "history")})
    attrs.setdefault("long_name", str(attrs.get("description", name)))
    variable = da.copy(deep=False)
    variable.attrs = attrs
    variable.encoding = {}
    ds = variable.to_dataset(name=name)
    if da.rio.crs is not None:
        ds = ds.rio.write_crs(da.rio.crs).rio.write_coordinate_system()
        ds[name].attrs["grid_mapping"] = "spatial_ref"
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
    if "spatial_ref" in ds.coords:
        encoding["spatial_ref"]["dtype"] = "int32"
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return path


def to_zarr(obj: xr.DataArray, store, *, name: str | None = None, append: bool = False,
            region: dict | str | None = None) -> Path:
    """Write a DataArray to a Zarr store, one Zarr chunk per dask chunk (one tile).

    Parameters
    ----------
    store
        Path of the store (a directory).
    append
        Append along ``sample`` to an existing store of the same grid.
    region
        Write into part of an existing store, e.g. ``{"sample": slice(8, 16)}`` or ``"auto"``:
        several workers may write disjoint regions at once, since each chunk is its own object.
        Create the store first with :func:`zarr_template`.

    A new store is written under a temporary name and renamed when complete; appends and region
    writes modify the store in place.
    """
    da = _check(obj)
    store = Path(store)
    name = name or da.name or "data"
    ds = _zarr_dataset(da, name)
    if append or region is not None:
        if not store.exists():
            raise FileNotFoundError(f"Zarr store {store} does not exist; write it first without append/region")
        if isinstance(region, dict):
            # Variables outside the region (coordinates, spatial_ref) were written with the store.
            ds = ds.drop_vars([k for k, v in ds.variables.items() if k != name and not set(v.dims) & set(region)])
        if region is not None:
            ds.to_zarr(store, region=region, consolidated=False)
        else:
            ds.to_zarr(store, append_dim="sample", consolidated=False)
        return store
    with atomic_path(store) as tmp:
        ds.to_zarr(tmp, mode="w-", encoding={name: {"chunks": _chunks(da)}}, consolidated=False)
    return store


def zarr_template(obj: xr.DataArray, store, *, name: str | None = None) -> Path:
    """Create a Zarr store with the metadata and coordinates of ``obj`` but no data chunks yet,
    ready for parallel :func:`to_zarr` region writes."""
    da = _check(obj)
    store = Path(store)
    name = name or da.name or "data"
    ds = _zarr_dataset(da, name)
    with atomic_path(store) as tmp:
        ds.to_zarr(tmp, mode="w-", compute=False, encoding={name: {"chunks": _chunks(da)}}, consolidated=False)
    return store


def _zarr_dataset(da: xr.DataArray, name: str) -> xr.Dataset:
    variable = da.copy(deep=False)
    variable.attrs = {k: v for k, v in json.loads(json.dumps(da.attrs, default=_json_default)).items()
                      if k != "_FillValue"}
    fill = _fill_value(da, None)
    variable.encoding = {} if fill is None or (isinstance(fill, float) and np.isnan(fill)) else {"_FillValue": fill}
    ds = variable.to_dataset(name=name)
    ds.attrs = {"history": _history(da.attrs), "source": f"geodiff {__version__}"}
    return ds


def _chunks(da: xr.DataArray) -> tuple[int, ...]:
    if da.chunks:
        return tuple(c[0] for c in da.chunks)
    return tuple(min(n, 256) if d in _SPATIAL else 1 for d, n in da.sizes.items())
