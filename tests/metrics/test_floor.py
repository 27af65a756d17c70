"""The real-vs-real floor: disjoint random halves, reproducible, aggregated in the metric's form."""

from dataclasses import dataclass

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

import geodiff
from geodiff.errors import GeodiffError
from geodiff.metrics.floor import real_floor
from geodiff.metrics.structure import psd_log_ratio
from geodiff.tiling import TileGrid


def _numbered(n, size=4):
    """Tiles whose pixels all hold the tile's index, so a metric can see which tiles it got."""
    return xr.DataArray(
        np.broadcast_to(np.arange(n, dtype=float)[:, None, None], (n, size, size)).copy(),
        dims=("sample", "y", "x"),
        attrs={"units": "dB"},
    )


class _Recorder:
    """A metric that records the tile indices of its two arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, real, synthetic):
        a, b = (set(np.asarray(t)[:, 0, 0].astype(int)) for t in (real, synthetic))
        self.calls.append((a, b, getattr(real, "attrs", {}).get("units")))
        return float(len(self.calls))


def test_halves_are_disjoint_random_and_of_size_n():
    rec = _Recorder()
    floor = real_floor(rec, _numbered(21), n=7, draws=4, seed=3)
    assert len(rec.calls) == 4 and floor.n == 7
    for a, b, units in rec.calls:
        assert len(a) == len(b) == 7 and not a & b and a | b <= set(range(21))
        assert units == "dB"  # subsets keep the DataArray's attrs
    assert len({frozenset(a) for a, _, _ in rec.calls}) > 1  # draws differ


def test_a_reference_floor_scores_all_real_tiles_against_draws_of_the_reference():
    rec = _Recorder()
    real, reference = _numbered(10), _numbered(30) + 100
    floor = real_floor(rec, real, n=12, draws=3, seed=1, reference=reference)
    assert floor.n == 12 and len(rec.calls) == 3
    for a, b, _ in rec.calls:
        assert a == set(range(10)) and len(b) == 12 and b <= set(range(100, 130))
    assert len({frozenset(b) for _, b, _ in rec.calls}) > 1
    assert real_floor(rec, real, draws=1, reference=reference).n == 30
    with pytest.raises(GeodiffError, match="cannot be drawn from 30 reference tiles"):
        real_floor(rec, real, n=31, reference=reference)


def test_a_shifted_reference_moves_the_floor_as_it_moves_the_synthetic_set():
    """Coefficients drawn from training tiles that differ from the held-out ones cost a sample
    the same as they cost the training tiles themselves: the reference floor shows it."""
    from geodiff.metrics.distribution import pixel_wasserstein

    rng = np.random.default_rng(0)
    real = xr.DataArray(rng.normal(0, 1, (60, 8, 8)), dims=("sample", "y", "x"), attrs={"units": "dB"})
    same = xr.DataArray(rng.normal(0, 1, (200, 8, 8)), dims=("sample", "y", "x"), attrs={"units": "dB"})
    shifted = same + 0.5
    within = real_floor(pixel_wasserstein, real, n=60, reference=same)
    moved = real_floor(pixel_wasserstein, real, n=60, reference=shifted)
    assert within.max < 0.15 and 0.4 < moved.min < 0.6  # W1 between N(0,1) and N(0.5,1) is 0.5


def test_default_n_is_half_the_tiles_and_numpy_works():
    rec = _Recorder()
    assert real_floor(rec, _numbered(9).values, draws=1).n == 4
    a, b, _ = rec.calls[0]
    assert len(a) == len(b) == 4 and not a & b


def test_same_seed_same_floor_other_seed_other_splits():
    x = np.random.default_rng(0).normal(size=(40, 8, 8)) * np.linspace(0.5, 2, 40)[:, None, None]
    first, again = (real_floor(psd_log_ratio, x, seed=5) for _ in range(2))
    assert first == again
    assert real_floor(psd_log_ratio, x, seed=6).values != first.values


def test_mean_and_spread_per_field_of_a_dataclass_and_per_band():
    @dataclass(frozen=True)
    class Score:
        a: float
        b: tuple

    values = iter([Score(1.0, (2.0, 10.0)), Score(3.0, (4.0, 0.0)), Score(8.0, (0.0, 5.0))])
    floor = real_floor(lambda r, s: next(values), _numbered(6), draws=3)
    assert floor.mean == Score(4.0, (2.0, 5.0))
    assert floor.min == Score(1.0, (0.0, 0.0)) and floor.max == Score(8.0, (4.0, 10.0))
    assert floor.values[1] == Score(3.0, (4.0, 0.0))


def test_seed_and_kwargs_reach_the_metric():
    got = []

    def metric(real, synthetic, *, scale=1.0, seed=None):
        got.append((scale, seed))
        return scale

    assert real_floor(metric, _numbered(4), draws=2, seed=11, scale=2.5).mean == 2.5
    assert got == [(2.5, 11), (2.5, 11)]


@pytest.mark.parametrize(
    "n, draws, match",
    [(5, 3, r"n=5.*between 1 and 4"), (0, 3, "n=0"), (2, 0, "draws must be at least 1")],
)
def test_impossible_splits_are_refused(n, draws, match):
    with pytest.raises(GeodiffError, match=match):
        real_floor(_Recorder(), _numbered(9), n=n, draws=draws)


def test_too_few_or_empty_real_tiles_are_refused():
    with pytest.raises(GeodiffError, match=r"real has 1 tile\(s\).*two disjoint halves"):
        real_floor(_Recorder(), _numbered(1))
    x = _numbered(4)
    x[2] = np.nan
    with pytest.raises(GeodiffError, match="1 of 4 real tiles are all NaN"):
        real_floor(_Recorder(), x)


@pytest.fixture
def opera_db_tiles(opera_rtc):
    """Non-overlapping 32 x 32 tiles of one date's 15 OPERA RTC-S1 VV bursts in dB, without gaps."""
    tiles = []
    for path in sorted(opera_rtc.glob("2021-11-19/*_VV.tif")):
        power = geodiff.open_scene(path, chunks=None).isel(y=slice(0, 96), x=slice(0, 96))
        db = 10 * np.log10(power.where(power > 0))
        stack = TileGrid.from_scene(db, 32).stack(db).rename(tile="sample").compute()
        tiles.append(stack.drop_vars([c for c in stack.coords if c not in stack.dims]))
    da = xr.concat(tiles, "sample").assign_attrs(units="dB")
    return da.isel(sample=da.notnull().all(["y", "x"]).values)


def test_psd_floor_on_real_backscatter_is_small_and_far_below_a_blurred_set(opera_db_tiles):
    assert opera_db_tiles.sizes["sample"] >= 100
    floor = real_floor(psd_log_ratio, opera_db_tiles, draws=3, seed=0)
    order = np.random.default_rng(1).permutation(opera_db_tiles.sizes["sample"])
    a, b = (
        opera_db_tiles.isel(sample=order[: floor.n]),
        opera_db_tiles.isel(sample=order[floor.n : 2 * floor.n]),
    )
    # A generator that blurs textures (too little small-scale power) by one pixel.
    blurred = b.copy(data=ndimage.gaussian_filter(b.values, (0, 1, 1)))
    assert floor.min <= floor.mean <= floor.max < 0.1
    assert psd_log_ratio(a, blurred) > 5 * floor.max
