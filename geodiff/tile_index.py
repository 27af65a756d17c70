"""The tile index of a collection of scenes: one GeoDataFrame row per training tile.

Built in one streaming pass over the scenes (each read once, lazily, a scene at a time): the
tile windows, their nodata fraction and filters, their scaling coefficients and labels, and
footprints in each scene's CRS and in EPSG:4326. The index is what the streaming
:class:`~geodiff.tile_dataset.TileDataset` reads tiles from, and what users inspect, filter by
area (``index[index.intersects(aoi)]``) and keep (``index.to_parquet(...)``, GeoParquet).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import dask
import numpy as np
import xarray as xr

from geodiff.collection import Member
from geodiff.errors import GeodiffError, SceneError, TilingError
from geodiff.labels import LabelSource, scene_labels, tile_labels
from geodiff.scaling import Scaler
from geodiff.scaling.db import nonpositive_counts, power_fraction
from geodiff.tiling import TileGrid, nodata_filter, patch_filter, valid_fraction
from geodiff.tiling.augment import coarsened


class SkippedSceneWarning(UserWarning):
    """A scene of a collection gives no training tile (smaller than a tile, or all filtered out)."""


@dataclass(frozen=True)
class Tiling:
    """How tiles are cut from every scene of a collection.

    Attributes
    ----------
    tile
        Tile ``(height, width)`` in pixels (of the coarsened scene, for ``factor > 1``).
    overlap
        Pixels shared by neighbouring tiles.
    max_nodata
        Tiles with a larger nodata fraction are not indexed.
    patch
        GANInSAR's patch filter ``(theta, a)`` in scene units, or None.
    scales
        Multi-scale patches (GANInSAR): for each factor ``f``, tiles covering ``f * tile`` scene
        pixels, block-averaged (NaN-aware) to ``tile``.
    """

    tile: tuple[int, int]
    overlap: int = 0
    max_nodata: float = 0.5
    patch: tuple[float, float] | None = None
    scales: tuple[int, ...] = (1,)

    def __post_init__(self):
        # Checked here, once: per scene a TilingError means "smaller than a tile" and skips it.
        if len(self.tile) != 2 or min(self.tile) < 1:
            raise TilingError(f"tile size must be positive, got {self.tile}")
        if not 0 <= self.overlap < min(self.tile):
            raise TilingError(f"overlap {self.overlap} must be >= 0 and smaller than the tile {self.tile}")
        if not self.scales or any(not isinstance(f, (int, np.integer)) or f < 1 for f in self.scales):
            raise GeodiffError(f"scales must be positive integer factors, got {self.scales!r}")


@dataclass
class Indexed:
    """What indexing a collection found: the index, the band names and units, and the scenes
    skipped (id and why)."""

    index: object
    bands: list[str] | None
    units: str | None
    skipped: list[tuple[str, str]]


def index_tiles(members: list[Member], tiling: Tiling, scaler: Scaler, *, labels: LabelSource | None = None,
                progress: bool = True) -> Indexed:
    """Index the training tiles of every member (each read once).

    Raises
    ------
    geodiff.errors.SceneError
        Members with different band counts or units, a file that cannot be opened (named),
        scenes without labels when labels are asked for (named), or no tile left at all.
    """
    import geopandas as gpd
    from tqdm.auto import tqdm

    if scaler.method == "robust" and not scaler.per_tile:
        raise GeodiffError("a global robust scaler needs every pixel of the collection at once; "
                           "use a per-tile scaler, or a global 'minmax' or 'standard' one")
    stats_scaler = replace(scaler, per_tile=True) if not scaler.per_tile else scaler
    parts, skipped, unlabelled = [], [], []
    first = None
    bar = not progress or len(members) < 2  # one scene is indexed at once
    for member in tqdm(members, desc="indexing tiles", unit="scene", disable=bar, dynamic_ncols=True):
        scene = member.open()
        first = first or (member, scene)
        _check_like(first, member, scene)
        whole = scene_labels(labels, member, scene) if labels is not None and labels.kind != "polygons" else None
        if labels is not None and labels.kind != "polygons" and whole is None:
            unlabelled.append(member.id)
            continue
        try:
            plans = [plan for f in tiling.scales if (plan := _plan(scene, f, tiling, stats_scaler)) is not None]
        except TilingError:
            if len(members) == 1:
                raise  # one scene: the tiling itself is wrong
            skipped.append((member.id, f"smaller than a tile of {tiling.tile[0]}x{tiling.tile[1]} px"))
            continue
        # Every scale's statistics and the dB check in one pass: the scene is read once.
        power = nonpositive_counts(scene.data) if scaler.db else ()
        measured, power = dask.compute([p.lazy for p in plans], power)
        if scaler.db:
            power_fraction(*power)
        found = [r for p, m in zip(plans, measured) if (r := _rows(member, scene, p, m, tiling, labels, whole))]
        if not found:
            skipped.append((member.id, "no tile passes the nodata and patch filters"))
            continue
        parts.extend(found)
    if unlabelled:
        raise SceneError(f"{len(unlabelled)} of {len(members)} scenes have no labels ({labels.kind}): "
                         f"{', '.join(unlabelled[:5])}{' ...' if len(unlabelled) > 5 else ''}")
    for scene_id, why in skipped:
        warnings.warn(f"scene {scene_id} is skipped: {why}", SkippedSceneWarning, stacklevel=3)
    if not parts:
        raise SceneError(f"none of the {len(members)} scenes gives a training tile: "
                         + "; ".join(f"{i}: {w}" for i, w in skipped[:3]))
    frame = gpd.GeoDataFrame(_concat(parts), geometry="geometry", crs="EPSG:4326")
    crss = set(frame["crs"])
    frame["footprint"] = gpd.GeoSeries(frame["footprint"], crs=crss.pop() if len(crss) == 1 else None)
    bands = _band_names(first[1])
    if not scaler.per_tile:
        frame = _global(frame, scaler, bands)
    return Indexed(frame, bands, first[1].attrs.get("units"), skipped)


def _check_like(first: tuple[Member, xr.DataArray], member: Member, scene: xr.DataArray) -> None:
    ref_member, ref = first
    if scene.sizes["band"] != ref.sizes["band"]:
        raise SceneError(f"scene {member.id} has {scene.sizes['band']} band(s), {ref_member.id} has "
                         f"{ref.sizes['band']}: every scene of a collection needs the same bands")
    if _band_names(scene) != _band_names(ref):
        raise SceneError(f"scene {member.id} has bands {_band_names(scene)}, {ref_member.id} has "
                         f"{_band_names(ref)}")
    if scene.attrs.get("units") != ref.attrs.get("units"):
        raise SceneError(f"scene {member.id} is in {scene.attrs.get('units')!r}, {ref_member.id} in "
                         f"{ref.attrs.get('units')!r}: convert them to one unit first")


def _band_names(scene: xr.DataArray) -> list[str] | None:
    return [str(b) for b in scene["band"].values] if "band" in scene.coords and scene.sizes["band"] > 1 else None


@dataclass
class _Plan:
    """One scale of one scene: its tile grid and the lazy per-tile measures."""

    factor: int
    source: xr.DataArray
    grid: TileGrid
    lazy: dict


def _plan(scene: xr.DataArray, factor: int, tiling: Tiling, scaler: Scaler) -> _Plan | None:
    source = coarsened(scene, factor)
    if factor > 1 and min(source.sizes["y"] / tiling.tile[0], source.sizes["x"] / tiling.tile[1]) < 1:
        return None  # too small for the coarser scales only
    grid = TileGrid.from_scene(source, tiling.tile, tiling.overlap, edge="shift")
    tiles = grid.stack(source)
    keep = nodata_filter(tiles, tiling.max_nodata)
    if tiling.patch is not None:
        keep = keep & patch_filter(tiles, *tiling.patch)
    loc, scale = scaler.statistics(tiles)
    lazy = {"keep": keep, "valid": valid_fraction(tiles), "count": np.isfinite(tiles).sum(("y", "x")),
            "loc": loc, "scale": scale}
    return _Plan(factor, source, grid, lazy)


def _rows(member, scene, plan: _Plan, measured: dict, tiling: Tiling, labels, whole) -> dict | None:
    """The index rows of the tiles of one scale that pass the filters."""
    factor, source, grid = plan.factor, plan.source, plan.grid
    picked = np.flatnonzero(measured["keep"].values)
    if picked.size == 0:
        return None
    origins = grid.origins[picked]
    tile_list = [grid[int(i)] for i in picked]
    crs = scene.rio.crs
    columns = {
        "scene": [member.id] * picked.size,
        "row": origins[:, 0] * factor, "col": origins[:, 1] * factor, "factor": [factor] * picked.size,
        "height": [tiling.tile[0] * factor] * picked.size, "width": [tiling.tile[1] * factor] * picked.size,
        "nodata": 1.0 - measured["valid"].values[picked],
    }
    names = _band_names(scene) or [str(i) for i in range(scene.sizes["band"])]
    for k, name in enumerate(names):
        suffix = "" if len(names) == 1 else f"_{name}"
        for column in ("loc", "scale", "count"):
            columns[f"{column}{suffix}"] = measured[column].transpose("tile", "band").values[picked, k]
    if labels is None:
        columns["labels"] = [None] * picked.size
    elif labels.kind == "polygons":
        if crs is None:
            raise SceneError(f"scene {member.id} has no CRS: labelled polygons cannot be placed on it")
        columns["labels"] = tile_labels(labels, source, [t.transform for t in tile_list], tiling.tile)
    else:
        columns["labels"] = [list(whole)] * picked.size
    columns["split"] = ["train"] * picked.size
    columns["crs"] = [crs.to_string() if crs is not None else None] * picked.size
    footprints = _footprints(tile_list, tiling.tile)
    columns["footprint"] = footprints
    columns["geometry"] = _to_wgs84(footprints, crs)
    return columns


def _footprints(tiles, size):
    from shapely.geometry import Polygon

    out = []
    for t in tiles:
        if t.transform is None:
            x0, y0, x1, y1 = t.col, t.row, t.col + t.width, t.row + t.height
            out.append(Polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
            continue
        corners = [t.transform @ (c, r) for c, r in ((0, 0), (size[1], 0), (size[1], size[0]), (0, size[0]))]
        out.append(Polygon(corners))
    return out


def _to_wgs84(footprints, crs):
    import geopandas as gpd

    if crs is None:
        return [None] * len(footprints)
    return list(gpd.GeoSeries(footprints, crs=crs).to_crs("EPSG:4326"))


def _concat(parts: list[dict]) -> dict:
    keys = parts[0].keys()
    return {k: [v for p in parts for v in list(p[k])] for k in keys}


def _global(frame, scaler: Scaler, bands):
    """Per-tile statistics combined into one set for every tile (a global minmax or standard scaler)."""
    suffixes = [""] if not bands else [f"_{b}" for b in bands]
    for s in suffixes:
        loc, scale, count = (frame[f"{c}{s}"].to_numpy(float) for c in ("loc", "scale", "count"))
        if scaler.method == "minmax":
            low, high = np.nanmin(loc - scale), np.nanmax(loc + scale)
            g_loc, g_scale = (low + high) / 2, (high - low) / 2
        elif scaler.method == "standard":
            g_loc = np.average(loc, weights=count)
            g_scale = np.sqrt(np.average(scale**2 + (loc - g_loc) ** 2, weights=count))
        else:  # fixed: the same coefficients on every tile already
            continue
        frame[f"loc{s}"], frame[f"scale{s}"] = g_loc, g_scale
    return frame
