"""Stitch tiles back into a scene: exact without overlap, feathered where tiles overlap."""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from geodiff.tiling.grid import TileGrid

Blend = Literal["linear", "uniform"]


def blend_weights(size: tuple[int, int], overlap: tuple[int, int], kind: Blend = "linear") -> np.ndarray:
    """Per-pixel weights of one tile: 1 inside, ramping down across the overlap margins.

    ``linear`` ramps as (i + 0.5) / overlap towards each edge, so two overlapping tiles' weights
    sum to a constant and seams blend smoothly; ``uniform`` averages overlapping tiles equally.
    """
    def ramp(n: int, o: int) -> np.ndarray:
        w = np.ones(n)
        if kind == "linear" and o > 0:
            edge = (np.arange(o) + 0.5) / o
            w[:o] = np.minimum(w[:o], edge)
            w[n - o:] = np.minimum(w[n - o:], edge[::-1])
        return w

    return np.outer(ramp(size[0], overlap[0]), ramp(size[1], overlap[1]))


def untile(tiles, grid: TileGrid, blend: Blend = "linear", like: xr.DataArray | None = None):
    """Reassemble ``(tile, ..., y, x)`` tiles into a ``(..., y, x)`` scene.

    With no overlap each pixel comes from exactly one tile (or, for a shifted last tile, the
    tiles agree when they were cut from one scene) and the result is exact. With overlap, pixels
    are weighted averages under :func:`blend_weights`. NaN pixels carry no weight.

    Parameters
    ----------
    tiles
        Array or DataArray with the tile axis first, in ``grid`` order.
    grid
        The grid the tiles were cut with.
    like
        Scene to take coordinates, CRS and attrs from; the result is then a DataArray.
    """
    values = np.asarray(tiles.values if isinstance(tiles, xr.DataArray) else tiles)
    if values.shape[0] != len(grid):
        raise ValueError(f"{values.shape[0]} tiles given for a grid of {len(grid)}")
    lead = values.shape[1:-2]
    ph, pw = grid.padded_shape
    total = np.zeros(lead + (ph, pw))
    weight = np.zeros(lead + (ph, pw))
    w = blend_weights(grid.size, grid.overlap, blend)
    th, tw = grid.size
    for tile, (r, c) in zip(values, grid.origins):
        finite = np.isfinite(tile)
        total[..., r:r + th, c:c + tw] += np.where(finite, tile, 0.0) * w
        weight[..., r:r + th, c:c + tw] += finite * w
    with np.errstate(invalid="ignore", divide="ignore"):
        scene = (total / weight)[..., : grid.shape[0], : grid.shape[1]]
    scene = scene.astype(values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64)
    if like is None:
        return scene
    return like.copy(data=scene.reshape(like.shape))
