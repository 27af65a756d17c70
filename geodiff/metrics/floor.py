"""The real-vs-real floor of a metric: its value between two disjoint sets of real tiles.

A metric's value against synthetic tiles can only be read beside what it gives for two sets of
real tiles of the same size: finite samples never score 0. Synthetic data that score inside the
floor's spread are, for that metric, indistinguishable from more real data.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from geodiff.errors import GeodiffError
from geodiff.metrics.checks import tile_set

__all__ = ["Floor", "real_floor"]


@dataclass(frozen=True)
class Floor:
    """A metric's real-vs-real values over random disjoint splits.

    ``mean``, ``min`` and ``max`` have the metric's own form (a float, a tuple of floats per
    band, or the metric's dataclass with each field aggregated), taken over the draws.

    Attributes
    ----------
    mean, min, max
        Mean and spread of the metric over the draws.
    values : tuple
        The metric's value for each draw.
    n : int
        Tiles in each half (with a reference: tiles drawn from it).
    reference : bool
        Whether the draws came from a reference set against the whole real set.
    """

    mean: Any
    min: Any
    max: Any
    values: tuple
    n: int
    reference: bool = False


def _aggregate(values: list, reduce: Callable[[np.ndarray], float]):
    """``reduce`` over draws, field by field of a dataclass and element by element of a tuple."""
    first = values[0]
    if dataclasses.is_dataclass(first):
        return type(first)(
            **{
                f.name: _aggregate([getattr(v, f.name) for v in values], reduce)
                for f in dataclasses.fields(first)
            }
        )
    if isinstance(first, tuple):
        return tuple(_aggregate([v[i] for v in values], reduce) for i in range(len(first)))
    if isinstance(first, str):  # a label such as an extractor id: the same in every draw
        return first
    return float(reduce(np.asarray(values, dtype=np.float64)))


def _subset(real, index: np.ndarray):
    if isinstance(real, xr.DataArray):
        dim = "sample" if "sample" in real.dims else "tile"
        return real.isel({dim: index})
    return np.asarray(real)[index]


def real_floor(
    metric: Callable, real, *, n: int | None = None, draws: int = 3, seed: int = 0, reference=None, **kwargs
) -> Floor:
    """A metric's floor: ``metric(A, B)`` for disjoint random sets ``A``, ``B`` of real tiles.

    Each draw permutes the real tiles at random and takes the first ``n`` as ``A`` (in the place
    of real) and the next ``n`` as ``B`` (in the place of synthetic); no tile is in both. Compare
    a metric against synthetic tiles with the floor computed at the same ``n`` as the synthetic
    set's size where the real set allows it, since most metrics shrink as sets grow.

    With ``reference`` (other real tiles, e.g. those a model was trained on), ``A`` is the whole
    real set and ``B`` is ``n`` tiles drawn from ``reference``: the figure that a generator
    reproducing the reference tiles exactly would score against ``real``. This is the floor to
    read a model's samples against when they are rescaled with coefficients of its training
    tiles, and it compares sets of the very sizes the synthetic comparison uses.

    Parameters
    ----------
    metric : callable
        ``metric(real, synthetic, **kwargs)`` returning a float, a tuple of floats or a
        dataclass of those (any metric of :mod:`geodiff.metrics`).
    real : xarray.DataArray or numpy.ndarray
        Real tiles ``(sample, [band,] y, x)``; subsets keep their coords and attrs.
    n : int, optional
        Tiles per half; default ``len(real) // 2``; at most that. With ``reference``: tiles drawn
        from it, default and at most ``len(reference)``.
    draws : int
        Random splits; the spread over them shows how much the floor itself varies.
    seed : int
        Source of the splits; also passed to ``metric`` if it takes a ``seed``, so a stochastic
        metric is reproducible too.
    reference : xarray.DataArray or numpy.ndarray, optional
        Real tiles, disjoint from ``real``, that stand in for the synthetic set.
    **kwargs
        Passed to ``metric``.

    Returns
    -------
    Floor
        Mean, min and max of the metric over the draws, and each draw's value.

    Raises
    ------
    GeodiffError
        Fewer than 2 real tiles (or an invalid set, see
        :func:`geodiff.metrics.checks.tile_set`), ``n`` outside ``1 .. len(real) // 2``, or
        ``draws < 1``.
    """
    if draws < 1:
        raise GeodiffError(f"draws must be at least 1, got {draws}")
    if "seed" in inspect.signature(metric).parameters:
        kwargs["seed"] = seed
    rng = np.random.default_rng(seed)
    if reference is not None:
        size = tile_set(reference, min_tiles=1, why="the floor draws tiles from it", name="reference").tiles.shape[0]
        n = size if n is None else int(n)
        if not 1 <= n <= size:
            raise GeodiffError(f"n={n} tiles cannot be drawn from {size} reference tiles; pass n between 1 and {size}")
        values = [metric(real, _subset(reference, np.sort(rng.permutation(size)[:n])), **kwargs)
                  for _ in range(draws)]
        return Floor(_aggregate(values, np.mean), _aggregate(values, np.min), _aggregate(values, np.max),
                     tuple(values), n, reference=True)
    total = tile_set(
        real, min_tiles=2, why="two disjoint halves need a tile each", name="real"
    ).tiles.shape[0]
    n = total // 2 if n is None else int(n)
    if not 1 <= n <= total // 2:
        raise GeodiffError(
            f"n={n} tiles per half cannot make two disjoint halves of {total} real tiles; "
            f"pass n between 1 and {total // 2}, or more real tiles"
        )
    values = []
    for _ in range(draws):
        order = rng.permutation(total)
        a, b = np.sort(order[:n]), np.sort(order[n : 2 * n])
        values.append(metric(_subset(real, a), _subset(real, b), **kwargs))
    return Floor(
        _aggregate(values, np.mean),
        _aggregate(values, np.min),
        _aggregate(values, np.max),
        tuple(values),
        n,
    )
