"""What the writers share: scenes and synthetic stacks go to GeoTIFF (tiled, COG,
:mod:`geodiff.io.geotiff`), CF NetCDF (:mod:`geodiff.io.netcdf`) and Zarr
(:mod:`geodiff.io.zarr_store`) under the policies below, implemented once here.

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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from geodiff._version import __version__
from geodiff.cluster import active_client, check_workers, drain_workers
from geodiff.errors import SceneError
from geodiff.jsonable import json_ready
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
    the writer goes on (see :func:`_drained_threads`). On a dask.distributed cluster the workers
    write the chunks, so each of them must be able to write next to ``target``."""
    client = active_client()
    if client is not None:
        check_workers(client, folder=Path(target).parent)
    with _drained_threads(client), dask_progress(progress, f"writing {Path(target).name}"):
        yield


@contextmanager
def _drained_threads(client=None) -> Iterator[None]:
    """Run the computations inside on a thread pool that has finished every chunk it started
    when the block exits, failed or not.

    When one chunk fails, dask's threaded scheduler raises at once while its other threads
    finish the chunks they hold; those would then write into a temporary that is being closed
    (GDAL crashes) or removed (netCDF and Zarr recreate it, and it is left behind). Queued
    chunks are cancelled. On a dask.distributed ``client`` the same holds for the workers' running
    tasks, which a failure cancels but does not stop: a failed block waits for them. Another
    scheduler the user chose (``dask.config``) is left alone.
    """
    if client is not None:
        try:
            yield
        except BaseException:
            drain_workers(client)
            raise
        return
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
    if isinstance(value, (np.ndarray, np.number, np.bool_)):
        return json_ready(value)
    return str(value)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _history(attrs: dict) -> str:
    line = f"{_now()} written by geodiff {__version__}"
    return f"{attrs['history']}\n{line}" if attrs.get("history") else line


def _sources(da: xr.DataArray) -> list[str]:
    """Files the data was read from, or whose grid a synthetic scene was sampled on
    (:func:`geodiff.sampling.sample_scene` records it): writing onto them would destroy them."""
    return [s for s in (da.encoding.get("source"), da.attrs.get("source_scene")) if s]
