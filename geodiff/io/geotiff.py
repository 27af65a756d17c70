"""GeoTIFF and Cloud-Optimised GeoTIFF writing, block-aligned and streamed (see :mod:`geodiff.io.write`
for the policies every writer shares)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dask.array as darr
import numpy as np
import rasterio
import rasterio.shutil
import rasterio.windows
import xarray as xr

from geodiff import units
from geodiff.cluster import active_client
from geodiff.files import atomic_path, check_destination, temporary_name
from geodiff.io.write import (
    _SPATIAL,
    _check,
    _computing,
    _fill_value,
    _history,
    _sources,
    flat_attrs,
)


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
    client = active_client()
    if client is not None:
        _write_from_workers(client, data, _WindowWriter(dst))
        return
    darr.store(data, _WindowWriter(dst), lock=threading.Lock())  # one GDAL dataset, one write at a time


def _write_from_workers(client, data: darr.Array, writer) -> None:
    """On a dask.distributed cluster: the workers compute the chunks and this process writes each
    as it arrives, then lets it go. An open GDAL dataset cannot travel to the workers, and a
    compressed GeoTIFF has one writer; the chunks pass through here one at a time."""
    from distributed import as_completed

    futures = client.compute(list(data.to_delayed().ravel()))
    where = {future.key: window for future, window in zip(futures, darr.core.slices_from_chunks(data.chunks))}
    try:
        for future in as_completed(futures):
            writer[where[future.key]] = future.result()
            future.release()
    except BaseException:
        client.cancel(futures)
        raise


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
