"""Scalers against numpy statistics, exact inverses, constant tiles, JSON, coefficient draws."""

import glob
import json

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import geodiff
from geodiff.scaling import Coefficients, Scaler, from_db, to_db
from geodiff.tiling import TileGrid, nodata_filter, select


def tiles(n=5, bands=None, seed=0, nan_fraction=0.1, loc=20.0, spread=7.0):
    rng = np.random.default_rng(seed)
    shape = (n, bands, 8, 9) if bands else (n, 8, 9)
    values = (loc + spread * rng.standard_normal(shape)).astype("float64")
    values[rng.random(shape) < nan_fraction] = np.nan
    dims = ("tile", "band", "y", "x") if bands else ("tile", "y", "x")
    return xr.DataArray(values, dims=dims, attrs={"units": "mm/yr"})


@pytest.mark.parametrize("method", ["minmax", "robust", "standard"])
@pytest.mark.parametrize("bands", [None, 2])
def test_statistics_match_numpy(method, bands):
    t = tiles(bands=bands)
    c = Scaler(method).fit(t)
    v = t.values.reshape(t.sizes["tile"], bands or 1, -1)
    if method == "minmax":
        lo, hi = np.nanmin(v, -1), np.nanmax(v, -1)
        loc, scale = (lo + hi) / 2, (hi - lo) / 2
    elif method == "robust":
        lo, hi = np.nanpercentile(v, 2, -1), np.nanpercentile(v, 98, -1)
        loc, scale = (lo + hi) / 2, (hi - lo) / 2
    else:
        loc, scale = np.nanmean(v, -1), np.nanstd(v, -1)
    np.testing.assert_allclose(c.loc, loc, rtol=1e-12)
    np.testing.assert_allclose(c.scale, scale, rtol=1e-12)


def test_minmax_hits_the_feature_range_exactly():
    for rng_ in [(-1.0, 1.0), (0.0, 1.0)]:
        z, _ = Scaler("minmax", feature_range=rng_).fit_transform(tiles())
        np.testing.assert_allclose(np.nanmin(z.values, axis=(1, 2)), rng_[0], atol=1e-12)
        np.testing.assert_allclose(np.nanmax(z.values, axis=(1, 2)), rng_[1], atol=1e-12)


def test_global_scaling_shares_one_set_per_band():
    t = tiles(bands=2)
    c = Scaler("minmax", per_tile=False).fit(t)
    assert (c.loc == c.loc[0]).all()
    v = np.moveaxis(t.values, 1, 0).reshape(2, -1)
    np.testing.assert_allclose(c.scale[0], (np.nanmax(v, 1) - np.nanmin(v, 1)) / 2)


@settings(max_examples=40, deadline=None)
@given(method=st.sampled_from(["minmax", "robust", "standard"]), loc=st.floats(-1e4, 1e4),
       spread=st.floats(1e-3, 1e3), per_tile=st.booleans(), seed=st.integers(0, 1000))
def test_inverse_is_exact(method, loc, spread, per_tile, seed):
    t = tiles(seed=seed, loc=loc, spread=spread)
    scaler = Scaler(method, per_tile=per_tile)
    z, c = scaler.fit_transform(t)
    back = scaler.inverse(z, c)
    np.testing.assert_allclose(back.values, t.values, rtol=1e-6, atol=1e-6 * spread)
    assert back.attrs["units"] == "mm/yr" and z.attrs["units"] == "1"


@pytest.mark.parametrize("method", ["minmax", "robust", "standard"])
def test_constant_tiles_give_no_nan_or_inf(method):
    t = tiles(n=3, nan_fraction=0.0)
    t[1] = 4.25
    scaler = Scaler(method)
    z, c = scaler.fit_transform(t)
    assert np.isfinite(z.values).all()
    center = 0.0
    np.testing.assert_array_equal(z.values[1], center)
    np.testing.assert_array_equal(scaler.inverse(z, c).values[1], 4.25)


@pytest.mark.parametrize("method", ["minmax", "robust", "standard"])
def test_empty_tiles_get_nan_coefficients_without_warnings(method, recwarn):
    t = tiles(n=4, nan_fraction=0.0)
    t[1] = np.nan
    c = Scaler(method).fit(t)
    assert np.isnan(c.loc[1]).all() and np.isfinite(c.loc[[0, 2, 3]]).all()
    assert np.isnan(Scaler(method).fit(t.isel(tile=[1])).loc).all()  # a chunk with no data at all
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_fixed_range_is_global_and_given():
    t = tiles()
    z, c = Scaler("fixed", fixed_range=(0.0, 40.0)).fit_transform(t)
    np.testing.assert_allclose(z.values, (t.values - 20.0) / 20.0)
    assert np.isfinite(c.loc).all()


def test_json_round_trip_is_bit_exact():
    c = Scaler("standard").fit(tiles(bands=2))
    c.row, c.col = np.arange(5), np.arange(5) * 3
    c.loc[2, 1] = np.nan
    back = Coefficients.from_json(c.to_json())
    assert back.loc.tobytes() == c.loc.tobytes() and back.scale.tobytes() == c.scale.tobytes()
    assert back.method == "standard" and back.units == "mm/yr"
    np.testing.assert_array_equal(back.col, c.col)


def test_attrs_form_is_written_as_the_json_form():
    """Scenes carry coefficients as arrays; the writers' JSON is exactly ``to_json``'s, NaN as null."""
    from geodiff.io.write import _json_default

    c = Scaler("standard").fit(tiles(bands=2))
    c.row, c.col = np.arange(5), np.arange(5) * 3
    c.loc[2, 1] = np.nan
    attrs = c.to_attrs()
    assert isinstance(attrs["loc"], np.ndarray) and attrs["loc"] is c.loc
    written = json.loads(json.dumps(attrs, default=_json_default, allow_nan=False))
    assert written == json.loads(c.to_json()) and written["loc"][2][1] is None


def test_draws_come_jointly_from_training_tiles():
    c = Scaler("minmax").fit(tiles(n=6, bands=2, nan_fraction=0))
    drawn = c.draw(3000, seed=0)
    rows = {tuple(r) for r in np.hstack([c.loc, c.scale])}
    assert all(tuple(r) in rows for r in np.hstack([drawn.loc, drawn.scale]))  # never mixes tiles
    counts = np.unique(drawn.loc[:, 0], return_counts=True)[1]
    assert len(counts) == 6 and counts.min() > 400  # ~500 each
    np.testing.assert_array_equal(c.draw(5, seed=1).loc, c.draw(5, seed=1).loc)
    index = c.draw_index(5, seed=1)  # the tiles a draw resamples, e.g. to score those real tiles
    np.testing.assert_array_equal(c.draw(5, seed=1).scale, c.scale[index])


def test_labelled_draws_come_from_tiles_of_the_classes_asked_for():
    c = Scaler("minmax").fit(tiles(n=6, nan_fraction=0))
    c.meta = {"labels": [["sea"], ["land"], ["sea", "ice"], [], ["land"], ["sea"]], "scene": list("abcdef")}
    asked = [["sea"]] * 500 + [["land"]] * 500 + [["sea", "ice"]] * 10
    index = c.draw_index(len(asked), seed=0, labels=asked)
    assert set(index[:500]) == {0, 2, 5} and set(index[500:1000]) == {1, 4} and set(index[1000:]) == {2}
    np.testing.assert_array_equal(c.draw_index(3, seed=0, labels=asked[:3]), index[:3])  # draw i ignores n
    drawn = c.draw(2, seed=3, labels=[["land"], ["sea"]]).meta["labels"]
    assert drawn[0] == ["land"] and "sea" in drawn[1]
    picked = c.subset(np.array([4, 2]))
    assert picked.meta["labels"] == [["land"], ["sea", "ice"]] and picked.meta["scene"] == ["e", "c"]
    with pytest.raises(ValueError, match="labelled"):
        c.draw_index(1, seed=0, labels=[["ice", "land"]])


def test_nearest_location(campi_flegrei):
    da = geodiff.open_scene(campi_flegrei / "vel.tif")
    grid = TileGrid.from_scene(da, 32)
    t = select(grid.stack(da), nodata_filter(grid.stack(da)))
    c = Scaler().fit(t)
    picked = c.nearest([t["row"].values[2] + 1], [t["col"].values[2] - 1])
    np.testing.assert_array_equal(picked.loc, c.loc[2:3])


def test_db_transform_values_and_floor():
    np.testing.assert_allclose(to_db(np.array([1.0, 0.1, 100.0])), [0.0, -10.0, 20.0])
    np.testing.assert_allclose(to_db(np.array([0.0, -1.0]), floor=1e-3), [-30.0, -30.0])
    assert np.isnan(to_db(np.array([np.nan])))[0]
    x = np.geomspace(1e-5, 10, 50)
    np.testing.assert_allclose(from_db(to_db(x)), x, rtol=1e-12)


def test_db_scaling_of_real_backscatter(opera_rtc):
    path = sorted(glob.glob(str(opera_rtc / "2022-*" / "*IW2*_VH.tif")))[0]
    da = geodiff.open_scene(path)
    grid = TileGrid.from_scene(da, 25)
    t = grid.stack(da)
    assert np.nanmin(t.values) < 1e-6  # real VH over water: far below -60 dB
    scaler = Scaler("robust", db=True)
    z, c = scaler.fit_transform(t)
    ref = 10 * np.log10(t.values.reshape(len(grid), -1))
    np.testing.assert_allclose(c.loc[:, 0], (np.percentile(ref, 2, 1) + np.percentile(ref, 98, 1)) / 2, rtol=1e-6)
    back = scaler.inverse(z, c)
    np.testing.assert_allclose(back.values, t.values, rtol=1e-5)
    lazy = scaler.transform(t)  # own statistics, one pass
    np.testing.assert_allclose(lazy.values, z.values, rtol=1e-6)


def test_db_refuses_signed_data_with_the_fraction(campi_flegrei):
    from geodiff.errors import GeodiffError
    from geodiff.scaling.db import DB_MAX_NONPOSITIVE

    da = geodiff.open_scene(campi_flegrei / "vel.tif")
    t = TileGrid.from_scene(da, 32).stack(da)
    raw = t.values[np.isfinite(t.values)]
    fraction = (raw <= 0).mean()
    assert fraction > 0.5  # LiCSBAS velocities: mostly subsidence-signed, not power
    with pytest.raises(GeodiffError, match=f"{fraction:.1%} of the valid pixels are <= 0"):
        Scaler(db=True).fit(t)
    # A few zeros (border fill) in real power are accepted and floored, not refused.
    power = np.abs(t) + 1e-3
    power[0, 0, : int(DB_MAX_NONPOSITIVE * power[0].size / 2)] = 0.0
    coefficients = Scaler(db=True).fit(power)
    assert np.isfinite(coefficients.loc).all()


@pytest.mark.parametrize("method", ["minmax", "standard", "robust"])
def test_renormalise_restores_each_tiles_normalised_extent(method):
    rng = np.random.default_rng(3)
    # Generated tiles that fill only part of the range, each differently shifted and shrunk.
    z = rng.uniform(-1, 1, (5, 2, 8, 8)) * rng.uniform(0.3, 0.9, (5, 2, 1, 1)) + rng.uniform(-0.1, 0.1, (5, 2, 1, 1))
    scaler = Scaler(method)
    out = scaler.renormalise(z)
    flat = out.reshape(10, -1)
    if method == "minmax":
        np.testing.assert_allclose(flat.min(-1), -1.0, atol=1e-12)
        np.testing.assert_allclose(flat.max(-1), 1.0, atol=1e-12)
    elif method == "standard":
        np.testing.assert_allclose(flat.mean(-1), 0.0, atol=1e-12)
        np.testing.assert_allclose(flat.std(-1), 1.0, atol=1e-12)
    else:
        np.testing.assert_allclose(np.percentile(flat, [2, 98], axis=-1), [[-1.0] * 10, [1.0] * 10], atol=1e-12)
    # An affine map of each tile: the correlation with the input is exactly 1.
    for a, b in zip(z.reshape(10, -1), flat):
        assert np.corrcoef(a, b)[0, 1] == pytest.approx(1.0)
    da = xr.DataArray(z[:, 0], dims=("sample", "y", "x"))
    np.testing.assert_array_equal(scaler.renormalise(da).values, scaler.renormalise(z[:, 0]))


@pytest.mark.parametrize("scaler", [Scaler("minmax", per_tile=False), Scaler("fixed", fixed_range=(0.0, 1.0))])
def test_renormalise_needs_per_tile_coefficients(scaler):
    from geodiff.errors import GeodiffError

    with pytest.raises(GeodiffError, match="per-tile"):
        scaler.renormalise(np.zeros((1, 4, 4)))
