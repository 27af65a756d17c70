"""Validation splits of a tile index without leakage: whole scenes, or spatial blocks with the
training tiles that overlap a validation tile dropped."""

from __future__ import annotations

import numpy as np

from geodiff.errors import GeodiffError

#: Side of the spatial blocks of a block split, in tiles.
SPLIT_BLOCK = 4


def split_tiles(index, val_fraction: float, by: str = "auto", *, seed: int = 0, max_tiles: int | None = None):
    """``"train"``, ``"val"`` or ``"dropped"`` for every row of a tile index, without leakage.

    ``by="scene"`` holds out whole scenes (about ``val_fraction`` of the tiles); ``"block"``
    holds out spatial blocks of :data:`SPLIT_BLOCK` tiles a side within each scene and drops the
    training tiles that overlap a validation tile (overlapping or multi-scale tiles); ``"auto"``
    is ``"scene"`` for several scenes and ``"block"`` for one. ``max_tiles`` then keeps a random
    subset of the training tiles (the rest ``"dropped"``).

    Raises
    ------
    geodiff.errors.GeodiffError
        An unknown ``by``, or a split that leaves no training or no validation tile.
    """
    if by not in ("auto", "scene", "block"):
        raise GeodiffError(f"split must be 'auto', 'scene' or 'block', got {by!r}")
    rng = np.random.default_rng(seed)
    n = len(index)
    out = np.full(n, "train", dtype=object)
    if val_fraction > 0:
        scenes = index["scene"].to_numpy()
        if by == "auto":
            by = "scene" if len(set(scenes)) > 1 else "block"
        keys = scenes if by == "scene" else _blocks(index)
        val = _hold_out(keys, val_fraction, rng)
        out[val] = "val"
        if by == "block":
            out[~val & _touches(index, val)] = "dropped"
        if not (out == "train").any() or not val.any():
            raise GeodiffError(f"a {by} split of {n} tiles with val_fraction={val_fraction} leaves no "
                               f"{'training' if val.any() else 'validation'} tile; change val_fraction")
    if max_tiles is not None:
        train = np.flatnonzero(out == "train")
        if train.size > max_tiles:
            out[rng.choice(train, train.size - max_tiles, replace=False)] = "dropped"
    return out


def _blocks(index) -> np.ndarray:
    side = SPLIT_BLOCK * index["height"].to_numpy() // index["factor"].to_numpy()
    return np.array([f"{s}/{r // b}/{c // b}" for s, r, c, b in
                     zip(index["scene"], index["row"], index["col"], side)], dtype=object)


def _hold_out(keys: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Whole groups of ``keys``, in random order, until about ``fraction`` of the rows."""
    groups, counts = np.unique(keys, return_counts=True)
    order = rng.permutation(len(groups))
    target = fraction * len(keys)
    chosen, total = [], 0
    for g in order:
        if total >= target or len(chosen) == len(groups) - 1:
            break
        chosen.append(groups[g])
        total += counts[g]
    return np.isin(keys, chosen)


def _touches(index, val: np.ndarray) -> np.ndarray:
    """Rows whose window overlaps a validation row's window in the same scene."""
    out = np.zeros(len(index), bool)
    rows, cols = index["row"].to_numpy(), index["col"].to_numpy()
    heights, widths = index["height"].to_numpy(), index["width"].to_numpy()
    scenes = index["scene"].to_numpy()
    for j in np.flatnonzero(val):
        same = scenes == scenes[j]
        out |= same & (rows < rows[j] + heights[j]) & (rows + heights > rows[j]) & \
            (cols < cols[j] + widths[j]) & (cols + widths > cols[j])
    return out
