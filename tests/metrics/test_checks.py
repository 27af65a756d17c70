"""The shared input check: shapes, units, tile counts and empty tiles."""

import numpy as np
import pytest
import xarray as xr

from geodiff.errors import GeodiffError
from geodiff.metrics.checks import tile_set, tile_sets


def _tiles(n=4, h=8, w=8, bands=None, units="dB", seed=0, dim="sample"):
    rng = np.random.default_rng(seed)
    if bands is None:
        return xr.DataArray(
            rng.normal(size=(n, h, w)), dims=(dim, "y", "x"), attrs={"units": units}
        )
    return xr.DataArray(
        rng.normal(size=(n, bands, h, w)), dims=(dim, "band", "y", "x"), attrs={"units": units}
    )


def test_dataarrays_become_nchw_float64_with_units():
    real, synth = _tiles(3), _tiles(5, seed=1).astype(np.float32)
    r, s, units = tile_sets(real, synth)
    assert r.shape == (3, 1, 8, 8) and s.shape == (5, 1, 8, 8)
    assert r.dtype == s.dtype == np.float64
    np.testing.assert_array_equal(r[:, 0], real.values)
    np.testing.assert_allclose(s[:, 0], synth.values)
    assert units == "dB"


def test_band_order_follows_dims_not_memory_layout():
    real = _tiles(3, bands=2)
    shuffled = real.transpose("x", "band", "sample", "y")
    r, s, _ = tile_sets(real, shuffled)
    np.testing.assert_array_equal(r, s)
    np.testing.assert_array_equal(r[:, 1], real.isel(band=1).values)


def test_tilegrid_tile_dimension_is_read_as_sample():
    ts = tile_set(_tiles(3, dim="tile"))
    assert ts.tiles.shape == (3, 1, 8, 8) and ts.units == "dB"


def test_numpy_inputs_have_no_units_and_take_the_other_sides():
    r, _, units = tile_sets(np.zeros((2, 4, 4)), _tiles(2, 4, 4, units="rad"))
    assert units == "rad" and r.shape == (2, 1, 4, 4)
    assert tile_sets(np.zeros((2, 4, 4)), np.ones((3, 4, 4))).units is None


def test_per_band_units_compare_band_by_band():
    real = _tiles(2, bands=2, units=["dB", "1"])
    assert tile_sets(real, _tiles(2, bands=2, units=["dB", ""])).units == ["dB", "1"]
    with pytest.raises(GeodiffError, match=r"band 1.*convert one to the other's unit"):
        tile_sets(real, _tiles(2, bands=2, units=["dB", "m"]))


def test_different_units_are_refused_with_how_to_convert():
    with pytest.raises(GeodiffError, match=r"'dB'.*'linear'.*10\*log10"):
        tile_sets(_tiles(units="dB"), _tiles(units="linear"))


def test_different_tile_sizes_are_refused():
    with pytest.raises(GeodiffError, match=r"8 x 8 pixels but synthetic tiles 8 x 6.*one size"):
        tile_sets(_tiles(), _tiles(w=6))


def test_different_band_counts_are_refused():
    with pytest.raises(GeodiffError, match=r"2 band\(s\) but synthetic tiles 3.*same bands"):
        tile_sets(_tiles(bands=2), _tiles(bands=3))


def test_too_few_tiles_says_the_minimum_and_why():
    with pytest.raises(
        GeodiffError, match=r"synthetic has 3 tile\(s\).*at least 10 \(a KS test\).*more tiles"
    ):
        tile_sets(_tiles(10), _tiles(3), min_tiles=10, why="a KS test")
    with pytest.raises(GeodiffError, match=r"real has 1 tile\(s\).*at least 2"):
        tile_set(_tiles(1), name="real")


def test_all_nan_tiles_are_counted_and_a_fix_given():
    synth = _tiles(6, bands=2)
    synth[1] = np.nan
    synth[4, 0] = np.nan  # one band of a tile empty is as unusable
    with pytest.raises(GeodiffError, match=r"2 of 6 synthetic tiles are all NaN.*drop them"):
        tile_sets(_tiles(6, bands=2), synth)


def test_partial_nan_tiles_are_kept_as_nodata():
    real = _tiles(3)
    real[0, :4] = np.nan
    r, _, _ = tile_sets(real, _tiles(3))
    assert np.isnan(r[0, 0, :4]).all() and np.isfinite(r[0, 0, 4:]).all()


def test_infinite_values_are_refused():
    real = _tiles(3)
    real[0, 0, 0] = -np.inf
    with pytest.raises(GeodiffError, match=r"1 infinite values.*nodata"):
        tile_sets(real, _tiles(3))


@pytest.mark.parametrize(
    "bad, match",
    [
        (
            xr.DataArray(np.zeros((2, 3, 4, 4)), dims=("time", "sample", "y", "x")),
            "rename its tile",
        ),
        (np.zeros((4, 4)), "2 dimensions"),
        (np.zeros((2, 4, 4), dtype=complex), "complex"),
        (xr.Dataset({"vv": (("sample", "y", "x"), np.zeros((2, 4, 4)))}), "pass a DataArray"),
    ],
)
def test_wrong_shapes_and_types_are_refused(bad, match):
    with pytest.raises(GeodiffError, match=match):
        tile_set(bad)


def test_the_suggested_drop_of_empty_tiles_works():
    synth = _tiles(4, bands=2)
    synth[2, 1] = np.nan
    with pytest.raises(GeodiffError) as err:
        tile_set(synth)
    fix = str(err.value).split("e.g. ", 1)[1]
    kept = eval(fix, {"da": synth})  # the message's own code
    assert tile_set(kept).tiles.shape == (3, 2, 8, 8)


def _metrics():
    from geodiff.metrics.distribution import pixel_wasserstein, tile_statistics
    from geodiff.metrics.structure import psd_log_ratio, variogram_score

    return [variogram_score, psd_log_ratio, tile_statistics, pixel_wasserstein]


@pytest.mark.parametrize("metric", _metrics(), ids=lambda m: m.__name__)
@pytest.mark.parametrize(
    "real, synth, match",
    [
        (_tiles(units="dB"), _tiles(units="rad"), "convert one to the other's unit"),
        (_tiles(), _tiles(h=6), "compare tiles of one size"),
        (_tiles(), _tiles(bands=2), "select the same bands"),
        (
            _tiles(),
            _tiles().where(_tiles()["sample"] != 2),
            "1 of 4 synthetic tiles are all NaN.*drop them",
        ),
        (_tiles(0), _tiles(), "real has 0 tile.*pass more tiles"),
    ],
    ids=["units", "size", "bands", "all-nan", "no-tiles"],
)
def test_every_metric_refuses_bad_input_through_the_shared_check(metric, real, synth, match):
    with pytest.raises(GeodiffError, match=match):
        metric(real, synth)
