"""CF-1.8 NetCDF writing (see :mod:`geodiff.io.write` for the policies every writer shares)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from geodiff._version import __version__
from geodiff.files import atomic_path
from geodiff.io.write import _check, _computing, _fill_value, _history, _sources, flat_attrs


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
