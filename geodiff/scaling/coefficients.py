"""Per-tile normalisation coefficients: storage, exact JSON round trip, and choosing coefficients
for generated tiles."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from geodiff.jsonable import json_ready


@dataclass
class Coefficients:
    """Affine normalisation coefficients, one ``(loc, scale)`` pair per tile and band.

    A value ``x`` scales to ``center + half_range * (x - loc) / scale`` (see
    :class:`geodiff.scaling.Scaler`); ``scale == 0`` marks a constant tile.

    Attributes
    ----------
    method
        Name of the scaler that produced them (``"minmax"``, ``"robust"``, ...).
    loc, scale
        ``(n_tiles, n_bands)`` float64 arrays in the scene's units (in dB when ``db``).
    row, col
        ``(n_tiles,)`` scene-pixel origins of the tiles they were measured on, or ``None``.
    bands
        Band names, or ``None`` for a single-band scene.
    units
        Physical units of the data they were measured on.
    db
        Whether the statistics were taken after the dB transform.
    """

    method: str
    loc: np.ndarray
    scale: np.ndarray
    row: np.ndarray | None = None
    col: np.ndarray | None = None
    bands: list[str] | None = None
    units: str | None = None
    db: bool = False
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.loc = np.atleast_2d(np.asarray(self.loc, dtype=np.float64))
        self.scale = np.atleast_2d(np.asarray(self.scale, dtype=np.float64))
        if self.loc.shape != self.scale.shape:
            raise ValueError(f"loc {self.loc.shape} and scale {self.scale.shape} differ in shape")
        for name in ("row", "col"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value, dtype=np.int64))

    def __len__(self) -> int:
        return self.loc.shape[0]

    def __repr__(self) -> str:
        return (f"Coefficients(method={self.method!r}, tiles={len(self)}, bands={self.loc.shape[1]}, "
                f"units={self.units!r}, db={self.db})")

    def subset(self, index) -> Coefficients:
        """Coefficients of the tiles at ``index`` (an integer array or slice); per-tile lists in
        ``meta`` (scene ids, labels) are cut with them."""
        def pick(a):
            return None if a is None else a[index]

        count = len(self)
        picked = np.arange(count)[index]
        # Lists of lists (labels) are cut as lists: numpy would make equal-length ones a 2-D array.
        meta = {k: [v[i] for i in np.atleast_1d(picked)] if isinstance(v, list) and len(v) == count else v
                for k, v in self.meta.items()}
        return Coefficients(self.method, self.loc[index], self.scale[index], pick(self.row),
                            pick(self.col), self.bands, self.units, self.db, meta)

    def draw(self, n: int, seed=None, labels=None) -> Coefficients:
        """``n`` coefficient sets drawn from the empirical joint distribution of these tiles.

        Resamples whole tiles with replacement, so ``loc`` and ``scale`` of every band stay
        jointly consistent. This is how Tuel et al. (2023) give generated tiles a physical
        range: samples live in the normalised space, and their scale comes from real tiles.
        Only finite coefficient sets (tiles with data) are drawn. ``labels`` (one collection of
        class names per sample) draws sample i from the tiles labelled with all of ``labels[i]``
        (``meta["labels"]``), so a sea tile takes the range of real sea tiles.
        """
        return self.subset(self.draw_index(n, seed, labels))

    def draw_index(self, n: int, seed=None, labels=None) -> np.ndarray:
        """Which tiles :meth:`draw` resamples for ``n``, ``seed`` and ``labels``: indices into
        these tiles. Draw i depends on ``(seed, i)`` and its own labels only."""
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        ok = np.isfinite(self.loc).all(1) & np.isfinite(self.scale).all(1)
        if not ok.any():
            raise ValueError("no finite coefficients to draw from")
        rng = np.random.default_rng(seed)
        if labels is None:
            return rng.choice(np.flatnonzero(ok), size=n, replace=True)
        if "labels" not in self.meta:
            raise ValueError("these coefficients carry no tile labels to draw by")
        if len(labels) != n:
            raise ValueError(f"{len(labels)} label sets for {n} draws")
        have = [frozenset(v or ()) for v in self.meta["labels"]]
        pools: dict = {}
        for wanted in map(frozenset, labels):
            if wanted not in pools:
                pools[wanted] = np.flatnonzero(ok & np.array([wanted <= tile for tile in have]))
                if pools[wanted].size == 0:
                    raise ValueError(f"no tile with coefficients is labelled {sorted(wanted)}")
        return np.array([pool[min(int(u * pool.size), pool.size - 1)]
                         for pool, u in zip((pools[frozenset(w)] for w in labels), rng.random(n))], dtype=np.int64)

    def nearest(self, rows, cols) -> Coefficients:
        """Coefficients of the measured tile whose origin is nearest to each ``(row, col)``."""
        if self.row is None or self.col is None:
            raise ValueError("these coefficients carry no tile positions")
        rows, cols = np.atleast_1d(rows), np.atleast_1d(cols)
        ok = np.flatnonzero(np.isfinite(self.loc).all(1) & np.isfinite(self.scale).all(1))
        d2 = (self.row[ok][None, :] - rows[:, None]) ** 2 + (self.col[ok][None, :] - cols[:, None]) ** 2
        picked = self.subset(ok[np.argmin(d2, axis=1)])
        picked.row, picked.col = rows.astype(np.int64), cols.astype(np.int64)
        return picked

    def to_attrs(self) -> dict:
        """The coefficients as an attrs value: :meth:`to_dict`'s keys with the arrays as arrays.

        Per-tile coefficients of a Sentinel-1 GRD grid are about half a million sets: as Python
        lists they would hold hundreds of MB in every synthetic scene; writers turn the arrays into
        JSON only when they write (``geodiff.io.write``)."""
        return {"method": self.method, "loc": self.loc, "scale": self.scale, "row": self.row, "col": self.col,
                "bands": self.bands, "units": self.units, "db": self.db, "meta": self.meta}

    def to_dict(self) -> dict:
        """JSON-ready dict; floats survive exactly (``repr`` round-trips float64), NaN as null."""
        return {k: json_ready(v) for k, v in self.to_attrs().items()}

    @classmethod
    def from_dict(cls, d: dict) -> Coefficients:
        def floats(rows):
            return np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)

        return cls(d["method"], floats(d["loc"]), floats(d["scale"]), d.get("row"), d.get("col"),
                   d.get("bands"), d.get("units"), bool(d.get("db", False)), dict(d.get("meta", {})))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Coefficients:
        return cls.from_dict(json.loads(text))
