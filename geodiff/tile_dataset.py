"""A map-style torch Dataset of training tiles that streams them from lazy scenes.

The bridge between the xarray side (scenes, the tile index) and the torch layer, which never
sees xarray: item ``i`` is index row ``i`` read from its scene, scaled with its coefficients,
gap-filled and augmented, as a ``(band, y, x)`` float32 tensor. Scenes are opened in the process
that reads them and their dask chunks kept in a small least-recently-used cache, so the training
set can be far larger than memory and DataLoader worker processes each read their own.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import xarray as xr

from geodiff.collection import Member, collect
from geodiff.errors import GeodiffError
from geodiff.labels import label_source, multi_hot, vocabulary
from geodiff.scaling import Coefficients, ScaleCondition, Scaler
from geodiff.tile_index import Tiling, index_tiles
from geodiff.tiling.augment import area_mean, coarsened
from geodiff.tiling.fill import FillMethod, fill_planes
from geodiff.tiling.grid import _pair

#: Bytes of scene chunks each reading process keeps.
CACHE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Augment:
    """Random per-tile augmentation, drawn per training step (so runs are reproducible).

    Attributes
    ----------
    flips, rot90
        Random horizontal flips and quarter turns (off by default: SAR geometry is anisotropic,
        see :func:`geodiff.tiling.dihedral`).
    shift
        GANInSAR's random value shift ``(low, high)`` in scene units, added to a tile before it is
        scaled. A fixed or global scaler sees it; per-tile scaling takes it out again (the tile's
        own statistics move with it).
    """

    flips: bool = False
    rot90: bool = False
    shift: tuple[float, float] | None = None

    @property
    def active(self) -> bool:
        return self.flips or self.rot90 or self.shift is not None


class TileDataset(torch.utils.data.Dataset):
    """Training tiles of a collection of scenes, read per item from the lazy scenes.

    Build it with :meth:`from_scenes`; :meth:`subset` keeps some of its rows (a split, an area).

    Attributes
    ----------
    index : geopandas.GeoDataFrame
        One row per tile (see :mod:`geodiff.tile_index`); item ``i`` is row ``i``.
    members
        The scenes, by id.
    tiling : Tiling
        How the tiles were cut (``tile`` is its tile size).
    scaler, fill, augment
        How every tile is scaled, gap-filled and augmented.
    classes
        The label vocabulary (sorted class names), empty without labels.
    bands, units
        Band names (None for single-band scenes) and the scenes' units.
    skipped
        ``(scene id, why)`` of the scenes that gave no tile.
    low_res
        For super-resolution: items are ``(tile, low)`` pairs, ``low`` the tile area-averaged by
        this factor (in linear power for backscatter), both scaled with coefficients measured on
        ``low``, as an upsampling model sees them (:meth:`with_low_res`). None: tiles only.
    paired
        For paired conditioning (a denoiser): the conditioning scene of each scene, by id; items
        are ``(tile, condition)`` pairs, the condition the same window of its scene, both scaled
        with the condition's coefficients (:meth:`with_condition`).
    scale_condition
        For a scale-conditioned model: items are ``(tile, scale image)`` pairs, the image the
        tile's standardised log scale, ``(band, 1, 1)`` (:meth:`with_scale_condition`).
    """

    def __init__(self, index, members: dict[str, Member], *, scaler: Scaler, tiling: Tiling, fill: FillMethod = "nearest",
                 augment: Augment | None = None, bands=None, units=None, skipped=(), cache_bytes: int = CACHE_BYTES,
                 low_res: int | None = None, paired: dict[str, Member] | None = None,
                 scale_condition: ScaleCondition | None = None):
        self.index = index.reset_index(drop=True)
        self.members = members
        self.scaler, self.fill, self.augment = scaler, fill, augment or Augment()
        self.tiling, self.tile = tiling, tiling.tile
        self.bands, self.units, self.skipped = bands, units, list(skipped)
        self.classes = vocabulary(self.index["labels"])
        self.cache_bytes, self.low_res, self.paired = cache_bytes, low_res, paired
        self.scale_condition = scale_condition
        suffixes = [""] if not bands else [f"_{b}" for b in bands]
        self._loc = np.stack([self.index[f"loc{s}"].to_numpy(np.float64) for s in suffixes], 1)
        self._scale = np.stack([self.index[f"scale{s}"].to_numpy(np.float64) for s in suffixes], 1)
        self._scene = self.index["scene"].to_numpy()
        self._window = self.index[["row", "col", "factor"]].to_numpy(np.int64)
        if self.augment.rot90 and self.tile[0] != self.tile[1]:
            raise GeodiffError(f"rot90 needs square tiles, got {self.tile[0]}x{self.tile[1]}")
        self._cache = _ChunkCache(cache_bytes)

    @classmethod
    def from_scenes(cls, scenes, tile=64, *, overlap: int = 0, max_nodata: float = 0.5,
                    patch: tuple[float, float] | None = None, scales=(1,), scaler: Scaler | str = "minmax",
                    fill: FillMethod = "nearest", augment: Augment | None = None, labels=None,
                    label_column: str = "label", label_rule: str = "majority", band_files=None, band=None,
                    nodata: float | None = None, units: str | None = None, progress: bool = True) -> TileDataset:
        """Collect the scenes (see :func:`geodiff.collection.collect`), index their tiles in one
        pass and stream them.

        Parameters
        ----------
        scenes, band_files, band, nodata, units
            As for :func:`geodiff.collection.collect`.
        tile, overlap, max_nodata, patch, scales
            As for :class:`geodiff.tile_index.Tiling` (``tile`` in pixels).
        scaler, fill, augment
            Per-tile scaling (a :class:`~geodiff.scaling.Scaler` or a method name), gap filling,
            augmentation.
        labels, label_column, label_rule
            Tile labels: ``"attrs"``, ``"json"`` or a GeoDataFrame of polygons with classes in
            ``label_column``, rasterised per tile by ``label_rule`` (``"majority"``,
            ``"fraction"``); see :mod:`geodiff.labels`.
        """
        scaler = Scaler(scaler) if isinstance(scaler, str) else scaler
        members = collect(scenes, band_files=band_files, band=band, nodata=nodata, units=units)
        tiling = Tiling(_pair(tile), overlap, max_nodata, patch, tuple(scales))
        found = index_tiles(members, tiling, scaler, labels=label_source(labels, column=label_column, rule=label_rule),
                            progress=progress)
        return cls(found.index, {m.id: m for m in members}, scaler=scaler, tiling=tiling, fill=fill,
                   augment=augment, bands=found.bands, units=found.units, skipped=found.skipped)

    def subset(self, rows) -> TileDataset:
        """The dataset over index rows ``rows`` (positions or a boolean mask), e.g. a split or the
        tiles of an area (``ds.subset(ds.index.intersects(aoi))``)."""
        rows = np.asarray(rows)
        picked = self.index.iloc[np.flatnonzero(rows) if rows.dtype == bool else rows]
        return TileDataset(picked, self.members, scaler=self.scaler, tiling=self.tiling, fill=self.fill,
                           augment=self.augment, bands=self.bands, units=self.units, skipped=self.skipped,
                           cache_bytes=self.cache_bytes, low_res=self.low_res, paired=self.paired,
                           scale_condition=self.scale_condition)

    @staticmethod
    def _check_one_image(*others) -> None:
        if any(others):
            raise GeodiffError("a dataset is conditioned on one image: its low-resolution tiles, paired scenes "
                               "or the tiles' scale")

    def with_low_res(self, factor: int) -> TileDataset:
        """The same tiles as ``(tile, low-resolution tile)`` pairs for training an upsampling
        model by ``factor``."""
        if not (isinstance(factor, int) and factor >= 2):
            raise GeodiffError(f"an upsampling factor is an integer >= 2, got {factor!r}")
        if self.tile[0] % factor or self.tile[1] % factor:
            raise GeodiffError(f"the {self.tile[0]}x{self.tile[1]} tile does not split into {factor}x{factor} blocks")
        if tuple(self.tiling.scales) != (1,):
            raise GeodiffError("super-resolution learns from the tiles at their own resolution: use scales=(1,)")
        self._check_one_image(self.paired, self.scale_condition)
        out = self.subset(np.arange(len(self)))
        out.low_res = int(factor)
        return out

    def with_scale_condition(self) -> TileDataset:
        """The same tiles as ``(tile, scale image)`` pairs for a scale-conditioned model
        (:mod:`geodiff.scaling.condition`), the standardisation fitted on these tiles."""
        if not self.scaler.per_tile or self.scaler.method == "fixed":
            raise GeodiffError("scale conditioning tells the network each tile's own scale: it needs a per-tile "
                               f"scaler, not {self.scaler.method!r} with per_tile={self.scaler.per_tile}")
        self._check_one_image(self.low_res, self.paired)
        out = self.subset(np.arange(len(self)))
        out.scale_condition = ScaleCondition.fit(self._scale)
        return out

    def with_condition(self, scenes) -> TileDataset:
        """The same tiles as ``(tile, condition)`` pairs, the condition read from the same window
        of the matching scene of ``scenes`` (collected as :func:`geodiff.collection.collect`
        does, one per scene of this dataset, in order, on the same grids): a model trained on
        them learns these scenes given those (a denoiser learns clean given noisy)."""
        self._check_one_image(self.low_res, self.scale_condition)
        conditions = collect(scenes)
        if len(conditions) != len(self.members):
            raise GeodiffError(f"{len(conditions)} conditioning scenes for {len(self.members)} scenes: give one per scene")
        for (scene_id, member), condition in zip(self.members.items(), conditions):
            a, b = member.open(), condition.open()
            if a.shape != b.shape:
                raise GeodiffError(f"the conditioning scene {condition.id} is {dict(b.sizes)}, scene {scene_id} is "
                                   f"{dict(a.sizes)}: each pair shares one grid")
        out = self.subset(np.arange(len(self)))
        out.paired = dict(zip(self.members, conditions))
        return out

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        scenes = self.index["scene"].nunique()
        return (f"TileDataset({len(self)} tiles of {self.tile[0]}x{self.tile[1]} px from {scenes} scene(s), "
                f"bands={self.bands}, units={self.units!r}, classes={len(self.classes)})")

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None  # each process reads its own chunks
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = _ChunkCache(self.cache_bytes)

    # -- reading ---------------------------------------------------------------------------------

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.__getitems__([i])[0]

    def __getitems__(self, items) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """A batch: ``items`` are row positions, or ``(position, draw)`` pairs where ``draw`` is a
        ``(flip, turns, shift)`` augmentation (as :meth:`draws` makes them). With
        :attr:`low_res`, :attr:`paired` or :attr:`scale_condition`, a ``(tiles, conditioning
        images)`` pair."""
        channels, (h, w) = self._loc.shape[1], self.tile
        out = np.empty((len(items), channels, h, w), np.float32)
        f = self.low_res or 1
        low = np.empty((len(items), channels, h // f, w // f), np.float32) if self.low_res or self.paired else None
        rows = []
        for k, item in enumerate(items):
            i, draw = (item, None) if np.isscalar(item) else item
            planes = self._tile(int(i), draw)
            out[k] = planes[0]
            rows.append(int(i))
            if len(planes) > 1:
                low[k] = planes[1]
        if self.scale_condition:
            low = self.scale_condition.image(self._scale[rows])
        return torch.from_numpy(out) if low is None else (torch.from_numpy(out), torch.from_numpy(low))

    def _tile(self, i: int, draw) -> list[np.ndarray]:
        """Row ``i`` scaled, filled and augmented: ``[tile]``, or ``[tile, low]`` with :attr:`low_res`."""
        values = self.raw(i)
        loc, scale = self._loc[i], self._scale[i]
        flip, turns, shift = draw if draw is not None else (False, 0, 0.0)
        if shift:
            values = values + values.dtype.type(shift)
            if self.scaler.per_tile and self.scaler.method != "fixed":
                loc = loc + shift  # the tile's own statistics move with it
        planes = [values]
        if self.low_res:
            planes.append(area_mean(values, self.low_res, db=_is_db(self.units)))
        elif self.paired:
            planes.append(self._paired_raw(i) + values.dtype.type(shift))
        if len(planes) > 1 and self.scaler.per_tile and self.scaler.method != "fixed":
            # The coefficients a conditioned model can know at sampling time: its condition's.
            loc, scale = self.scaler._tile_statistics(planes[1])
        out = []
        for plane in planes:
            filled = fill_planes(self.scaler._scale_block(plane, loc, scale), self.fill)
            if flip:
                filled = np.flip(filled, -1)
            out.append(np.rot90(filled, turns, axes=(-2, -1)) if turns else filled)
        return out

    def raw(self, i: int) -> np.ndarray:
        """Row ``i``'s tile in scene units, NaN as nodata, ``(band, y, x)``, unscaled."""
        row, col, factor = (int(v) for v in self._window[i])
        scene_id = self._scene[i]
        opener = partial(_open_coarsened, self.members[scene_id], factor)
        return self._cache.window((scene_id, factor), opener, row // factor, col // factor, *self.tile)

    def _paired_raw(self, i: int) -> np.ndarray:
        """Row ``i``'s window of its paired conditioning scene, in scene units."""
        row, col, factor = (int(v) for v in self._window[i])
        scene_id = self._scene[i]
        opener = partial(_open_coarsened, self.paired[scene_id], factor)
        return self._cache.window(("paired", scene_id, factor), opener, row // factor, col // factor, *self.tile)

    def draws(self, positions, generator: torch.Generator) -> list:
        """``positions`` with random augmentations from ``generator`` (positions alone when the
        augmentation is off)."""
        a = self.augment
        if not a.active:
            return list(positions)
        n = len(positions)
        flip = (torch.rand(n, generator=generator) < 0.5).tolist() if a.flips else [False] * n
        turns = torch.randint(4, (n,), generator=generator).tolist() if a.rot90 else [0] * n
        if a.shift is not None:
            low, high = a.shift
            shift = (low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)).tolist()
        else:
            shift = [0.0] * n
        return [(int(p), (f, t, s)) for p, f, t, s in zip(positions, flip, turns, shift)]

    def labels(self) -> torch.Tensor | None:
        """``(n, classes)`` multi-hot labels of every tile, or None without labels."""
        if not self.classes:
            return None
        return torch.from_numpy(np.stack([multi_hot(v or [], self.classes) for v in self.index["labels"]]))

    def to_tensor(self) -> torch.Tensor:
        """Every tile, unaugmented, as one ``(n, band, y, x)`` tensor (for data that fits in memory)."""
        return self.__getitems__(list(range(len(self))))

    # -- what a model keeps ------------------------------------------------------------------------

    def coefficients(self) -> Coefficients:
        """The tiles' scaling coefficients with their scene-pixel origins (and scene ids in
        ``meta["scene"]``, labels in ``meta["labels"]``), as a fitted model keeps them."""
        meta = {"scene": self._scene.tolist()}
        if self.classes:
            meta["labels"] = [list(v or []) for v in self.index["labels"]]
        return Coefficients(self.scaler.method, self._loc, self._scale, self._window[:, 0], self._window[:, 1],
                            self.bands, self.units, self.scaler.db, meta)



def _is_db(units) -> bool:
    return str(units or "").strip().lower() == "db"


def _open_coarsened(member: Member, factor: int) -> xr.DataArray:
    return coarsened(member.open(), factor)


class _ChunkCache:
    """Scenes' dask chunks read once per process, least recently used first out.

    A scene is opened only to read a chunk that is not cached (opening costs tens of ms, a
    cached chunk nothing); its chunk layout is kept for good, so a warm cache opens no file.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._open: OrderedDict = OrderedDict()  # a few opened scenes, for runs of misses
        self._layout: dict = {}
        self._chunks: OrderedDict = OrderedDict()
        self._bytes = 0

    def _source(self, key, opener) -> xr.DataArray:
        if key not in self._open:
            source = opener()
            self._open[key] = source
            if len(self._open) > 16:
                self._open.popitem(last=False)
            bounds = (None, None) if source.chunks is None else \
                (np.cumsum((0, *source.chunks[1])), np.cumsum((0, *source.chunks[2])))
            self._layout[key] = bounds
        self._open.move_to_end(key)
        return self._open[key]

    def window(self, key, opener, row: int, col: int, h: int, w: int) -> np.ndarray:
        """Rows ``row:row+h`` and columns ``col:col+w`` of the scene ``opener`` opens, all bands."""
        if key not in self._layout:
            self._source(key, opener)
        y_bounds, x_bounds = self._layout[key]
        if y_bounds is None:  # an in-memory scene
            return np.asarray(self._source(key, opener).data[:, row:row + h, col:col + w])
        parts = {}
        for bi in range(np.searchsorted(y_bounds, row, "right") - 1, np.searchsorted(y_bounds, row + h)):
            for bj in range(np.searchsorted(x_bounds, col, "right") - 1, np.searchsorted(x_bounds, col + w)):
                parts[bi, bj] = self._chunk(key, opener, bi, bj)
        first = next(iter(parts.values()))
        out = np.empty((first.shape[0], h, w), first.dtype)
        for (bi, bj), block in parts.items():
            r0, r1 = max(row, y_bounds[bi]), min(row + h, y_bounds[bi + 1])
            c0, c1 = max(col, x_bounds[bj]), min(col + w, x_bounds[bj + 1])
            out[:, r0 - row:r1 - row, c0 - col:c1 - col] = block[:, r0 - y_bounds[bi]:r1 - y_bounds[bi],
                                                                 c0 - x_bounds[bj]:c1 - x_bounds[bj]]
        return out

    def _chunk(self, key, opener, bi: int, bj: int) -> np.ndarray:
        ck = (*key, bi, bj)
        if ck in self._chunks:
            self._chunks.move_to_end(ck)
            return self._chunks[ck]
        source = self._source(key, opener)
        block = np.asarray(source.data.blocks[:, bi, bj].compute(scheduler="synchronous"))
        self._chunks[ck] = block
        self._bytes += block.nbytes
        while self._bytes > self.max_bytes and len(self._chunks) > 1:
            _, old = self._chunks.popitem(last=False)
            self._bytes -= old.nbytes
        return block
