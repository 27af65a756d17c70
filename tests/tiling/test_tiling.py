"""Tile grids, filters, gap filling, augmentation and stitching."""

import threading

import dask.array as darr
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import geodiff
from geodiff.errors import SceneError, TilingError
from geodiff.tiling import (
    TileGrid,
    dihedral,
    fill_gaps,
    multiscale,
    nodata_filter,
    patch_filter,
    random_shift,
    select,
    untile,
    valid_fraction,
)


def scene(h, w, seed=0, nan_fraction=0.0, chunks=None):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(h, w)).astype("float32")
    values[rng.random((h, w)) < nan_fraction] = np.nan
    da = xr.DataArray(values, dims=("y", "x"),
                      coords={"y": 5000.0 - 20.0 * np.arange(h), "x": 300.0 + 20.0 * np.arange(w)})
    da = da.rio.write_crs("EPSG:32633")
    return da.chunk(chunks) if chunks else da


@st.composite
def grids(draw):
    h, w = draw(st.integers(4, 40)), draw(st.integers(4, 40))
    th, tw = draw(st.integers(2, h)), draw(st.integers(2, w))
    oh, ow = draw(st.integers(0, th // 2)), draw(st.integers(0, tw // 2))
    return h, w, (th, tw), (oh, ow), draw(st.sampled_from(["shift", "pad"]))


@settings(max_examples=40, deadline=None)
@given(grids(), st.integers(0, 2**16), st.sampled_from([1, 3, "auto"]))
def test_untile_inverts_stack(params, seed, draw_chunking):
    h, w, size, overlap, edge = params
    da = scene(h, w, seed, nan_fraction=0.1, chunks=7)
    grid = TileGrid.from_scene(da, size, overlap, edge)
    tiles = grid.stack(da, tiles_per_chunk=draw_chunking)
    coverage = np.zeros((h, w), int)
    for t in grid:
        rows, cols = t.slices
        coverage[rows, cols] += 1
    assert coverage.min() >= 1  # no pixel is dropped
    back = untile(tiles.values, grid)
    if overlap == (0, 0):
        np.testing.assert_array_equal(back, da.values)
    else:
        np.testing.assert_allclose(back, da.values, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.isnan(back), np.isnan(da.values))


def test_edge_policies_on_a_known_case():
    grid = TileGrid((10, 10), (4, 4), (0, 0), "shift")
    np.testing.assert_array_equal(grid.row_starts, [0, 4, 6])
    grid = TileGrid((10, 10), (4, 4), (0, 0), "pad")
    np.testing.assert_array_equal(grid.row_starts, [0, 4, 8])
    assert grid.padded_shape == (12, 12)
    np.testing.assert_array_equal(TileGrid((10, 10), (4, 4), (2, 2)).row_starts, [0, 2, 4, 6])


def test_padded_edge_tiles_are_nodata_and_georeferenced():
    da = scene(10, 9)
    grid = TileGrid.from_scene(da, 4, edge="pad")
    last = grid.tile(da, len(grid) - 1)
    assert last.shape == (4, 4) and np.isnan(last.values[2:, :]).all() and np.isnan(last.values[:, 1:]).all()
    assert last.rio.transform() == grid[len(grid) - 1].transform
    np.testing.assert_array_equal(grid.stack(da).values[-1], last.values)


def test_tile_windows_carry_their_georeferencing():
    da = scene(30, 25)
    grid = TileGrid.from_scene(da, (8, 6), overlap=2)
    for index in (0, 5, len(grid) - 1):
        tile = grid.tile(da, index)
        assert tile.rio.transform() == grid[index].transform
        assert tile.rio.crs == da.rio.crs


def test_tile_larger_than_scene_and_bad_overlap():
    with pytest.raises(TilingError, match="larger than the scene"):
        TileGrid.from_scene(scene(20, 30), 32)
    with pytest.raises(TilingError, match="overlap"):
        TileGrid.from_scene(scene(20, 30), 8, overlap=8)


class CountingArray:
    """Array-like that records which windows dask reads from it."""

    def __init__(self, values):
        self.values, self.shape, self.dtype, self.ndim = values, values.shape, values.dtype, values.ndim
        self.reads, self.lock = [], threading.Lock()

    def __getitem__(self, key):
        out = self.values[key]
        if out.size:  # dask reads an empty slice once for metadata
            with self.lock:
                self.reads.append(key)
        return out


def test_stack_is_lazy_and_reads_only_the_chunks_a_tile_needs():
    source = CountingArray(np.arange(128 * 96, dtype="float32").reshape(128, 96))
    da = scene(128, 96).copy(data=darr.from_array(source, chunks=32))
    grid = TileGrid.from_scene(da, 16)
    tiles = grid.stack(da, tiles_per_chunk=1)
    assert not source.reads
    assert tiles.chunks[0] == (1,) * len(grid)
    np.testing.assert_array_equal(tiles.isel(tile=3).values, source.values[:16, 48:64])
    assert len(source.reads) == 1  # one 32x32 chunk out of 12


def test_aligned_chunks_keep_tiles_inside_chunks():
    grid = TileGrid((250, 300), (32, 32))
    chunks = grid.aligned_chunks(3)
    inner = grid.origins[(grid.origins[:, 0] + 32 <= 250 - 250 % 32) & (grid.origins[:, 1] + 32 <= 300 - 300 % 32)]
    for r, c in inner:  # every tile off the shifted last row/column lies in one chunk
        assert r // chunks["y"] == (r + 31) // chunks["y"] and c // chunks["x"] == (c + 31) // chunks["x"]
    assert len(inner) == (250 // 32) * (300 // 32)


def test_nodata_filter_on_licsbas_footprint(campi_flegrei):
    da = geodiff.open_scene(campi_flegrei / "vel_mskd.tif")
    grid = TileGrid.from_scene(da, 16)
    tiles = grid.stack(da)
    nan_frac = np.isnan(tiles.values).mean(axis=(1, 2))
    np.testing.assert_allclose(valid_fraction(tiles).values, 1 - nan_frac)
    keep = nodata_filter(tiles, 0.5).values
    np.testing.assert_array_equal(keep, nan_frac <= 0.5)
    assert 0 < keep.sum() < len(grid)  # the masked frame drops some tiles, keeps others
    kept = select(tiles, nodata_filter(tiles))
    assert kept.sizes["tile"] == keep.sum()
    np.testing.assert_array_equal(kept["row"].values, grid.origins[keep, 0])


def test_all_nodata_scene_is_a_clear_error():
    da = scene(32, 32) * np.nan
    tiles = TileGrid.from_scene(da, 16).stack(da)
    with pytest.raises(SceneError, match="no tile out of 4"):
        select(tiles, nodata_filter(tiles))


def test_patch_filter_counts_valid_pixels_in_band():
    values = np.full((3, 10, 10), 50.0)
    values[0, :4] = 1.0   # 40 % of pixels in [-30, 30]
    values[1, :2] = -2.0  # 20 %
    values[2, :5] = np.nan
    values[2, 5:7] = 0.0  # 2 of 5 valid rows: 40 % of valid pixels
    tiles = xr.DataArray(values, dims=("tile", "y", "x"))
    np.testing.assert_array_equal(patch_filter(tiles, theta=0.3, a=30.0).values, [True, False, True])


def test_nearest_fill_matches_brute_force():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(2, 12, 9))
    values[rng.random(values.shape) < 0.3] = np.nan
    filled, valid = fill_gaps(xr.DataArray(values, dims=("tile", "y", "x")), "nearest")
    np.testing.assert_array_equal(valid.values, np.isfinite(values))
    for k in range(2):
        good = np.argwhere(np.isfinite(values[k]))
        for r, c in np.argwhere(np.isnan(values[k])):
            d = ((good - [r, c]) ** 2).sum(1)
            candidates = {values[k][tuple(g)] for g in good[d == d.min()]}
            assert filled.values[k, r, c] in candidates


def test_laplace_fill_reproduces_harmonic_fields():
    yy, xx = np.mgrid[0:20, 0:15].astype(float)
    harmonic = 2.0 * xx - 0.5 * yy + 0.1 * (xx**2 - yy**2) + 3.0
    holes = harmonic.copy()
    holes[5:12, 4:10] = np.nan
    holes[15:18, 1:3] = np.nan
    filled, _ = fill_gaps(xr.DataArray(holes[None], dims=("tile", "y", "x")), "laplace")
    np.testing.assert_allclose(filled.values[0], harmonic, atol=1e-9)


def test_one_factorised_harmonic_fill_serves_many_planes_on_the_same_gaps():
    from geodiff.tiling.fill import fill_planes, harmonic_fill

    yy, xx = np.mgrid[0:20, 0:15].astype(float)
    gaps = np.zeros((20, 15), bool)
    gaps[5:12, 4:10] = gaps[15:18, 1:3] = True
    fields = np.stack([a * xx + b * yy + c * (xx * yy) + d for a, b, c, d in ((1, 0, 0, 0), (0.2, -3, 0.5, 1))])
    fill = harmonic_fill(gaps)
    np.testing.assert_allclose(fill(np.where(gaps, np.nan, fields)), fields, atol=1e-9)
    rough = np.random.default_rng(0).normal(size=(3, 20, 15))
    np.testing.assert_allclose(fill(rough), fill_planes(np.where(gaps, np.nan, rough), "laplace"), atol=1e-12)
    with pytest.raises(SceneError, match="no valid pixel"):
        harmonic_fill(np.ones((4, 4), bool))


def test_fill_works_lazily_and_never_leaves_nan(campi_flegrei):
    da = geodiff.open_scene(campi_flegrei / "vel.tif")
    tiles = select(TileGrid.from_scene(da, 32).stack(da), nodata_filter(TileGrid.from_scene(da, 32).stack(da)))
    filled, valid = fill_gaps(tiles, "laplace")
    assert isinstance(filled.data, darr.Array)
    out = filled.values
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[valid.values], tiles.values[valid.values])


def test_random_shift_is_one_constant_per_tile_and_seeded():
    tiles = xr.DataArray(np.zeros((6, 4, 4)), dims=("tile", "y", "x"))
    a, b = random_shift(tiles, seed=1), random_shift(tiles, seed=1)
    np.testing.assert_array_equal(a.values, b.values)
    per_tile = a.values.reshape(6, -1)
    assert (per_tile.std(1) == 0).all() and (np.abs(per_tile[:, 0]) <= 5).all()
    assert len(np.unique(per_tile[:, 0])) == 6


def test_multiscale_tiles_are_block_means():
    da = scene(40, 36, nan_fraction=0.05)
    grid, tiles = multiscale(da, 8, factor=2)
    v = da.values[:40, :36].reshape(20, 2, 18, 2)
    coarse = np.nansum(v, axis=(1, 3)) / np.isfinite(v).sum(axis=(1, 3))
    np.testing.assert_allclose(tiles.values[0], coarse[:8, :8], rtol=1e-6)
    assert grid.transform.a == 2 * da.rio.transform().a


def test_dihedral_is_off_by_default_and_permutes_pixels():
    tiles = xr.DataArray(np.arange(4 * 5 * 5, dtype=float).reshape(4, 5, 5), dims=("tile", "y", "x"))
    assert dihedral(tiles) is tiles
    out = dihedral(tiles, flips=True, rot90=True, seed=0)
    for a, b in zip(out.values, tiles.values):
        assert sorted(a.ravel()) == sorted(b.ravel())
        assert any(np.array_equal(a, np.rot90(f, k)) for f in (b, b[:, ::-1]) for k in range(4))
    with pytest.raises(TilingError, match="square"):
        dihedral(tiles.isel(x=slice(0, 4)), rot90=True)
