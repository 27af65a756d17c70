"""DiffusionModel and scene sampling: laziness, seeding, masks, georeferencing, persistence."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import xarray as xr

import geodiff
import geodiff.recipe
from geodiff.errors import CheckpointError, GeodiffError, SceneError
from geodiff.model import DiffusionModel
from geodiff.scaling import Scaler
from geodiff.scene_blocks import block_sizes
from geodiff.tiling import TileGrid, nodata_filter, select


def untrained_model(scene, tile=16, seed=0, preset="tiny"):
    """A model with random (not zero) output weights, measured on ``scene``'s tiles."""
    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.unet import UNet

    torch.manual_seed(seed)
    channels = scene.sizes.get("band", 1)
    net = UNet.from_preset(preset, channels)
    with torch.no_grad():
        net.output.weight.normal_(0, 0.05)
    grid = TileGrid.from_scene(scene, tile)
    tiles = select(grid.stack(scene), nodata_filter(grid.stack(scene)))
    scaler = Scaler("minmax")
    bands = [str(b) for b in scene["band"].values] if "band" in scene.dims else None
    return DiffusionModel(network=net.eval(), schedule=NoiseSchedule("cosine", 100), scaler=scaler,
                          coefficients=scaler.fit(tiles), tile=(tile, tile), bands=bands,
                          units=scene.attrs.get("units"), crs=scene.rio.crs.to_wkt())


@pytest.fixture(scope="module")
def velocity():
    from tests.conftest import require_data

    return geodiff.open_scene(require_data("insar", "campi_flegrei") / "vel.tif")


@pytest.fixture(scope="module")
def model(velocity):
    return untrained_model(velocity)


class CountingNetwork(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0
        self.config, self.learn_sigma = net.config, net.learn_sigma

    def forward(self, x, t):
        self.calls += 1
        return self.net(x, t)


def test_scene_sample_is_lazy_one_chunk_per_tile_and_local(velocity, model):
    counting = CountingNetwork(model.network)
    m = dataclasses.replace(model, network=counting)
    synth = velocity.diffusion.sample(n=2, model=m, sample_steps=5, method="tiles")
    assert counting.calls == 0
    assert synth.dims == ("sample", "y", "x") and synth.shape == (2, *velocity.shape)
    rows = -(-velocity.sizes["y"] // 16)
    cols = -(-velocity.sizes["x"] // 16)
    assert synth.data.numblocks == (1, rows, cols)
    window = synth.isel(y=slice(20, 30), x=slice(36, 46)).values  # inside tile (1, 2)
    assert counting.calls == 5  # one tile: 5 steps, both samples in one batch
    assert np.isfinite(window).any()


def test_fused_scene_is_lazy_one_chunk_per_block_and_computes_only_what_a_block_needs(velocity, model):
    """Blocks of 2 x 2 tiles (32 px): a window inside block (0, 0) runs that block alone; one in
    block (1, 1) runs it and the three blocks it continues."""
    counting = CountingNetwork(model.network)
    m = dataclasses.replace(model, network=counting)
    synth = velocity.diffusion.sample(n=2, model=m, sample_steps=3, block=32, batch_size=1000)
    assert counting.calls == 0
    rows, cols = -(-velocity.sizes["y"] // 32), -(-velocity.sizes["x"] // 32)
    assert synth.data.numblocks == (1, rows, cols) and synth.attrs["method"] == "fused"
    # A task per block and one for its chunk, besides the model and the coefficient nodes: the
    # scheduler's state of a GRD grid's 6,666 blocks is what grows with the scene.
    assert len(synth.data.__dask_graph__().layers[synth.data.name]) == 2 * rows * cols + 2
    synth.isel(y=slice(2, 6), x=slice(2, 6)).compute()
    assert counting.calls == 3  # one network call per step holds all windows of both samples
    counting.calls = 0
    synth.isel(y=slice(40, 44), x=slice(40, 44)).compute()
    assert counting.calls == 3 * 4


def test_a_block_task_hands_on_strips_that_own_their_pixels(velocity, model):
    """A strip that were a view of its block would keep the block's whole canvas trajectory
    alive until the last neighbour had read it: a row of trajectories on a wide scene."""
    import dask

    synth = velocity.diffusion.sample(n=1, model=model, sample_steps=2, block=32)
    graph = synth.data.__dask_graph__()
    key = next(k for k in graph if isinstance(k, tuple) and k[0].endswith("-block") and k[1:] == (0, 0))
    sampled = dask.get(graph, key)
    strips = [sampled.bottom, sampled.right, sampled.corner]
    assert all(s is not None for s in strips)
    for part in [p for s in strips for p in (s.values, s.states, s.band) if p is not None]:
        assert part.base is None and part.flags.owndata
    assert sampled.bottom.states.shape[0] == 2 and sampled.bottom.states.shape[-2] < 32


@pytest.mark.parametrize("length, block, tile", [(25_788, 256, 32), (16_685, 256, 32), (300, 64, 32), (70, 64, 32),
                                                 (128, 64, 32), (50, 64, 32)])
def test_blocks_are_equal_as_zarr_chunks_must_be_and_the_last_holds_a_tile(length, block, tile):
    sizes = block_sizes(length, block, tile)
    assert sum(sizes) == length and max(sizes) <= block
    assert len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0]
    assert len(sizes) == 1 or sizes[-1] >= tile
    bigger = sizes[0] + 1  # the largest such size: one pixel more leaves a last block under a tile
    assert len(sizes) == 1 or bigger > block or 0 < length % bigger < tile


def test_same_seed_same_output_whatever_is_computed(velocity, model):
    a = velocity.diffusion.sample(n=2, model=model, sample_steps=4, seed=3)
    whole = a.values
    part = velocity.diffusion.sample(n=2, model=model, sample_steps=4, seed=3).isel(y=slice(50, 90), x=slice(100, 160)).values
    np.testing.assert_array_equal(part, whole[:, 50:90, 100:160])
    other = velocity.diffusion.sample(n=2, model=model, sample_steps=4, seed=4).values
    assert not np.allclose(np.nan_to_num(other), np.nan_to_num(whole))


def test_output_keeps_grid_mask_units_and_provenance(velocity, model, tmp_path):
    synth = velocity.diffusion.sample(n=1, model=model, sample_steps=3, seed=0)
    assert synth.rio.crs == velocity.rio.crs
    assert synth.rio.transform() == velocity.rio.transform()
    np.testing.assert_array_equal(synth.x.values, velocity.x.values)
    values = synth.values[0]
    np.testing.assert_array_equal(np.isnan(values), np.isnan(velocity.values))
    assert synth.attrs["units"] == "mm/yr" and synth.attrs["model_id"] == model.model_id
    assert synth.attrs["sampler"] == geodiff.recipe.SAMPLER and synth.attrs["sample_steps"] == 3 and synth.attrs["seed"] == 0
    assert synth.attrs["timestep_spacing"] == geodiff.recipe.TIMESTEP_SPACING
    assert synth.attrs["normalisation"] == "minmax"
    per_tile = synth.attrs["coefficients_per_tile"]
    assert len(per_tile["row"]) == len(TileGrid.from_scene(velocity, 16, edge="pad"))
    assert synth.attrs["method"] == "fused" and synth.attrs["stride"] == [8, 8] and synth.attrs["block"] == [128, 128]
    # Arrays in memory (a GRD grid has half a million tiles), JSON in the store, exactly.
    assert isinstance(per_tile["loc"], np.ndarray)
    written = xr.open_zarr(geodiff.to_zarr(synth, tmp_path / "s.zarr", progress=False))
    stored = written["synthetic"].attrs["coefficients_per_tile"]
    np.testing.assert_array_equal(np.array(stored["loc"], dtype=float), per_tile["loc"])
    np.testing.assert_array_equal(stored["row"], per_tile["row"])


def test_location_coefficients_reproduce_each_tiles_range(velocity, model):
    """Min-max coefficients measured at each location map [-1, 1] back onto the scene tile's range."""
    sampled = velocity.diffusion.sample(n=1, model=model, sample_steps=3, mask=False)
    synth, c = sampled.values[0], sampled.attrs["coefficients_per_tile"]
    row, col = c["row"][5], c["col"][5]
    real = velocity.values[row:row + 16, col:col + 16]
    loc, half = c["loc"][5][0], c["scale"][5][0]
    assert loc == pytest.approx((np.nanmax(real) + np.nanmin(real)) / 2)
    z = (synth[row:row + 16, col:col + 16] - loc) / half
    assert np.isfinite(z).all()


def test_all_nodata_tiles_are_never_generated(model):
    scene = geodiff.open_scene(_scene_with_empty_corner(), chunks=None)
    counting = CountingNetwork(model.network)
    m = dataclasses.replace(model, network=counting, units=None)
    synth = scene.diffusion.sample(n=1, model=m, sample_steps=2, method="tiles").values
    assert counting.calls == 2 * 3  # 4 tiles, one empty: 3 tiles x 2 steps
    assert np.isnan(synth[0, :16, :16]).all()


def test_all_nodata_blocks_are_never_generated_and_their_neighbours_generate_the_margin(model):
    values = np.random.default_rng(0).normal(size=(64, 64)).astype("float32")
    values[:32, :32] = np.nan
    scene = geodiff.open_scene(xr.DataArray(values, dims=("y", "x"), coords={"y": 1000.0 - 10 * np.arange(64),
                                            "x": 10.0 * np.arange(64)}).rio.write_crs("EPSG:32633"), chunks=None)
    counting = CountingNetwork(model.network)
    m = dataclasses.replace(model, network=counting, units=None)
    synth = scene.diffusion.sample(n=1, model=m, sample_steps=2, block=32, batch_size=1000).values
    assert counting.calls == 2 * 3  # 4 blocks, one empty: 3 blocks x 2 steps
    assert np.isnan(synth[0, :32, :32]).all() and np.isfinite(synth[0, 32:, 32:]).all()


def _scene_with_empty_corner():
    values = np.random.default_rng(0).normal(size=(32, 32)).astype("float32")
    values[:16, :16] = np.nan
    return xr.DataArray(values, dims=("y", "x"), coords={"y": 1000.0 - 10 * np.arange(32),
                                                        "x": 10.0 * np.arange(32)}).rio.write_crs("EPSG:32633")


def test_draw_coefficients_come_from_training_tiles(velocity, model):
    synth = velocity.diffusion.sample(n=2, model=model, sample_steps=2, coefficients="draw")
    used = np.array(synth.attrs["coefficients_per_tile"]["loc"]).ravel()
    assert set(used) <= set(model.coefficients.loc.ravel())


def test_sample_tiles_physical_units_on_a_template(velocity, model):
    like = velocity.isel(y=slice(0, 16), x=slice(0, 16))
    tiles = model.sample_tiles(3, sample_steps=3, seed=1, like=like, progress=False)
    assert tiles.dims == ("sample", "y", "x") and tiles.attrs["units"] == "mm/yr"
    assert tiles.rio.crs == velocity.rio.crs
    np.testing.assert_array_equal(tiles.y.values, like.y.values)
    np.testing.assert_array_equal(tiles.values, model.sample_tiles(3, sample_steps=3, seed=1, like=like,
                                                                   progress=False).values)


def test_renormalised_tiles_span_their_drawn_coefficients(model):
    tiles = model.sample_tiles(4, sample_steps=3, seed=2, progress=False, renormalise=True)
    drawn = model.coefficients.draw(4, seed=2)
    low, high = drawn.loc[:, 0] - drawn.scale[:, 0], drawn.loc[:, 0] + drawn.scale[:, 0]
    np.testing.assert_allclose(tiles.min(("y", "x")).values, low, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(tiles.max(("y", "x")).values, high, rtol=1e-5, atol=1e-4)
    assert tiles.attrs["renormalised"] == 1
    counting = CountingNetwork(model.network)
    global_model = dataclasses.replace(model, network=counting, scaler=Scaler("minmax", per_tile=False))
    with pytest.raises(GeodiffError, match="per-tile"):
        global_model.sample_tiles(2, sample_steps=3, progress=False, renormalise=True)
    assert counting.calls == 0  # refused before any network evaluation


def test_scene_tiles_are_renormalised_onto_their_locations_range(velocity, model):
    """With location coefficients a renormalised tile spans exactly the scene tile's min..max."""
    synth = velocity.diffusion.sample(n=1, model=model, sample_steps=3, seed=4, renormalise=True, mask=False,
                                      timestep_spacing="karras", method="tiles")
    assert synth.attrs["renormalised"] == 1 and synth.attrs["timestep_spacing"] == "karras"
    per_tile = synth.attrs["coefficients_per_tile"]
    loc, scale = np.array(per_tile["loc"]).ravel(), np.array(per_tile["scale"]).ravel()
    first = synth.isel(sample=0, y=slice(0, 16), x=slice(0, 16)).values
    assert np.nanmin(first) == pytest.approx(loc[0] - scale[0], abs=1e-3)
    assert np.nanmax(first) == pytest.approx(loc[0] + scale[0], abs=1e-3)
    with pytest.raises(GeodiffError, match="per-tile"):
        global_model = dataclasses.replace(model, scaler=Scaler("minmax", per_tile=False))
        velocity.diffusion.sample(n=1, model=global_model, sample_steps=3, renormalise=True, method="tiles")


def test_save_load_round_trip_and_integrity(model, tmp_path):
    model.save(tmp_path / "m")
    back = geodiff.load_model(tmp_path / "m")
    assert back.model_id == model.model_id
    assert back.tile == model.tile and back.units == model.units
    np.testing.assert_array_equal(back.coefficients.loc, model.coefficients.loc)
    for name, weight in model.network.state_dict().items():
        assert torch.equal(back.network.state_dict()[name], weight), name
    x = torch.randn(2, 1, 16, 16)
    t = torch.tensor([3, 50])
    # Loaded weights are channels-last, so convolutions round differently in the last bits.
    torch.testing.assert_close(back.network(x, t), model.network(x, t), rtol=1e-5, atol=1e-5)
    assert "DiffusionModel" in repr(back) and "mm/yr" in repr(back)

    (tmp_path / "m" / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a geodiff model"):
        geodiff.load_model(tmp_path / "m")
    with pytest.raises(CheckpointError, match="not a geodiff model folder"):
        geodiff.load_model(tmp_path / "nothing-here")


def test_tampered_weights_are_detected(model, tmp_path):
    other = untrained_model(_scene_with_empty_corner().fillna(0.0), seed=1)
    model.save(tmp_path / "a")
    other.save(tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").write_bytes((tmp_path / "b" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="do not match"):
        geodiff.load_model(tmp_path / "a")


def test_bad_requests(velocity, model):
    fresh = velocity.copy()
    with pytest.raises(GeodiffError, match="fit"):
        fresh.diffusion.sample(n=2)
    with pytest.raises(GeodiffError, match="positive"):
        velocity.diffusion.sample(n=0, model=model)
    two_bands = xr.concat([velocity, velocity], dim="band").assign_coords(band=["a", "b"])
    with pytest.raises(GeodiffError, match="1 band"):
        two_bands.diffusion.sample(n=1, model=model)
    with pytest.raises(GeodiffError, match="units"):
        velocity.assign_attrs(units="rad").diffusion.sample(n=1, model=model)
    empty = velocity * np.nan
    with pytest.raises(SceneError, match="all nodata"):
        empty.assign_attrs(units="mm/yr").diffusion.sample(n=1, model=model)


def test_scene_without_crs_samples_in_pixel_coordinates(model):
    from geodiff.io import GeoreferenceWarning

    bare = xr.DataArray(np.random.default_rng(1).normal(size=(20, 24)).astype("float32"), dims=("y", "x"),
                        attrs={"units": "mm/yr"})
    with pytest.warns(GeoreferenceWarning, match="no CRS"):
        scene = geodiff.open_scene(bare, chunks=None)
    with pytest.warns(GeoreferenceWarning, match="pixel grid"):
        synth = scene.diffusion.sample(n=1, model=model, sample_steps=2)
    assert synth.rio.crs is None
    np.testing.assert_array_equal(synth.x.values, np.arange(24))
    assert np.isfinite(synth.values).all()


def test_tile_larger_than_scene_at_fit():
    from geodiff.errors import TilingError

    small = _scene_with_empty_corner().isel(y=slice(0, 12))
    with pytest.raises(TilingError, match="larger than the scene"):
        small.diffusion.fit(tile=16, train_steps=1, preset="tiny", progress=False)


def test_tile_not_divisible_by_the_network_is_refused_before_training():
    from geodiff.errors import TilingError

    with pytest.raises(TilingError, match="multiple of 8"):
        _scene_with_empty_corner().diffusion.fit(tile=12, train_steps=1, preset="small", progress=False)


def _tiny_scene(size=32, seed=0):
    values = np.random.default_rng(seed).normal(size=(size, size)).astype("float32")
    return xr.DataArray(values, dims=("y", "x"), attrs={"units": "mm/yr"},
                        coords={"y": 1000.0 - 10 * np.arange(size), "x": 10.0 * np.arange(size)}).rio.write_crs("EPSG:32633")


def _close_but_for_rounding(actual, desired):
    """Equal up to 1e-3 of the samples' range (physical units), NaN where NaN."""
    np.testing.assert_allclose(actual, desired, rtol=0, atol=1e-3 * np.nanmax(np.abs(desired)))


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_samples_do_not_depend_on_batch_size_or_count(model, sampler):
    """Sample i depends on (seed, i) only: batching and n change nothing beyond float rounding."""
    # Convolutions round differently per batch size, and the first steps (abar ~ 0) amplify
    # float32 rounding into x_0: 1e-3 of the [-1, 1] range is rounding, a different draw is O(1).
    close = {"rtol": 0, "atol": 1e-3}
    runs = {bs: model.generate(16, sampler=sampler, sample_steps=6, seed=2, batch_size=bs) for bs in (1, 3, 16)}
    np.testing.assert_allclose(runs[1], runs[16], **close)
    np.testing.assert_allclose(runs[3], runs[16], **close)
    assert not np.allclose(runs[16][0], runs[16][1], **close)  # samples still differ from each other
    five = model.sample_tiles(5, sampler=sampler, sample_steps=6, seed=2, batch_size=2, progress=False)
    three = model.sample_tiles(3, sampler=sampler, sample_steps=6, seed=2, batch_size=3, progress=False)
    _close_but_for_rounding(five.values[:3], three.values)
    assert five.attrs["coefficients"]["loc"][:3] == three.attrs["coefficients"]["loc"]


@pytest.mark.parametrize("coefficients", ["location", "draw"])
def test_scene_samples_do_not_depend_on_batch_size_or_count(model, coefficients):
    scene = geodiff.open_scene(_tiny_scene(), chunks=None)
    def run(n, bs):
        return scene.diffusion.sample(n=n, model=model, sampler="ddpm", sample_steps=4, seed=5, batch_size=bs,
                                      coefficients=coefficients).values
    five = run(5, 16)
    _close_but_for_rounding(run(5, 1), five)
    _close_but_for_rounding(run(3, 2), five[:3])


@pytest.mark.parametrize("bad, match", [
    ({"sampler": "euler"}, "unknown sampler"),
    ({"sample_steps": 0}, "sample_steps"),
    ({"sample_steps": 101}, "100 timesteps"),
    ({"batch_size": 0}, "batch_size"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"n": 0}, "positive"),
    ({"timestep_spacing": "uniform"}, "unknown timestep spacing"),
])
def test_sampling_arguments_are_checked_when_the_call_is_made(velocity, model, bad, match):
    """Lazy scenes refuse bad arguments at the call, not when computed (the model has 100 timesteps)."""
    args = {"n": 2, "sampler": "ddim", "sample_steps": 3, "batch_size": 4, "seed": 0, **bad}
    counting = CountingNetwork(model.network)
    m = dataclasses.replace(model, network=counting)
    with pytest.raises(GeodiffError, match=match):
        velocity.diffusion.sample(model=m, **args)
    n = args.pop("n")
    with pytest.raises(GeodiffError, match=match):
        m.sample_tiles(n, progress=False, **args)
    with pytest.raises(GeodiffError, match=match):
        m.generate(n, **args)
    assert counting.calls == 0


@pytest.mark.parametrize("edit", [
    lambda c: c.update(units="rad"),
    lambda c: c["schedule"].update(timesteps=c["schedule"]["timesteps"] * 2),
    lambda c: c.update(tile=[32, 32]),
])
def test_an_edited_model_description_is_refused(model, tmp_path, edit):
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="edited"):
        geodiff.load_model(tmp_path / "m")


def test_the_training_summary_is_not_part_of_the_model_id(model, tmp_path):
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    config = json.loads(path.read_text())
    config["summary"]["note"] = "annotated by hand"
    path.write_text(json.dumps(config))
    assert geodiff.load_model(tmp_path / "m").model_id == model.model_id


def test_sample_tiles_shows_one_bar_over_all_batches(model, capsys):
    model.sample_tiles(5, sample_steps=3, batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert "sampling" in err and "9/9" in err  # 3 batches x 3 network calls


def test_fused_scenes_have_no_tile_seams_where_independent_tiles_do(velocity, model):
    """Even an untrained network shows the patchwork of independently sampled tiles, each
    rescaled on its own, at the tile period; fused windows in one normalised space do not."""
    from geodiff.metrics import seam_statistic

    tiles = velocity.diffusion.sample(n=2, model=model, sample_steps=6, method="tiles", mask=False).values
    fused = velocity.diffusion.sample(n=2, model=model, sample_steps=6, mask=False).values
    patchwork, coherent = seam_statistic(tiles), seam_statistic(fused)
    assert patchwork.period % 16 == 0 and patchwork.phase == 0
    assert coherent.statistic < patchwork.statistic - 0.05
    assert coherent.period % 16 or coherent.phase


def test_coefficient_field_is_bilinear_between_tile_centres_and_constant_beyond():
    from scipy.interpolate import RegularGridInterpolator

    from geodiff.scene_blocks import coefficient_field

    values = np.random.default_rng(2).normal(size=(3, 4, 2))
    centres_r, centres_c = np.array([7.5, 23.5, 39.5]), np.array([7.5, 23.5, 39.5, 55.5])
    field = coefficient_field(values, centres_r, centres_c, np.arange(48.0), np.arange(64.0))
    assert field.shape == (48, 64, 2)
    rr, cc = np.meshgrid(np.clip(np.arange(48.0), 7.5, 39.5), np.clip(np.arange(64.0), 7.5, 55.5), indexing="ij")
    for k in range(2):
        oracle = RegularGridInterpolator((centres_r, centres_c), values[..., k])
        np.testing.assert_allclose(field[..., k], oracle(np.stack([rr, cc], -1)), atol=1e-12)


def test_sample_scene_on_any_grid(model):
    from geodiff.io import GeoreferenceWarning

    template = xr.DataArray(np.zeros((40, 56), np.float32), dims=("y", "x"),
                            coords={"y": 4_000_000.0 - 30 * np.arange(40), "x": 500_000.0 + 30 * np.arange(56)})
    template = template.rio.write_crs("EPSG:32611")
    template[:8, :8] = np.nan
    synth = model.sample_scene(2, like=template, sample_steps=3, seed=1)
    assert synth.rio.crs == template.rio.crs and synth.rio.transform() == template.rio.transform()
    values = synth.values
    assert np.isnan(values[:, :8, :8]).all() and np.isfinite(values[:, 8:, 8:]).all()
    assert synth.attrs["coefficients"] == "draw"
    with pytest.warns(GeoreferenceWarning, match="no CRS"):
        model.sample_scene(1, like=template.drop_vars("spatial_ref"), sample_steps=2)
    with pytest.raises(SceneError, match="all nodata"):
        model.sample_scene(1, like=template * np.nan, sample_steps=2)
    ds = xr.Dataset({"vel": template})
    assert model.sample_scene(1, like=ds, sample_steps=2).shape == (1, 40, 56)


@pytest.mark.parametrize("bad, match", [
    ({"stride": 17}, "stride"),
    ({"stride": 0}, "stride"),
    ({"block": 16}, "at least two tiles"),
    ({"method": "mosaic"}, "method must be"),
    ({"renormalise": True}, "method='tiles' only"),
    ({"method": "tiles", "block": 64}, "method='fused' only"),
])
def test_fused_layouts_are_checked_when_the_call_is_made(velocity, model, bad, match):
    with pytest.raises(GeodiffError, match=match):
        velocity.diffusion.sample(n=1, model=model, sample_steps=2, **bad)


def test_grids_smaller_than_a_window_and_blocks_larger_than_memory_are_refused(model, monkeypatch):
    import geodiff.scene_blocks

    small = xr.DataArray(np.zeros((12, 40), np.float32), dims=("y", "x"),
                         coords={"y": np.arange(12.0)[::-1], "x": np.arange(40.0)}).rio.write_crs("EPSG:32633")
    with pytest.raises(GeodiffError, match="larger than the scene"):
        model.sample_scene(1, like=small, sample_steps=2)
    monkeypatch.setattr(geodiff.scene_blocks, "_available_memory", lambda: 10_000)
    with pytest.raises(GeodiffError, match="GiB available"):
        model.sample_scene(1, like=small.pad(y=(0, 40), constant_values=0.0).fillna(0.0), sample_steps=2)


def test_fused_draw_coefficients_are_a_smooth_field_of_training_sets(model):
    """Each tile takes a whole training set, with the training sets' marginal, and neighbouring
    tiles take similar ones (exponential correlation of 3 tiles: about 0.7 between neighbours)."""
    from scipy.stats import kstest, spearmanr

    from geodiff.sampling import _coefficient_field_draw

    grid = xr.DataArray(np.zeros((640, 640), np.float32), dims=("y", "x"),
                        coords={"y": np.arange(640.0)[::-1], "x": np.arange(640.0)})
    tiles = TileGrid.from_scene(grid, 16, edge="pad")
    field = _coefficient_field_draw(model, tiles, 4, seed=3)
    loc = field.loc.reshape(40, 40, 4)
    train = model.coefficients
    pairs = set(zip(train.loc[:, 0].tolist(), train.scale[:, 0].tolist()))
    assert set(zip(field.loc.ravel().tolist(), field.scale.ravel().tolist())) <= pairs
    assert kstest(loc.ravel(), train.loc[:, 0]).statistic < 0.2
    rho = spearmanr(loc[:, :-1].ravel(), loc[:, 1:].ravel()).statistic
    far = spearmanr(loc[:, :-20].ravel(), loc[:, 20:].ravel()).statistic
    assert rho > 0.5 and abs(far) < 0.2
    again = _coefficient_field_draw(model, tiles, 2, seed=3)
    np.testing.assert_array_equal(again.loc.reshape(40, 40, 2), loc[..., :2])  # sample i does not depend on n


@pytest.mark.parametrize("stride", [4, 12])
def test_fused_scenes_take_any_stride_and_stay_deterministic(velocity, model, stride):
    a = velocity.diffusion.sample(n=1, model=model, sample_steps=2, seed=2, block=48, stride=stride)
    whole = a.values
    part = a.isel(y=slice(40, 100), x=slice(90, 150)).values
    np.testing.assert_array_equal(part, whole[:, 40:100, 90:150])
    assert np.isfinite(whole[0][np.isfinite(velocity.values)]).all() and a.attrs["stride"] == [stride, stride]
