"""A grid of (possibly overlapping) tiles over a scene: windows, georeferencing, lazy extraction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import dask.array as darr
import numpy as np
import xarray as xr
from affine import Affine
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from geodiff.errors import TilingError

Edge = Literal["shift", "pad"]


def _starts(length: int, size: int, stride: int, edge: Edge) -> np.ndarray:
    """Window starts along one axis covering every pixel of ``length``.

    ``shift`` moves the last window back so it ends on the edge (it overlaps its neighbour more);
    ``pad`` lets the last window run past the edge, to be filled with nodata.
    """
    starts = np.arange(0, max(length - size, 0) + 1, stride)
    if starts[-1] + size < length:
        starts = np.append(starts, length - size if edge == "shift" else starts[-1] + stride)
    return starts


@dataclass(frozen=True)
class Tile:
    """One window of a :class:`TileGrid`: pixel offsets and its own affine transform."""

    index: int
    row: int
    col: int
    height: int
    width: int
    transform: Affine | None

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


@dataclass(frozen=True)
class TileGrid:
    """Tiles of ``size`` pixels, ``overlap`` pixels shared between neighbours, over a scene.

    Every scene pixel lies in at least one tile. Build it with :meth:`from_scene`.

    Attributes
    ----------
    shape
        Scene ``(height, width)`` in pixels.
    size
        Tile ``(height, width)`` in pixels.
    overlap
        Pixels shared by neighbouring tiles, ``(rows, cols)``.
    edge
        ``"shift"``: the last row/column of tiles is moved back inside the scene; ``"pad"``: it
        runs past the edge and the outside is nodata.
    transform
        Affine transform of the scene (``None`` for a scene without CRS).
    """

    shape: tuple[int, int]
    size: tuple[int, int]
    overlap: tuple[int, int] = (0, 0)
    edge: Edge = "shift"
    transform: Affine | None = None

    def __post_init__(self):
        (h, w), (th, tw), (oh, ow) = self.shape, self.size, self.overlap
        if th <= 0 or tw <= 0:
            raise TilingError(f"tile size must be positive, got {self.size}")
        if not (0 <= oh < th and 0 <= ow < tw):
            raise TilingError(f"overlap {self.overlap} must be >= 0 and smaller than the tile {self.size}")
        if th > h or tw > w:
            raise TilingError(
                f"tile {th}x{tw} is larger than the scene {h}x{w}; use a tile of at most {min(h, w)} pixels"
            )
        if self.edge not in ("shift", "pad"):
            raise TilingError(f"edge must be 'shift' or 'pad', got {self.edge!r}")

    @classmethod
    def from_scene(cls, scene: xr.DataArray, size: int | tuple[int, int], overlap: int | tuple[int, int] = 0,
                   edge: Edge = "shift") -> TileGrid:
        """Tile grid over a DataArray with ``y``/``x`` dims, georeferenced like the scene."""
        size, overlap = _pair(size), _pair(overlap)
        transform = scene.rio.transform(recalc=True) if scene.rio.crs is not None else None
        return cls((scene.sizes["y"], scene.sizes["x"]), size, overlap, edge, transform)

    @property
    def stride(self) -> tuple[int, int]:
        return self.size[0] - self.overlap[0], self.size[1] - self.overlap[1]

    @property
    def row_starts(self) -> np.ndarray:
        return _starts(self.shape[0], self.size[0], self.stride[0], self.edge)

    @property
    def col_starts(self) -> np.ndarray:
        return _starts(self.shape[1], self.size[1], self.stride[1], self.edge)

    @property
    def origins(self) -> np.ndarray:
        """``(n, 2)`` array of tile top-left ``(row, col)``, row-major."""
        rows, cols = np.meshgrid(self.row_starts, self.col_starts, indexing="ij")
        return np.stack([rows.ravel(), cols.ravel()], axis=1)

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Extent covered by the tiles: the scene shape, or larger with ``edge="pad"``."""
        return (int(self.row_starts[-1]) + self.size[0], int(self.col_starts[-1]) + self.size[1])

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def __getitem__(self, index: int) -> Tile:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"tile {index} out of range for a grid of {n} tiles")
        index %= n
        i, j = divmod(index, len(self.col_starts))
        row, col = int(self.row_starts[i]), int(self.col_starts[j])
        transform = self.transform @ Affine.translation(col, row) if self.transform is not None else None
        return Tile(index, row, col, self.size[0], self.size[1], transform)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def aligned_chunks(self, tiles_per_chunk: int = 4) -> dict[str, int]:
        """Dask chunk sizes for the scene such that no tile of a non-overlapping grid straddles
        a chunk boundary (each tile is then read by a single slice of a single chunk)."""
        return {"y": self.stride[0] * tiles_per_chunk, "x": self.stride[1] * tiles_per_chunk}

    def tile(self, scene: xr.DataArray, index: int) -> xr.DataArray:
        """One tile as a georeferenced DataArray (padded with NaN past the edge for ``pad``)."""
        t = self[index]
        rows, cols = t.slices
        if rows.stop <= self.shape[0] and cols.stop <= self.shape[1]:
            return scene.isel(y=rows, x=cols)
        pad = {"y": (0, rows.stop - self.shape[0]), "x": (0, cols.stop - self.shape[1])}
        window = scene.isel(y=slice(rows.start, None), x=slice(cols.start, None))
        padded = window.pad(pad, mode="constant", constant_values=np.nan)
        return padded.assign_coords(y=_extend(scene["y"].values, rows), x=_extend(scene["x"].values, cols))

    def stack(self, scene: xr.DataArray, tiles_per_chunk: int | str = "auto") -> xr.DataArray:
        """All tiles as a lazy ``(tile, [band,] y, x)`` DataArray.

        ``y``/``x`` become pixel offsets inside the tile; each tile's position is in the ``row``
        and ``col`` coordinates (scene pixel of its top-left corner). Nothing is read until
        computed.

        Parameters
        ----------
        tiles_per_chunk
            Tiles per dask chunk. ``"auto"`` groups neighbouring tiles into chunks of about
            16 MiB, which keeps scheduling overhead small on scenes of thousands of tiles; ``1``
            makes every tile its own chunk, so computing one tile reads only what it covers.
        """
        data = scene.data if isinstance(scene.data, darr.Array) else darr.from_array(scene.data, chunks=-1)
        pad_y, pad_x = self.padded_shape[0] - self.shape[0], self.padded_shape[1] - self.shape[1]
        if pad_y or pad_x:
            if not np.issubdtype(data.dtype, np.floating):
                raise TilingError("edge='pad' needs a float scene (NaN nodata); open it with masked=True")
            lead = [(0, 0)] * (data.ndim - 2)
            data = darr.pad(data, lead + [(0, pad_y), (0, pad_x)], mode="constant", constant_values=np.nan)
        if tiles_per_chunk == "auto":
            tile_bytes = data.dtype.itemsize * int(np.prod(data.shape[:-2])) * self.size[0] * self.size[1]
            tiles_per_chunk = max(1, (4 * 2**20) // tile_bytes)
        stacked = _tile_array(data, self.origins, self.size, int(tiles_per_chunk))
        spatial = ("y", "x")
        dims = ("tile", *[d for d in scene.dims if d not in spatial], *spatial)
        th, tw = self.size
        origins = self.origins
        coords = {
            "tile": np.arange(len(self)),
            "row": ("tile", origins[:, 0]),
            "col": ("tile", origins[:, 1]),
            "y": np.arange(th),
            "x": np.arange(tw),
        }
        if "band" in scene.dims:
            coords["band"] = scene["band"].values
        out = xr.DataArray(stacked, dims=dims, coords=coords, attrs=dict(scene.attrs))
        out.encoding = {k: v for k, v in scene.encoding.items() if k in ("_FillValue", "dtype")}
        return out


def _tile_array(data: darr.Array, origins: np.ndarray, size: tuple[int, int], per_chunk: int) -> darr.Array:
    """Stack windows of ``data`` into a ``(tile, ..., th, tw)`` dask array, one task per chunk.

    Written as a graph rather than with dask slicing plus ``stack``: slicing builds several
    tasks per window, which for the ~7,000 tiles of a Sentinel-1 GRD costs seconds of graph
    construction and scheduling before any pixel is read.
    """
    th, tw = size
    lead = data.ndim - 2
    if any(len(c) > 1 for c in data.chunks[:lead]):
        data = data.rechunk({i: -1 for i in range(lead)})
    bounds = [np.cumsum((0,) + c) for c in data.chunks[-2:]]
    name = "tiles-" + tokenize(data.name, origins.tobytes(), size, per_chunk)

    def window(r, c):
        rows, cols = _pieces(bounds[0], r, r + th), _pieces(bounds[1], c, c + tw)
        blocks = [[(data.name, *([0] * lead), bi, bj) for bj, _ in cols] for bi, _ in rows]
        return (_assemble, blocks, [sl for _, sl in rows], [sl for _, sl in cols])

    starts = range(0, len(origins), per_chunk)
    graph = {
        (name, k, *([0] * lead), 0, 0): (np.stack, [window(r, c) for r, c in origins[s:s + per_chunk]])
        for k, s in enumerate(starts)
    }
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=[data])
    sizes = tuple(min(per_chunk, len(origins) - s) for s in starts)
    chunks = (sizes, *[(n,) for n in data.shape[:lead]], (th,), (tw,))
    return darr.Array(hlg, name, chunks, dtype=data.dtype)


def _pieces(bounds: np.ndarray, start: int, stop: int) -> list[tuple[int, slice]]:
    """``(block index, slice inside the block)`` for each chunk that ``[start, stop)`` crosses."""
    first = int(np.searchsorted(bounds, start, side="right")) - 1
    out = []
    for b in range(first, len(bounds) - 1):
        lo, hi = bounds[b], bounds[b + 1]
        if lo >= stop:
            break
        out.append((b, slice(max(start, lo) - lo, min(stop, hi) - lo)))
    return out


def _assemble(blocks, row_slices, col_slices) -> np.ndarray:
    parts = [[block[..., rs, cs] for block, cs in zip(row, col_slices)] for row, rs in zip(blocks, row_slices)]
    return parts[0][0] if len(parts) == 1 and len(parts[0]) == 1 else np.block(parts)


def _pair(value) -> tuple[int, int]:
    if np.isscalar(value):
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


def _extend(coord: np.ndarray, window: slice) -> np.ndarray:
    """A regular scene coordinate over ``window``, continued past the scene's end if needed."""
    step = coord[1] - coord[0] if coord.size > 1 else 1.0
    return coord[0] + step * np.arange(window.start, window.stop)
