"""Training-set augmentation: value shifts, multi-scale tiles, flips and quarter turns."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from affine import Affine

from geodiff.errors import TilingError
from geodiff.tiling.grid import Edge, TileGrid


def random_shift(tiles: xr.DataArray, low: float = -5.0, high: float = 5.0, seed=None) -> xr.DataArray:
    """Add a constant drawn uniformly from ``[low, high)`` to each tile (scene units).

    GANInSAR (Zhou et al. 2024) shifts deformation-rate patches by up to +-5 in early epochs so
    the model does not tie patterns to one absolute level.
    """
    rng = np.random.default_rng(seed)
    shift = xr.DataArray(rng.uniform(low, high, tiles.sizes["tile"]), dims="tile")
    return (tiles + shift.astype(tiles.dtype)).assign_attrs(tiles.attrs)


def multiscale(scene: xr.DataArray, size: int | tuple[int, int], factor: int, overlap=0,
               edge: Edge = "shift") -> tuple[TileGrid, xr.DataArray]:
    """Tiles that each cover ``factor * size`` scene pixels, averaged down to ``size``.

    Equivalent to reading ``factor``-times larger windows and downsampling them by a NaN-aware
    block mean, done once on the scene (lazily) rather than per window. Returns the grid over the
    coarsened scene (its transform has ``factor``-times larger pixels) and the tile stack.
    """
    coarse = coarsened(scene, factor)
    grid = TileGrid.from_scene(coarse, size, overlap, edge)
    return grid, grid.stack(coarse)


def coarsened(scene: xr.DataArray, factor: int) -> xr.DataArray:
    """The scene block-averaged by ``factor`` (NaN-aware; a partial last block is dropped), with
    ``factor``-times larger pixels in its transform."""
    if factor < 1:
        raise TilingError(f"factor must be a positive integer, got {factor}")
    if factor == 1:
        return scene
    coarse = scene.coarsen(y=factor, x=factor, boundary="trim").mean()  # NaN-aware for floats
    coarse = coarse.assign_attrs(scene.attrs)
    if scene.rio.crs is not None:
        coarse = coarse.rio.write_crs(scene.rio.crs).rio.write_transform(
            scene.rio.transform(recalc=True) @ Affine.scale(factor)
        )
    return coarse


def area_mean(values: np.ndarray, factor: int, *, db: bool = False) -> np.ndarray:
    """``(..., h, w)`` block-averaged by ``factor`` over its last two axes (NaN-aware; sides must
    divide). ``db``: the values are decibels, averaged as linear power (what a coarser radar
    resolution cell measures) and returned in dB."""
    h, w = values.shape[-2:]
    if h % factor or w % factor:
        raise TilingError(f"a {h}x{w} tile does not split into {factor}x{factor} blocks")
    x = 10.0 ** (values / 10.0) if db else values
    blocks = x.reshape(*x.shape[:-2], h // factor, factor, w // factor, factor)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
        mean = np.nanmean(blocks, axis=(-3, -1))
    return (10.0 * np.log10(mean) if db else mean).astype(values.dtype, copy=False)


def dihedral(tiles: xr.DataArray, *, flips: bool = False, rot90: bool = False, seed=None) -> xr.DataArray:
    """Randomly flip and/or rotate each tile by quarter turns.

    Off by default: SAR geometry is anisotropic (range vs azimuth, look direction), so a flipped
    interferogram is a different acquisition geometry. Enable for isotropic targets only.
    Quarter turns need square tiles. Returns a new, in-memory DataArray.
    """
    if not (flips or rot90):
        return tiles
    if rot90 and tiles.sizes["y"] != tiles.sizes["x"]:
        raise TilingError(f"rot90 needs square tiles, got {tiles.sizes['y']}x{tiles.sizes['x']}")
    rng = np.random.default_rng(seed)
    values = np.array(tiles.transpose("tile", ..., "y", "x").values, copy=True)
    n = values.shape[0]
    turns = rng.integers(0, 4, n) if rot90 else np.zeros(n, dtype=int)
    flip = rng.integers(0, 2, n).astype(bool) if flips else np.zeros(n, dtype=bool)
    for i in range(n):
        v = np.flip(values[i], axis=-1) if flip[i] else values[i]
        values[i] = np.rot90(v, turns[i], axes=(-2, -1))
    out = tiles.transpose("tile", ..., "y", "x").copy(data=values)
    return out.transpose(*tiles.dims)
