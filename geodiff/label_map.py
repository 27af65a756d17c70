"""Label maps for scene sampling: which class each region of a synthetic scene is made of.

A label map comes as one class name for the whole scene, a GeoDataFrame of labelled polygons
(rasterised onto the scene's grid, in the scene's CRS) or a raster on the scene's own grid
(class names or indices into the model's classes). Pixels no polygon covers, and NaN or negative
raster cells, take the null class: they are sampled unconditionally.

Fused windows take the class at their centre (:func:`geodiff.diffusion.windows.fused`), so the
map is only ever read at window centres. It is kept on a lattice every ``step`` pixels (half the
window stride), which places a region boundary within ``step / 2`` pixels and keeps the map a
few MB for a Sentinel-1 GRD grid, where a per-pixel map would take hundreds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from geodiff.errors import SceneError


@dataclass(frozen=True)
class LabelLattice:
    """Class indices (``null`` for none) at scene pixels ``(i * step, j * step)``."""

    classes: np.ndarray
    step: int
    null: int

    def canvas(self, top: int, left: int, height: int, width: int, shape: tuple[int, int]) -> np.ndarray:
        """``(height, width)`` class of each pixel of a canvas whose first pixel is scene pixel
        ``(top, left)``: the nearest lattice node, with pixels beyond the scene's edges (a
        canvas's look-ahead) taking the edge's class."""
        rows = np.clip(np.arange(top, top + height), 0, shape[0] - 1)
        cols = np.clip(np.arange(left, left + width), 0, shape[1] - 1)
        return self._at(rows, cols).astype(np.int64)

    def tile_classes(self, row_starts, col_starts, tile: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
        """``(rows, cols)`` class at the centre of each tile of a tile grid."""
        rows = np.minimum(np.asarray(row_starts) + tile[0] // 2, shape[0] - 1)
        cols = np.minimum(np.asarray(col_starts) + tile[1] // 2, shape[1] - 1)
        return self._at(rows, cols)

    def _at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Classes of the lattice nodes nearest scene pixels ``rows x cols``."""
        r = np.minimum(np.rint(rows / self.step).astype(int), self.classes.shape[0] - 1)
        c = np.minimum(np.rint(cols / self.step).astype(int), self.classes.shape[1] - 1)
        return self.classes[np.ix_(r, c)]


def label_lattice(labels, scene: xr.DataArray, classes: list[str], step: int, *, column: str = "label") -> LabelLattice:
    """The label map ``labels`` of ``scene`` on a lattice every ``step`` pixels.

    Raises
    ------
    geodiff.errors.SceneError
        A class the model does not know, polygons without a CRS or without ``column``, a raster
        on another grid or CRS than the scene's.
    """
    h, w = scene.sizes["y"], scene.sizes["x"]
    shape = (math.ceil(h / step), math.ceil(w / step))
    null = len(classes)
    if isinstance(labels, str):
        return LabelLattice(np.full(shape, _index(labels, classes), np.int16), step, null)
    if isinstance(labels, xr.DataArray):
        _check_same_grid(labels, scene)
        values = np.asarray(labels.isel(y=slice(0, None, step), x=slice(0, None, step)).values)
        return LabelLattice(_raster_classes(values, classes), step, null)
    import geopandas as gpd

    if not isinstance(labels, gpd.GeoDataFrame):
        raise SceneError(f"a label map is a class name, a GeoDataFrame of polygons or a raster on the scene's grid, "
                         f"got {type(labels).__name__}")
    if labels.crs is None:
        raise SceneError("the label polygons have no CRS; set one with gdf.set_crs(...)")
    if scene.rio.crs is None:
        raise SceneError("label polygons need a georeferenced scene: this grid has no CRS")
    if column not in labels.columns:
        raise SceneError(f"the label polygons have no column {column!r}; columns: {list(labels.columns)}")
    from affine import Affine
    from rasterio.features import rasterize

    polygons = labels.to_crs(scene.rio.crs)
    shapes = [(geom, _index(str(v), classes)) for geom, v in zip(polygons.geometry, polygons[column])
              if geom is not None and not geom.is_empty]
    # Lattice cell (i, j) is centred on scene pixel (i * step, j * step).
    transform = scene.rio.transform() * Affine.translation(-(step - 1) / 2, -(step - 1) / 2) * Affine.scale(step)
    burned = rasterize(shapes, out_shape=shape, transform=transform, fill=null, dtype="int16") if shapes else \
        np.full(shape, null, np.int16)
    return LabelLattice(burned, step, null)


def _index(name: str, classes: list[str]) -> int:
    if name not in classes:
        raise SceneError(f"unknown class {name!r} in the label map; the model's classes are {classes}")
    return classes.index(name)


def _raster_classes(values: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class indices of raster cells holding names or indices; NaN, None, '' and negative: null."""
    null = len(classes)
    if values.dtype.kind in "OUS":
        out = np.full(values.shape, null, np.int16)
        for name in {str(v) for v in values.ravel() if isinstance(v, str) and v}:
            out[values == name] = _index(name, classes)
        return out
    finite = np.isfinite(values) & (values >= 0)
    bad = finite & ((values != np.round(values)) | (values >= null))
    if bad.any():
        raise SceneError(f"label raster values must be class indices 0..{null - 1} (or NaN / negative for none), "
                         f"got {values[bad][0]!r}")
    return np.where(finite, values, null).astype(np.int16)


def _check_same_grid(raster: xr.DataArray, scene: xr.DataArray) -> None:
    if (raster.sizes.get("y"), raster.sizes.get("x")) != (scene.sizes["y"], scene.sizes["x"]) or raster.ndim != 2:
        raise SceneError(f"the label raster is {dict(raster.sizes)}, the scene's grid is "
                         f"{scene.sizes['y']} x {scene.sizes['x']}: give it on the scene's grid (rio.reproject_match)")
    crs_r, crs_s = raster.rio.crs, scene.rio.crs
    if (crs_r is None) != (crs_s is None) or (crs_r is not None and crs_r != crs_s):
        raise SceneError(f"the label raster's CRS ({crs_r}) is not the scene's ({crs_s}): reproject it with "
                         "rio.reproject_match(scene)")
    if crs_s is not None and not np.allclose(tuple(raster.rio.transform())[:6], tuple(scene.rio.transform())[:6]):
        raise SceneError("the label raster's transform is not the scene's: reproject it with rio.reproject_match(scene)")
