"""Labelled datasets for machine learning: synthetic tiles in a Zarr store, one GeoParquet row per sample.

The layout ML loaders read: a folder holding ``tiles.zarr`` (every variable on ``(sample, [band,]
y, x)``, one Zarr chunk per sample, consolidated metadata) and ``index.parquet`` (a GeoDataFrame,
row ``i`` describing sample ``i``: its labels, its footprint in the tiles' CRS and in EPSG:4326,
and every other per-sample coordinate: a synthetic interferogram's source kind, a tile's
guidance weight). ``dataset.json`` names the format, so that geodiff may replace the folder it
wrote, and no other. A PyTorch loader is a few lines (docs/index.md, "Labelled datasets").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from geodiff._version import __version__
from geodiff.errors import OutputError
from geodiff.files import atomic_directory
from geodiff.io.write import _computing, _json_default

FORMAT, FORMAT_VERSION = "geodiff-dataset", 1
STORE, INDEX, DESCRIPTION = "tiles.zarr", "index.parquet", "dataset.json"


def export_dataset(samples: xr.DataArray | xr.Dataset, path, *, overwrite: bool = False,
                   progress: bool = True) -> Path:
    """Write labelled samples as a Zarr store plus a GeoParquet index, one row per sample.

    Parameters
    ----------
    samples
        Synthetic tiles ``(sample, [band,] y, x)`` (from :meth:`DiffusionModel.sample_tiles`,
        with their ``label`` coordinate), or a Dataset of variables on one grid: the clean and
        noisy, wrapped and unwrapped pairs of :func:`geodiff.synth.dataset`, with their
        ``source`` coordinate. Lazy data is computed chunk by chunk into the store.
    path
        The folder to write (``tiles.zarr``, ``index.parquet``, ``dataset.json``).
    overwrite
        Replace an existing folder geodiff did not write.
    progress
        Show a progress bar while lazy data is computed.

    Returns
    -------
    pathlib.Path
        ``path``. Reopen with ``xr.open_zarr(path / "tiles.zarr")`` and
        ``geopandas.read_parquet(path / "index.parquet")``.

    The index's ``labels`` column holds each sample's class names (a ``label`` coordinate split
    at ``|``, else a ``source`` coordinate); ``footprint`` is the tile's outline in its CRS and
    ``geometry`` in EPSG:4326 (both in pixel units and ``crs`` None for tiles without a CRS).
    Written under a temporary name and renamed when complete: a failure leaves nothing at
    ``path``, or the old folder as it was.
    """
    ds = samples.to_dataset(name=samples.name or "synthetic") if isinstance(samples, xr.DataArray) else samples
    _check(ds)
    n = ds.sizes["sample"]
    index = _index(ds)
    per_sample = [k for k, v in ds.coords.items() if v.dims == ("sample",) and k != "sample"]
    store = ds.drop_vars(per_sample).chunk({"sample": 1})
    store.attrs = {**json.loads(json.dumps(ds.attrs, default=_json_default)), "source": f"geodiff {__version__}"}
    for var in store.data_vars.values():
        var.attrs = json.loads(json.dumps(var.attrs, default=_json_default))
        var.encoding = {}
    description = {"format": FORMAT, "format_version": FORMAT_VERSION, "samples": n, "store": STORE, "index": INDEX,
                   "variables": list(ds.data_vars), "geodiff_version": __version__,
                   "classes": sorted({c for labels in index.get("labels", []) for c in labels})}
    with atomic_directory(path, overwrite=overwrite) as tmp, _computing(progress, path):
        store.to_zarr(tmp / STORE, mode="w-", zarr_format=2, consolidated=True)
        index.to_parquet(tmp / INDEX)
        (tmp / DESCRIPTION).write_text(json.dumps(description, indent=2))
    return Path(path)


def _check(ds: xr.Dataset) -> None:
    if "sample" not in ds.dims or not ds.data_vars:
        raise OutputError(f"a labelled dataset is samples on a 'sample' dimension; got dims {dict(ds.sizes)}")
    for name, var in ds.data_vars.items():
        if var.dims[0] != "sample" or var.dims[-2:] != ("y", "x"):
            raise OutputError(f"variable {name!r} is {var.dims}; every variable must be (sample, [band,] y, x)")


def _index(ds: xr.Dataset):
    """One row per sample: labels, per-sample coordinates, footprints."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    n = ds.sizes["sample"]
    crs = ds.rio.crs
    h, w = ds.sizes["y"], ds.sizes["x"]
    if crs is not None:
        left, bottom, right, top = ds.rio.bounds()
        outline = box(left, bottom, right, top)
    else:
        outline = box(0, 0, w, h)
    columns = {"sample": np.arange(n)}
    if "label" in ds.coords:
        columns["labels"] = [str(v).split("|") if str(v) else [] for v in ds["label"].values]
    elif "source" in ds.coords:
        columns["labels"] = [[str(v)] for v in ds["source"].values]
    for name, coord in ds.coords.items():
        if coord.dims == ("sample",) and name not in ("sample", "label"):
            columns[name] = [v.item() if isinstance(v, np.generic) else v for v in coord.values]
    columns["crs"] = [None if crs is None else crs.to_string()] * n
    footprint = gpd.GeoSeries([outline] * n, crs=crs)
    geometry = footprint.to_crs("EPSG:4326") if crs is not None else gpd.GeoSeries([None] * n, crs="EPSG:4326")
    frame = gpd.GeoDataFrame(pd.DataFrame(columns), geometry=geometry.values, crs="EPSG:4326")
    frame["footprint"] = footprint.values
    return frame
