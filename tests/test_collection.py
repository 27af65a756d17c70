"""Training on collections of scenes: collecting, the tile index, splits, labels and the streaming
tile dataset (issue 12)."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pytest
import torch
import xarray as xr
from shapely.geometry import box

import geodiff
from geodiff.collection import collect
from geodiff.diffusion import NoiseSchedule, TrainConfig, Trainer
from geodiff.diffusion.unet import UNet
from geodiff.errors import GeodiffError, SceneError
from geodiff.scaling import Scaler
from geodiff.splits import split_tiles
from geodiff.tile_dataset import Augment, TileDataset
from geodiff.tile_index import SkippedSceneWarning
from geodiff.tiling import TileGrid, fill_gaps
from tests.conftest import require_data

TINY = {"preset": "tiny", "network": {"attention_resolutions": ()}, "progress": False}


def _scene(seed=0, shape=(48, 64), crs="EPSG:32633", x0=4e5, units="mm/yr", nan=0.1):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape).cumsum(0).cumsum(1).astype(np.float32)
    values[rng.random(shape) < nan] = np.nan
    h, w = shape
    da = xr.DataArray(values, dims=("y", "x"), coords={"y": 5e6 - 30.0 * np.arange(h) - 15, "x": x0 + 30.0 * np.arange(w) + 15},
                      attrs={"units": units}, name=None)
    return da.rio.write_crs(crs)


# -- collecting --------------------------------------------------------------------------------


def test_a_stack_is_more_scenes_and_a_dataset_is_bands():
    stack = xr.concat([_scene(i) for i in range(3)], dim="time").assign_coords(time=["a", "b", "c"])
    members = collect(stack.rename("ifg"))
    assert [m.id for m in members] == ["ifg[a]", "ifg[b]", "ifg[c]"]
    np.testing.assert_array_equal(members[1].open().values[0], stack.isel(time=1).values)
    dual = xr.Dataset({"VV": _scene(0, units="1"), "VH": _scene(1, units="1")})
    (member,) = collect(dual)
    opened = member.open()
    assert list(opened["band"].values) == ["VV", "VH"]
    np.testing.assert_array_equal(opened.sel(band="VH").values, dual["VH"].values)


def test_band_files_pair_by_name(tmp_path):
    for date in ("d1", "d2"):
        for pol, seed in (("VV", 0), ("VH", 1)):
            geodiff.to_geotiff(_scene(seed, units="1"), tmp_path / f"burst_{date}_{pol}.tif")
    members = collect(str(tmp_path / "*.tif"), band_files=("VV", "VH"))
    assert sorted(m.id for m in members) == ["burst_d1", "burst_d2"]
    scene = members[0].open()
    assert list(scene["band"].values) == ["VV", "VH"]
    np.testing.assert_allclose(scene.sel(band="VH").values, _scene(1).values, equal_nan=True)
    (tmp_path / "burst_d2_VH.tif").unlink()
    with pytest.raises(SceneError, match="no partner file for band"):
        collect(str(tmp_path / "*.tif"), band_files=("VV", "VH"))


@pytest.mark.parametrize("scenes,match", [
    ([], "no scenes given"),
    ("/nonexistent/*.tif", "matches no file"),
    ("/nonexistent/a.tif", "no such file"),
])
def test_nothing_to_collect_is_a_clear_error(scenes, match):
    with pytest.raises(SceneError, match=match):
        collect(scenes)


def test_scenes_that_cannot_train_together_are_refused_before_training(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(Trainer, "fit", no_training)
    two_bands = xr.concat([_scene(0), _scene(1)], dim="band")
    with pytest.raises(SceneError, match="same bands"):
        geodiff.fit([_scene(0), two_bands], tile=16, train_steps=1, **TINY)
    with pytest.raises(SceneError, match="convert them to one unit"):
        geodiff.fit([_scene(0), _scene(1, units="rad")], tile=16, train_steps=1, **TINY)
    broken = tmp_path / "broken.tif"
    broken.write_text("not a raster")
    with pytest.raises(SceneError, match="broken.tif"):
        geodiff.fit([_scene(0), broken], tile=16, train_steps=1, **TINY)


@pytest.mark.parametrize("options,match", [({"tile": 0}, "tile size must be positive"),
                                           ({"tile": 16, "overlap": 16}, "overlap 16 must be")])
def test_a_bad_tiling_is_refused_as_such_not_as_scenes_too_small(options, match):
    from geodiff.errors import TilingError

    with pytest.raises(TilingError, match=match):
        TileDataset.from_scenes([_scene(0), _scene(1)], progress=False, **options)


def test_a_scene_smaller_than_a_tile_is_skipped_with_a_warning_and_counted():
    with pytest.warns(SkippedSceneWarning, match="smaller than a tile"):
        model = geodiff.fit([_scene(0), _scene(1, shape=(8, 8)).rename("small")], tile=16, train_steps=2, **TINY)
    assert model.summary["skipped_scenes"] == [{"id": "small", "why": "smaller than a tile of 16x16 px"}]
    assert [s["id"] for s in model.summary["scenes"]] == ["scene-0"]


# -- the index ---------------------------------------------------------------------------------


def test_index_footprints_match_the_tile_transforms_and_round_trip_through_geoparquet(tmp_path):
    scene = _scene(0)
    ds = TileDataset.from_scenes([scene], tile=16, progress=False)
    grid = TileGrid.from_scene(scene, 16)
    for _, row in ds.index.iterrows():
        t = grid[int(np.flatnonzero((grid.origins == (row["row"], row["col"])).all(1))[0])]
        left, top = t.transform @ (0, 0)
        right, bottom = t.transform @ (16, 16)
        np.testing.assert_allclose(row["footprint"].bounds, (left, bottom, right, top))
    wgs84 = gpd.GeoSeries(ds.index["footprint"], crs=scene.rio.crs).to_crs("EPSG:4326")
    assert np.allclose(np.array([g.bounds for g in wgs84]), np.array([g.bounds for g in ds.index.geometry]))
    path = tmp_path / "index.parquet"
    ds.index.to_parquet(path)
    back = gpd.read_parquet(path)
    assert back.crs == "EPSG:4326" and back["footprint"].crs == ds.index["footprint"].crs
    assert all(a.equals(b) for a, b in zip(back.geometry, ds.index.geometry))
    np.testing.assert_array_equal(back["loc"].to_numpy(), ds.index["loc"].to_numpy())
    aoi = box(*ds.index.geometry.iloc[0].centroid.buffer(1e-6).bounds)
    assert len(ds.subset(ds.index.intersects(aoi).to_numpy())) >= 1


def test_index_coefficients_and_filters_match_the_in_memory_tiling():
    scene = _scene(0, nan=0.3)
    ds = TileDataset.from_scenes(scene, tile=16, max_nodata=0.35, progress=False)
    tiles = geodiff.training.training_tiles(scene, 16, max_nodata=0.35).compute()
    np.testing.assert_array_equal(ds.index["row"], tiles["row"])
    np.testing.assert_array_equal(ds.index["col"], tiles["col"])
    coefficients = Scaler().fit(tiles)
    np.testing.assert_array_equal(ds.coefficients().loc, coefficients.loc)
    np.testing.assert_array_equal(ds.coefficients().scale, coefficients.scale)
    filled, _ = fill_gaps(Scaler().transform(tiles, coefficients))
    np.testing.assert_array_equal(ds.to_tensor()[:, 0].numpy(), filled.values.astype(np.float32))


@pytest.mark.parametrize("method", ["minmax", "standard"])
def test_a_global_scaler_over_a_collection_equals_one_over_all_its_tiles(method):
    scenes = [_scene(0), _scene(1, shape=(32, 48))]
    ds = TileDataset.from_scenes(scenes, tile=16, scaler=Scaler(method, per_tile=False), progress=False)
    all_tiles = xr.concat([geodiff.training.training_tiles(s, 16).compute() for s in scenes], dim="tile")
    reference = Scaler(method, per_tile=False).fit(all_tiles)
    np.testing.assert_allclose(ds.coefficients().loc, reference.loc, rtol=1e-9)
    np.testing.assert_allclose(ds.coefficients().scale, reference.scale, rtol=1e-6)


def test_multiscale_tiles_are_block_means_of_larger_windows():
    scene = _scene(0, shape=(64, 64), nan=0.0)
    ds = TileDataset.from_scenes(scene, tile=16, scales=(1, 2), progress=False)
    coarse = ds.index[ds.index["factor"] == 2]
    assert len(coarse) == 4 and set(coarse["height"]) == {32}
    i = int(coarse.index[1])
    r, c = int(ds.index.loc[i, "row"]), int(ds.index.loc[i, "col"])
    window = scene.values[r:r + 32, c:c + 32]
    expected = window.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(ds.raw(i)[0], expected, rtol=1e-6)


def test_augmentations_are_flips_and_turns_of_the_plain_tile():
    scene = _scene(0, nan=0.0)
    plain = TileDataset.from_scenes(scene, tile=16, progress=False)
    augmented = plain.subset(np.arange(len(plain)))
    augmented.augment = Augment(flips=True, rot90=True)
    items = augmented.draws([0, 1, 2, 3, 4, 5], torch.Generator().manual_seed(0))
    batch = augmented.__getitems__(items)
    for k, (i, (flip, turns, _)) in enumerate(items):
        expected = plain[i].numpy()
        expected = np.rot90(np.flip(expected, -1) if flip else expected, turns, axes=(-2, -1))
        np.testing.assert_array_equal(batch[k].numpy(), expected)
    fixed = TileDataset.from_scenes(scene, tile=16, scaler=Scaler("fixed", fixed_range=(-50, 50)), progress=False)
    fixed.augment = Augment(shift=(2.0, 2.0))
    (one,) = fixed.__getitems__(fixed.draws([0], torch.Generator()))
    np.testing.assert_allclose(one.numpy(), (fixed.raw(0) + 2.0) / 50.0, rtol=1e-5)
    plain.augment = Augment(shift=(-5.0, 5.0))  # per-tile min-max: the tile's own range moves with it
    (same,) = plain.__getitems__(plain.draws([0], torch.Generator()))
    np.testing.assert_allclose(same.numpy(), plain.to_tensor()[0].numpy(), atol=1e-5)


# -- splits ------------------------------------------------------------------------------------


def test_a_scene_split_keeps_every_validation_scene_out_of_training():
    scenes = [_scene(i).rename(f"s{i}") for i in range(6)]
    ds = TileDataset.from_scenes(scenes, tile=16, progress=False)
    split = split_tiles(ds.index, 0.3, "scene", seed=1)
    val_scenes = set(ds.index["scene"][split == "val"])
    train_scenes = set(ds.index["scene"][split == "train"])
    assert val_scenes and train_scenes and not val_scenes & train_scenes
    assert 0.15 < (split == "val").mean() < 0.5


def test_a_block_split_leaves_no_training_tile_overlapping_a_validation_tile():
    ds = TileDataset.from_scenes(_scene(0, shape=(160, 160)), tile=16, overlap=8, progress=False)
    split = split_tiles(ds.index, 0.25, "block", seed=0)
    idx = ds.index
    val, train = idx[split == "val"], idx[split == "train"]
    assert len(val) and len(train) and (split == "dropped").any()
    for _, v in val.iterrows():
        overlap = (train["row"] < v["row"] + 16) & (train["row"] + 16 > v["row"]) & \
            (train["col"] < v["col"] + 16) & (train["col"] + 16 > v["col"])
        assert not overlap.any()


def test_fit_leaves_the_callers_dataset_as_it_was():
    ds = TileDataset.from_scenes([_scene(i).rename(f"s{i}") for i in range(4)], tile=16, progress=False)
    before = ds.index.copy()
    model = geodiff.fit(ds, train_steps=1, val_fraction=0.25, **TINY)
    assert model.summary["split"]["val_tiles"] > 0
    assert ds.index.equals(before) and set(ds.index["split"]) == {"train"}


def test_band_file_names_lose_the_band_and_one_separator():
    from pathlib import Path

    from geodiff.collection import _band_key

    assert _band_key(Path("/d/a_20210101_VV.tif"), ("VV", "VH")) == ("/d/a_20210101", "VV")
    assert _band_key(Path("/d/VH-a.tif"), ("VV", "VH")) == ("/d/a", "VH")
    assert _band_key(Path("/d/a.VV.b.tif"), ("VV", "VH")) == ("/d/a.b", "VV")
    assert _band_key(Path("/d/a.tif"), ("VV",)) == ("/d/a.tif", None)


def test_fit_records_the_split_and_the_scenes(tmp_path):
    scenes = [_scene(i).rename(f"s{i}") for i in range(4)]
    model = geodiff.fit(scenes, tile=16, train_steps=2, val_fraction=0.25, log_every=1, **TINY)
    summary = model.summary
    assert summary["split"]["by"] == "scene" and summary["split"]["val_tiles"] > 0
    by_scene = {s["id"]: s for s in summary["scenes"]}
    assert set(by_scene) == {"s0", "s1", "s2", "s3"}
    assert sum(1 for s in by_scene.values() if s["val_tiles"]) == 1
    assert all(not (s["val_tiles"] and s["train_tiles"]) for s in by_scene.values())
    assert summary["tiles"] == sum(s["train_tiles"] for s in by_scene.values())
    reloaded = geodiff.load_model(model.save(tmp_path / "m"))
    assert reloaded.summary["scenes"] == summary["scenes"]


# -- labels ------------------------------------------------------------------------------------


def test_labels_from_attrs_and_polygons():
    a = _scene(0).rename("a").assign_attrs(labels=json.dumps(["sea"]))
    b = _scene(1).rename("b").assign_attrs(label="land")
    ds = TileDataset.from_scenes([a, b], tile=16, labels="attrs", progress=False)
    assert ds.classes == ["land", "sea"]
    assert set(map(tuple, ds.index.loc[ds.index["scene"] == "a", "labels"])) == {("sea",)}
    np.testing.assert_array_equal(ds.labels()[ds.index["scene"].to_numpy() == "b"].numpy(), [[1, 0]] * 12)
    with pytest.raises(SceneError, match="1 of 2 scenes have no labels"):
        TileDataset.from_scenes([a, _scene(2).rename("c")], tile=16, labels="attrs", progress=False)
    # Left half "west", right half "east" of one scene: columns 0-31 and 32-63.
    scene = _scene(0, nan=0.0)
    x = scene["x"].values
    west = box(x[0] - 15, 4e6, x[31] + 15, 6e6)
    east = box(x[32] - 15, 4e6, x[-1] + 15, 6e6)
    polygons = gpd.GeoDataFrame({"label": ["west", "east"]}, geometry=[west, east], crs="EPSG:32633").to_crs(4326)
    ds = TileDataset.from_scenes(scene, tile=16, labels=polygons, progress=False)
    expected = [["west"] if c < 32 else ["east"] for c in ds.index["col"]]
    assert list(map(list, ds.index["labels"])) == expected
    straddling = TileDataset.from_scenes(scene, tile=16, overlap=8, labels=polygons, label_rule="fraction",
                                         progress=False)
    both = straddling.index[straddling.index["col"] == 24]
    assert all(sorted(v) == ["east", "west"] for v in both["labels"])


def test_bigearthnet_multi_label_json_sidecars():
    folder = require_data("sar", "bigearthnet_s1")
    ds = TileDataset.from_scenes(str(folder / "**" / "*.tif"), tile=40, band_files=("VV", "VH"), labels="json",
                                 units="dB", progress=False)
    patches = list(folder.rglob("*_labels_metadata.json"))
    assert ds.index["scene"].nunique() == len(patches) >= 6 and ds.bands == ["VV", "VH"]
    for scene_id, labels in ds.index.groupby("scene")["labels"].first().items():
        (sidecar,) = folder.rglob(f"{scene_id}_labels_metadata.json")
        assert list(labels) == sorted(json.loads(sidecar.read_text())["labels"])
    assert ds.labels().shape == (len(ds), len(ds.classes)) and (ds.labels().sum(1) >= 1).all()
    assert len(set(ds.index["crs"])) > 1  # several UTM zones in one collection
    model = geodiff.fit(ds, train_steps=1, batch_size=4, **TINY)
    assert model.crs is None and len(model.summary["scenes"]) == len(patches)
    assert model.coefficients.meta["scene"] == list(ds.index["scene"])
    synth = model.sample_scene(1, like=ds.members[ds.index["scene"][0]].open(), sample_steps=2)
    assert synth.rio.crs == ds.members[ds.index["scene"][0]].open().rio.crs
    # Multi-label conditioning: a set of classes per tile, embedded multi-hot.
    conditional = geodiff.fit(ds, train_steps=2, batch_size=4, conditional=True, **TINY)
    assert conditional.multi_label and conditional.classes == ds.classes
    first = list(ds.index["labels"][0])
    tiles = conditional.sample_tiles(3, labels=tuple(first), guidance=1.0, sample_steps=2, progress=False)
    assert list(tiles["label"].values) == ["|".join(first)] * 3
    drawn = tiles.attrs["coefficients"]["meta"]["labels"]
    assert all(set(first) <= set(have) for have in drawn)  # ranges of tiles with those classes
    with pytest.raises(GeodiffError, match="unknown class"):
        conditional.sample_tiles(1, labels=("Sea", "not a class"), sample_steps=2, progress=False)


# -- training from the stream ------------------------------------------------------------------


def _trainer(seed=0, workers=0):
    net = UNet.from_preset("tiny", 1, attention_resolutions=(), seed=seed)
    config = TrainConfig(train_steps=3, batch_size=4, seed=seed, progress=False, log_every=1, num_workers=workers)
    return Trainer(net, NoiseSchedule("sigmoid", 100), config, device="cpu")


def test_training_from_the_stream_equals_training_from_the_same_tiles_in_memory():
    ds = TileDataset.from_scenes([_scene(0), _scene(1)], tile=16, progress=False)
    streamed, in_memory = _trainer(), _trainer()
    streamed.fit(ds)
    in_memory.fit(ds.to_tensor())
    assert [r["loss"] for r in streamed.history] == [r["loss"] for r in in_memory.history]
    for a, b in zip(streamed.model.parameters(), in_memory.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_dataloader_workers_read_the_same_batches():
    ds = TileDataset.from_scenes([_scene(0), _scene(1)], tile=16, progress=False)
    alone, workers = _trainer(), _trainer(workers=2)
    alone.fit(ds)
    workers.fit(ds)
    assert [r["loss"] for r in alone.history] == [r["loss"] for r in workers.history]


def test_opera_630_files_as_dual_polarisation_scenes():
    folder = require_data("sar", "opera_rtc_s1_santa_barbara")
    model = geodiff.fit(str(folder / "*" / "*.tif"), tile=32, train_steps=2, batch_size=4, band_files=("VV", "VH"),
                        scaler=Scaler(db=True), val_fraction=0.1, **TINY)
    scenes = model.summary["scenes"]
    assert len(scenes) == 315 and all(len(s["sources"]) == 2 for s in scenes)
    assert model.bands == ["VV", "VH"] and model.network.config["in_channels"] == 2
    assert sum(s["train_tiles"] for s in scenes) == model.summary["tiles"]
    val = [s for s in scenes if s["val_tiles"]]
    assert val and all(s["train_tiles"] == 0 for s in val)
    assert model.crs is not None  # all bursts share UTM 11N


def test_mexico_city_stack_trains_as_thirty_scenes():
    folder = require_data("insar", "mexico_city_cropA")
    stack = geodiff.open_stack(sorted(folder.glob("*_unw.tif")), nodata=0, units="rad")
    model = stack.diffusion.fit(tile=16, train_steps=2, **TINY)  # the accessor on a stack is the same fit
    assert len(model.summary["scenes"]) == stack.sizes["time"] == 30
    with pytest.raises(GeodiffError, match="one grid"):
        stack.diffusion.sample(1, model=model)
    one = stack.isel(time=0)
    assert stack.isel(time=0).diffusion.sample(1, model=model, sample_steps=2).shape == (1, *one.shape)
    assert model.network.config["in_channels"] == 1 and model.units == "rad"


def test_a_model_does_not_depend_on_the_accessor_that_fitted_it():
    scene = _scene(0)
    model = scene.diffusion.fit(tile=16, train_steps=1, **TINY)
    assert scene.diffusion.model is model
    derived = scene + 0
    with pytest.raises(GeodiffError, match="pass the model fit returned"):
        derived.diffusion.sample(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = derived.diffusion.sample(1, model=model, sample_steps=2).compute()
    assert out.shape == (1, *scene.shape)


def test_cli_trains_on_several_files_and_writes_the_tile_index(tmp_path, capsys):
    from geodiff.cli import main

    folder = require_data("sar", "opera_rtc_s1_santa_barbara")
    dates = sorted(p.name for p in folder.iterdir())
    argv = ["train", str(folder / dates[0] / "*.tif"), str(folder / dates[1] / "*.tif"), "--band-files", "VV", "VH",
            "--db", "--tile", "32", "--train-steps", "1", "--preset", "tiny", "--batch-size", "2",
            "--val-fraction", "0.2", "--out", str(tmp_path / "model"), "--index", str(tmp_path / "tiles.parquet")]
    assert main(argv) == 0
    index = gpd.read_parquet(tmp_path / "tiles.parquet")
    assert index["scene"].nunique() == 30 and set(index["split"]) == {"train", "val"}
    model = geodiff.load_model(tmp_path / "model")
    assert len(model.summary["scenes"]) == 30 and model.bands == ["VV", "VH"]
    assert model.summary["tiles"] == int((index["split"] == "train").sum())
    assert main(["train", str(tmp_path / "none-*.tif"), "--out", str(tmp_path / "m2")]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_a_warm_cache_reads_no_file_and_a_small_cache_stays_within_its_budget(tmp_path, monkeypatch):
    paths = [geodiff.to_geotiff(_scene(i), tmp_path / f"s{i}.tif")[0] for i in range(3)]
    ds = TileDataset.from_scenes([str(p) for p in paths], tile=16, progress=False)
    first = ds.to_tensor()
    def no_opening(self):
        raise AssertionError(f"{self.paths} was opened again")

    monkeypatch.setattr(geodiff.collection._Opener, "__call__", no_opening)
    torch.testing.assert_close(ds.to_tensor(), first, rtol=0, atol=0)
    monkeypatch.undo()
    tiny = TileDataset.from_scenes([str(p) for p in paths], tile=16, progress=False)
    tiny._cache.max_bytes = 48 * 64 * 4  # one scene's chunk
    torch.testing.assert_close(tiny.to_tensor(), first, rtol=0, atol=0)
    assert tiny._cache._bytes <= tiny._cache.max_bytes and len(tiny._cache._chunks) == 1


def test_the_fit_config_is_data_that_trains_the_same_model_again(tmp_path):
    scenes = [_scene(0), _scene(1)]
    model = geodiff.fit(scenes, tile=16, train_steps=2, scaler=Scaler("robust"), augment=Augment(flips=True),
                        val_fraction=0.5, ema_decay=0.99, **TINY)
    config = geodiff.load_model(model.save(tmp_path / "m")).fit_config
    assert config["scaler"]["method"] == "robust" and config["augment"]["flips"] and config["ema_decay"] == 0.99
    again = geodiff.fit(scenes, **config, progress=False)
    assert again.model_id == model.model_id
    built = TileDataset.from_scenes(scenes, tile=16, overlap=8, max_nodata=0.3, progress=False)
    recorded = geodiff.fit(built, train_steps=1, **TINY).fit_config
    assert (recorded["tile"], recorded["overlap"], recorded["max_nodata"]) == ((16, 16), 8, 0.3)


def test_a_class_conditional_model_samples_the_classes_asked_for_with_guidance():
    a = _scene(0).rename("a").assign_attrs(label="sea")
    b = _scene(1).rename("b").assign_attrs(label="land")
    model = geodiff.fit([a, b], tile=16, train_steps=2, labels="attrs", conditional=True, **TINY)
    assert model.classes == ["land", "sea"] and model.network.config["num_classes"] == 2
    sea = model.sample_tiles(2, labels="sea", sample_steps=2, seed=0, progress=False)
    assert list(sea["label"].values) == ["sea", "sea"] and sea.attrs["guidance"] == 0.0
    land = model.sample_tiles(2, labels=["land", 0], sample_steps=2, seed=0, progress=False)
    assert not np.allclose(sea.values, land.values)  # the label reaches the network
    guided = model.sample_tiles(2, labels="sea", guidance=3.0, sample_steps=2, seed=0, progress=False)
    assert not np.allclose(guided.values, sea.values)
    with pytest.raises(GeodiffError, match="unknown class"):
        model.sample_tiles(1, labels="ice", sample_steps=2, progress=False)
    with pytest.raises(GeodiffError, match="one class per sample"):
        model.sample_tiles(1, labels=[["sea", "land"]], sample_steps=2, progress=False)
    with pytest.raises(GeodiffError, match="weight >= 0"):
        model.sample_tiles(1, labels="sea", guidance=-1.0, sample_steps=2, progress=False)
    assert not model.multi_label and set(sea.attrs["coefficients"]["meta"]["scene"]) == {"a"}  # sea ranges
    with pytest.raises(GeodiffError, match="conditional=True needs labels"):
        geodiff.fit([a, b], tile=16, train_steps=1, conditional=True, **TINY)


def test_guidance_moves_the_prediction_to_uncond_plus_one_plus_w_times_the_difference():
    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.conditions import Conditions
    from geodiff.diffusion.samplers import Denoiser

    schedule = NoiseSchedule("cosine", 50)

    def model_fn(x, t, y):  # class c shifts the prediction by c; the null class (2) by 10
        return x * 0 + torch.where(y == 2, 10.0, y.float())[:, None, None, None]

    x = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    conditions = Conditions(labels=torch.tensor([0, 1]), guidance=2.0, null_label=2)
    out = Denoiser(model_fn, schedule, torch.arange(50), prediction="eps", conditions=conditions)(x, 10)
    expected = 10 + 3 * (torch.tensor([0.0, 1.0]) - 10)
    torch.testing.assert_close(out.eps[:, 0, 0, 0], expected.double())
