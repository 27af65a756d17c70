"""Every metric of synthetic against real tiles, each beside its real-vs-real floor."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from geodiff.errors import GeodiffError
from geodiff.metrics.checks import tile_set, tile_sets
from geodiff.metrics.distribution import pixel_wasserstein, tile_statistics
from geodiff.metrics.fid import feature_scores
from geodiff.metrics.floor import Floor, real_floor
from geodiff.metrics.structure import psd_log_ratio, variogram_score
from geodiff.units import Units

#: The metrics of every evaluation, by name; each takes ``(real, synthetic)`` tile sets.
METRICS: dict[str, Callable] = {
    "variogram": variogram_score,
    "psd_log_ratio": psd_log_ratio,
    "tile_statistics": tile_statistics,
    "pixel_wasserstein": pixel_wasserstein,
}

# Which way each figure is better, for telling whether it lies within the floor: "lower" (a
# distance), "higher" (a coverage), "one" (a ratio); figures absent here are context only.
GOAL = {
    "variogram.rms_log_ratio": "lower", "variogram.fraction_in_band": "higher", "psd_log_ratio": "lower",
    "tile_statistics.std_ratio": "one", "tile_statistics.std_ks": "lower",
    "tile_statistics.range_ratio": "one", "tile_statistics.range_ks": "lower", "pixel_wasserstein": "lower",
    "features.fid": "lower", "features.kid_mean": "lower", "features.precision": "higher",
    "features.recall": "higher",
}


@dataclass(frozen=True)
class Row:
    """One figure of an evaluation: its value, its floor, and whether it lies within the floor."""

    name: str
    value: float
    floor_mean: float
    floor_min: float
    floor_max: float
    band: str | None = None

    @property
    def goal(self) -> str | None:
        return GOAL.get(self.name)

    @property
    def within_floor(self) -> bool | None:
        """Whether the figure lies inside the range of the floor's draws (``None`` for context
        figures). A further real set lands outside the range of ``d`` draws with probability
        ``2 / (d + 1)`` (one half for three), so read the figures together, not one by one."""
        goal = self.goal
        if goal == "lower":
            return bool(self.value <= self.floor_max)
        if goal == "higher":
            return bool(self.value >= self.floor_min)
        if goal == "one":
            return bool(abs(self.value - 1) <= max(abs(self.floor_min - 1), abs(self.floor_max - 1)))
        return None


@dataclass(frozen=True)
class Evaluation:
    """The result of :func:`evaluate`: one :class:`Row` per figure (and band)."""

    rows: tuple[Row, ...]
    n_real: int
    n_synthetic: int
    floor_size: int
    units: Units
    extractor_id: str | None = None
    floor_reference: bool = False

    def to_dict(self) -> dict:
        return {
            "n_real": self.n_real, "n_synthetic": self.n_synthetic, "floor_size": self.floor_size,
            "units": self.units, "extractor_id": self.extractor_id, "floor_reference": self.floor_reference,
            "rows": [{**dataclasses.asdict(r), "goal": r.goal, "within_floor": r.within_floor} for r in self.rows],
        }

    def table(self) -> str:
        """The rows as a text table."""
        lines = [f"{'metric':34s} {'band':8s} {'synthetic':>11s} {'real floor (min .. max)':>26s}  within"]
        for r in self.rows:
            within = {True: "yes", False: "no", None: ""}[r.within_floor]
            lines.append(f"{r.name:34s} {r.band or '':8s} {r.value:11.4g} "
                         f"{r.floor_mean:9.4g} ({r.floor_min:.4g} .. {r.floor_max:.4g})".ljust(84) + f"  {within}")
        return "\n".join(lines)


def _flatten(name: str, value) -> dict[str, Any]:
    """``{"variogram.rms_log_ratio": v, ...}`` from a metric's float, tuple or dataclass."""
    if dataclasses.is_dataclass(value):
        out = {}
        for f in dataclasses.fields(value):
            out.update(_flatten(f"{name}.{f.name}", getattr(value, f.name)))
        return out
    return {name: value}


def _rows(name: str, value, floor: Floor, bands: list[str] | None) -> list[Row]:
    values, means, lows, highs = (_flatten(name, v) for v in (value, floor.mean, floor.min, floor.max))
    rows = []
    for key, v in values.items():
        if isinstance(v, str):  # an id, not a figure
            continue
        if isinstance(v, tuple):
            labels = bands or [str(i) for i in range(len(v))]
            rows += [Row(key, float(v[i]), float(means[key][i]), float(lows[key][i]), float(highs[key][i]),
                         labels[i]) for i in range(len(v))]
        else:
            rows.append(Row(key, float(v), float(means[key]), float(lows[key]), float(highs[key])))
    return rows


def _metrics(extractor) -> dict[str, Callable]:
    if extractor is None:
        return dict(METRICS)
    return {**METRICS, "features": lambda r, s, seed=0: feature_scores(extractor, r, s, seed=seed)}


def floors(real, size: int, *, extractor=None, draws: int = 3, seed: int = 0, reference=None) -> dict[str, Floor]:
    """The real-vs-real floor of every metric of :func:`evaluate`, for synthetic sets of ``size``
    tiles (halves of at most half the real tiles; with ``reference``, the whole real set against
    ``size`` reference tiles, see :func:`~geodiff.metrics.floor.real_floor`). Compute them once
    to score several synthetic sets against one real set: they depend on the real tiles only."""
    n_real = len(tile_set(real, min_tiles=4, why="the floor splits the real tiles in two halves").tiles)
    if reference is None:
        size = min(size, n_real // 2)
    else:
        size = min(size, len(tile_set(reference, min_tiles=4, why="the floor draws tiles from it").tiles))
    if extractor is not None and min(size, n_real) <= extractor.dim:
        raise GeodiffError(f"FID's floor needs two disjoint sets of more than {extractor.dim} real tiles (the "
                           f"extractor's feature dimension); {n_real} real tiles give sets of "
                           f"{min(size, n_real)}: give more real tiles, or evaluate without an extractor")
    return {name: real_floor(metric, real, n=size, draws=draws, seed=seed, reference=reference)
            for name, metric in _metrics(extractor).items()}


def evaluate(real, synthetic, *, extractor=None, floor: dict[str, Floor] | None = None, draws: int = 3,
             seed: int = 0, reference=None) -> Evaluation:
    """Score synthetic tiles against real ones, every figure beside its real-vs-real floor.

    The floor of a figure is its value between two disjoint random sets of real tiles, each of
    the synthetic set's size (at most half the real tiles), over ``draws`` draws: synthetic data
    inside the floor's spread are, on that figure, as close to the real data as more real data.

    Parameters
    ----------
    real, synthetic : xarray.DataArray or numpy.ndarray
        ``(sample, [band,] y, x)`` tiles in the same physical units, NaN nodata.
    extractor
        A :class:`~geodiff.metrics.features.FeatureExtractor` for FID, KID and precision/recall
        (trained on real tiles of this kind; see :func:`~geodiff.metrics.features.train_extractor`).
        Without one those are left out. They need floor sets of more tiles than its feature
        dimension, so more than ``2 * dim`` real tiles.
    floor
        The floors from :func:`floors` for this real set, extractor and size, when several
        synthetic sets are scored against it; computed here otherwise.
    draws, seed
        Draws of the floor, and their seed.
    reference
        Real tiles disjoint from ``real`` (the model's training tiles): the floor then compares
        ``real`` with draws of the synthetic set's size from them (see :func:`floors`).

    Returns
    -------
    Evaluation
        One row per metric figure and band: ``within_floor`` tells whether it lies inside the floor.
    """
    sets = tile_sets(real, synthetic, min_tiles=4, why="the floor splits the real tiles in two halves")
    n_real, n_synth = len(sets.real), len(sets.synthetic)
    metrics = _metrics(extractor)
    if floor is None:
        floor = floors(real, n_synth, extractor=extractor, draws=draws, seed=seed, reference=reference)
    if set(floor) != set(metrics):
        raise GeodiffError(f"floors were computed for {sorted(floor)}, this evaluation has {sorted(metrics)}: "
                           "compute them with the same extractor")
    bands = [str(b) for b in real["band"].values] if hasattr(real, "dims") and "band" in real.dims else None
    rows = []
    for name, metric in metrics.items():
        rows += _rows(name, metric(real, synthetic), floor[name], bands)
    first = next(iter(floor.values()))
    return Evaluation(tuple(rows), n_real, n_synth, first.n, sets.units,
                      extractor.extractor_id if extractor is not None else None, first.reference)


def fraction_within(evaluation: Evaluation) -> float:
    """Fraction of the scored figures (those with a goal) that lie within their floor."""
    judged = [r.within_floor for r in evaluation.rows if r.within_floor is not None]
    return float(np.mean(judged)) if judged else float("nan")
