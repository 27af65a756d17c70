"""Label maps on scenes: polygons and rasters on a lattice, per-region sampling and coefficients (issue 14)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from shapely.geometry import Point, box

import geodiff
from geodiff.errors import GeodiffError, SceneError
from geodiff.label_map import label_lattice
from tests.test_collection import TINY, _scene


def _halves(scene, west="sea", east="land"):
    """Two polygons splitting the scene's footprint at its middle column."""
    left, bottom, right, top = scene.rio.bounds()
    middle = float(scene["x"][scene.sizes["x"] // 2]) - 15  # a pixel edge
    return gpd.GeoDataFrame({"label": [west, east]}, geometry=[box(left, bottom, middle, top),
                                                             box(middle, bottom, right, top)], crs=scene.rio.crs)


def test_polygons_on_the_lattice_take_the_class_of_the_pixel_centre_they_sit_on():
    scene = _scene(0, shape=(40, 56))
    polygons = _halves(scene).iloc[[1]]  # only the east: the west is unlabelled
    lattice = label_lattice(polygons, scene, ["land", "sea"], 4)
    assert lattice.classes.shape == (10, 14) and lattice.null == 2
    for i in range(10):
        for j in range(14):
            centre = Point(float(scene["x"][4 * j]), float(scene["y"][4 * i]))
            expected = 0 if polygons.geometry.iloc[0].contains(centre) else 2
            assert lattice.classes[i, j] == expected
    # A canvas reaching beyond the scene takes the edge's class there.
    canvas = lattice.canvas(-3, 50, 8, 10, (40, 56))
    assert canvas.shape == (8, 10) and (canvas == 0).all()


def test_a_raster_label_map_on_the_scene_grid_equals_the_polygons_and_other_grids_are_refused():
    scene = _scene(0, shape=(40, 56))
    names = np.where(scene["x"].values[None, :] < float(scene["x"][28]) - 15, "sea", "land")
    raster = xr.DataArray(np.broadcast_to(names, (40, 56)), dims=("y", "x"),
                          coords={"y": scene["y"], "x": scene["x"]}).rio.write_crs(scene.rio.crs)
    from_polygons = label_lattice(_halves(scene), scene, ["land", "sea"], 4).classes
    np.testing.assert_array_equal(label_lattice(raster, scene, ["land", "sea"], 4).classes, from_polygons)
    indices = xr.where(raster == "land", 0.0, 1.0).rio.write_crs(scene.rio.crs)
    np.testing.assert_array_equal(label_lattice(indices, scene, ["land", "sea"], 4).classes, from_polygons)
    with pytest.raises(SceneError, match="CRS"):
        label_lattice(raster.rio.write_crs("EPSG:4326"), scene, ["land", "sea"], 4)
    with pytest.raises(SceneError, match="grid"):
        label_lattice(raster.isel(x=slice(1, None)), scene, ["land", "sea"], 4)
    with pytest.raises(SceneError, match="unknown class"):
        label_lattice("ice", scene, ["land", "sea"], 4)
    with pytest.raises(SceneError, match="class indices"):
        label_lattice(indices + 5, scene, ["land", "sea"], 4)


@pytest.fixture(scope="module")
def conditional():
    sea = (_scene(0, nan=0) * 0.1).rename("a").assign_attrs(label="sea", units="mm/yr")  # a narrow range
    land = (_scene(1, nan=0) * 10 + 100).rename("b").assign_attrs(label="land", units="mm/yr")
    return geodiff.fit([sea, land], tile=16, train_steps=2, labels="attrs", conditional=True, **TINY)


def test_a_scene_sampled_by_regions_draws_each_regions_ranges_from_its_class(conditional):
    scene = _scene(5, shape=(48, 96), nan=0)
    polygons = _halves(scene)
    out = conditional.sample_scene(1, like=scene, labels=polygons, guidance=1.0, sample_steps=2, block=32)
    assert out.chunks is not None and out.attrs["labels"] == "2 polygons" and out.attrs["guidance"] == 1.0
    values = out.values
    assert np.isfinite(values).all()
    per_tile = out.attrs["coefficients_per_tile"]
    classes = conditional.coefficients.meta["labels"]
    ranges = {name: {tuple(conditional.coefficients.loc[i]) for i in range(len(classes)) if classes[i] == [name]}
              for name in ("sea", "land")}
    for col, loc in zip(per_tile["col"], per_tile["loc"]):
        assert tuple(loc) in ranges["sea" if col + 8 < 48 else "land"]
    np.testing.assert_array_equal(out.values, values)  # same seed, same scene
    all_sea = conditional.sample_scene(1, like=scene, labels="sea", guidance=1.0, sample_steps=2, block=32)
    assert not np.allclose(all_sea.values[..., 64:], values[..., 64:])


def test_bad_label_maps_are_refused_before_any_work(conditional):
    scene = _scene(5, shape=(48, 96), nan=0)
    with pytest.raises(GeodiffError, match="weight >= 0"):
        conditional.sample_scene(1, like=scene, labels="sea", guidance=-2.0)
    with pytest.raises(GeodiffError, match="method='fused'"):
        conditional.sample_scene(1, like=scene, labels="sea", method="tiles")
    with pytest.raises(GeodiffError, match="guidance needs labels"):
        conditional.sample_scene(1, like=scene, guidance=1.0)
    with pytest.raises(SceneError, match="unknown class"):
        conditional.sample_scene(1, like=scene, labels=_halves(scene, west="ice"))
    with pytest.raises(SceneError, match="no column"):
        conditional.sample_scene(1, like=scene, labels=_halves(scene), label_column="class")
    unconditional = geodiff.fit(scene, tile=16, train_steps=1, **TINY)
    with pytest.raises(GeodiffError, match="class-conditional"):
        unconditional.sample_scene(1, like=scene, labels="sea")
