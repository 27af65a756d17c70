"""Open GeoTIFF, NetCDF and Zarr rasters (or validate in-memory xarray objects) as scenes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import rasterio
import rioxarray
import xarray as xr

from geodiff.errors import SceneError
from geodiff.io.scene import chunk_spec, find_units, standardize_scene
from geodiff.io.write import INCOMPLETE_APPEND
from geodiff.units import combine

_NETCDF_SUFFIXES = {".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5"}


def open_scene(
    source,
    *,
    chunks="auto",
    band=None,
    masked: bool = True,
    nodata: float | None = None,
    units: str | None = None,
    variable: str | None = None,
    stack_dim: str | None = None,
) -> xr.DataArray:
    """Open a radar scene as a georeferenced, lazily chunked DataArray.

    Parameters
    ----------
    source
        Path to a GeoTIFF (or any GDAL raster), a NetCDF file with a CF ``grid_mapping``, a Zarr
        store, or an existing ``xr.DataArray`` / ``xr.Dataset`` to validate.
    chunks
        Dask chunking: ``"auto"`` gives 1024-pixel square chunks (a multiple of every usual tile
        size) with all bands in one chunk; ``None`` loads eagerly; a dict or int is passed on.
    band
        Band(s) to keep: 1-based numbers, or names when the file has band descriptions (or, for
        a Dataset, variable names).
    masked
        Replace nodata with NaN; the original nodata value is kept in ``encoding["_FillValue"]``
        so writers re-encode it. Infinite pixels become NaN too, with a warning that counts them
        (for a lazy scene, chunk by chunk as it is computed).
    nodata
        Nodata value that overrides the file's declaration.
    units
        Physical units (e.g. ``"mm/yr"``, ``"rad"``) that override those found in the metadata.
    variable
        Variable of a NetCDF/Zarr/Dataset source to open; several variables of one grid become
        bands when omitted.
    stack_dim
        One extra dimension to keep in front, e.g. ``"sample"`` to open geodiff's own
        ``(sample, [band,] y, x)`` NetCDF and Zarr exports.

    Returns
    -------
    xarray.DataArray
        Dims ``(y, x)`` or ``(band, y, x)`` (after ``stack_dim`` if given), rows north to south,
        CRS on the ``spatial_ref`` coordinate, ``units`` in attrs when known.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    geodiff.errors.SceneError
        The source is not a raster, its dimensions cannot be interpreted, or it is a Zarr store
        whose last append did not finish.
    """
    if isinstance(source, (xr.DataArray, xr.Dataset)):
        da = _from_xarray(source, variable)
    else:
        da = _read(Path(os.fspath(source)), chunks=chunks, masked=masked, variable=variable)
    return standardize_scene(da, chunks=chunks, band=band, masked=masked, nodata=nodata, units=units,
                             stack_dim=stack_dim)


def open_stack(
    paths: Sequence,
    dim: str = "time",
    *,
    coords: Sequence | None = None,
    chunks="auto",
    masked: bool = True,
    nodata: float | None = None,
    units: str | None = None,
) -> xr.DataArray:
    """Open single-band rasters on one grid as a ``(dim, y, x)`` stack.

    Parameters
    ----------
    paths
        Files to stack, in order (e.g. the interferograms of a network, one burst over dates).
    dim
        Name of the stacking dimension.
    coords
        Labels along ``dim``; the file names (without suffix) by default.
    chunks, masked, nodata, units
        As for :func:`open_scene`, applied to every file.

    Raises
    ------
    geodiff.errors.SceneError
        A file is multi-band, or its shape, transform or CRS differs from the first file's.
    """
    paths = [Path(os.fspath(p)) for p in paths]
    if not paths:
        raise SceneError("open_stack needs at least one path")
    labels = list(coords) if coords is not None else [p.stem for p in paths]
    if len(labels) != len(paths):
        raise SceneError(f"{len(labels)} coords given for {len(paths)} paths")
    scenes = [open_scene(p, chunks=chunks, masked=masked, nodata=nodata, units=units) for p in paths]
    first = scenes[0]
    for path, scene in zip(paths, scenes):
        if "band" in scene.dims:
            raise SceneError(f"{path} has {scene.sizes['band']} bands; open_stack takes single-band files")
        _check_same_grid(first, scene, paths[0], path)
    stack = xr.concat(scenes, dim=dim, join="exact", combine_attrs="drop_conflicts")
    return stack.assign_coords({dim: labels})


def _check_same_grid(ref: xr.DataArray, other: xr.DataArray, ref_path: Path, path: Path) -> None:
    if ref.shape != other.shape:
        raise SceneError(f"{path} has shape {other.shape}, {ref_path} has {ref.shape}: not one grid")
    if ref.rio.crs != other.rio.crs:
        raise SceneError(f"{path} has CRS {other.rio.crs}, {ref_path} has {ref.rio.crs}: reproject first")
    a, b = ref.rio.transform(), other.rio.transform()
    if not a.almost_equals(b, precision=1e-9 * min(abs(a.a), abs(a.e))):
        raise SceneError(f"{path} has transform {tuple(b)[:6]}, {ref_path} has {tuple(a)[:6]}: not one grid")


def _read(path: Path, *, chunks, masked: bool, variable: str | None) -> xr.DataArray:
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if path.is_dir() or path.suffix == ".zarr":
        if not any((path / marker).exists() for marker in (".zgroup", ".zarray", "zarr.json")):
            raise SceneError(f"{path} is a directory but not a Zarr store")
        ds = xr.open_zarr(path, decode_coords="all", chunks={})
        _check_complete(ds, path)
        return _from_xarray(ds, variable)
    if path.suffix.lower() in _NETCDF_SUFFIXES:
        try:
            ds = xr.open_dataset(path, decode_coords="all", chunks={}, mask_and_scale=masked)
        except (OSError, ValueError) as err:
            raise SceneError(f"{path} could not be read as NetCDF: {err}") from err
        return _from_xarray(ds, variable)
    try:
        # Read straight into the final chunks; standardize_scene's rechunk is then a no-op.
        return rioxarray.open_rasterio(path, masked=masked, chunks=chunk_spec(chunks))
    except rasterio.errors.RasterioIOError as err:
        raise SceneError(f"{path} is not a raster GDAL can read ({err})") from err


def _check_complete(ds: xr.Dataset, path: Path) -> None:
    """Refuse a Zarr store whose last append was interrupted: its new samples are partly unwritten
    and would read as nodata."""
    append = ds.attrs.get(INCOMPLETE_APPEND)
    if append is None:
        return
    first, stop = append["samples"]
    raise SceneError(
        f"Zarr store {path} is incomplete: an append of samples {first}..{stop - 1} started "
        f"{append['started']} did not finish, so those samples are partly missing. Re-run the same "
        f"geodiff.to_zarr(..., append=True) call (it replaces them), or read the complete samples "
        f"with xr.open_zarr({str(path)!r}).isel(sample=slice(0, {first}))"
    )


def _from_xarray(obj, variable: str | None) -> xr.DataArray:
    if isinstance(obj, xr.DataArray):
        return obj
    data_vars = [
        name for name, var in obj.data_vars.items() if {"y", "x"} <= set(var.dims) or {"lat", "lon"} <= set(var.dims)
    ]
    if variable is not None:
        if variable not in obj.data_vars:
            raise SceneError(f"variable {variable!r} not found; available: {list(obj.data_vars)}")
        return obj[variable]
    if not data_vars:
        raise SceneError(f"no gridded variable (with y/x or lat/lon dims) among {list(obj.data_vars)}")
    if len(data_vars) == 1:
        return obj[data_vars[0]]
    # Several variables on one grid (e.g. VV, VH) are channels of one scene, each with its units.
    stacked = obj[data_vars].to_dataarray(dim="band")
    stacked.attrs = dict(obj[data_vars[0]].attrs)
    band_units = combine([find_units(obj[name].attrs) for name in data_vars])
    if band_units:
        stacked.attrs["units"] = band_units
    return stacked
