"""Scale conditioning: the standardised log scale, training pairs, and the scale each sample is made for."""

import numpy as np
import pytest
import torch
import xarray as xr

import geodiff
from geodiff.errors import GeodiffError
from geodiff.model import DiffusionModel
from geodiff.scaling import ScaleCondition, Scaler
from geodiff.tile_dataset import TileDataset
from tests.test_collection import TINY, _scene


def test_the_image_is_the_standardised_log_scale_and_zero_scales_stay_finite():
    rng = np.random.default_rng(0)
    scale = np.exp(rng.normal([0.0, 3.0], [1.0, 0.5], (200, 2)))
    scale[0, 0] = 0.0  # a constant tile
    condition = ScaleCondition.fit(scale)
    image = condition.image(scale)
    assert image.shape == (200, 2, 1, 1) and image.dtype == np.float32 and np.isfinite(image).all()
    np.testing.assert_allclose(image.mean(0).ravel(), 0.0, atol=1e-5)
    np.testing.assert_allclose(image.std(0).ravel(), 1.0, atol=1e-5)
    floor = 1e-3 * np.median(scale[1:, 0])
    logs = np.log(np.where(scale[:, 0] > 0, scale[:, 0], floor))
    np.testing.assert_allclose(image[:, 0, 0, 0], (logs - logs.mean()) / logs.std(), rtol=1e-5, atol=1e-5)
    per_pixel = np.broadcast_to(scale[:3, :, None, None], (3, 2, 4, 5))
    np.testing.assert_array_equal(condition.image(per_pixel), np.broadcast_to(image[:3], (3, 2, 4, 5)))
    assert ScaleCondition.from_config(condition.to_config()) == condition


def test_training_pairs_carry_each_tiles_own_min_max_scale():
    scene = _scene(0, shape=(48, 64), nan=0.0)
    ds = TileDataset.from_scenes(scene, tile=16, progress=False).with_scale_condition()
    tiles, images = ds.__getitems__([0, 5])
    assert tiles.shape == (2, 1, 16, 16) and images.shape == (2, 1, 1, 1)
    scales = [(np.nanmax(ds.raw(i)) - np.nanmin(ds.raw(i))) / 2 for i in range(len(ds))]
    logs = np.log(scales)
    expected = [(logs[i] - logs.mean()) / logs.std() for i in (0, 5)]
    np.testing.assert_allclose(images.ravel().numpy(), expected, rtol=1e-5)
    with pytest.raises(GeodiffError, match="per-tile scaler"):
        TileDataset.from_scenes(scene, tile=16, scaler=Scaler(per_tile=False), progress=False).with_scale_condition()
    with pytest.raises(GeodiffError, match="one image"):
        ds.with_low_res(2)


def test_fit_conditions_the_network_on_the_scale_and_refuses_a_second_image():
    scene = _scene(0, shape=(48, 64), nan=0.0)
    model = geodiff.fit(scene, tile=16, train_steps=2, scale_condition=True, **TINY)
    assert model.network.cond_channels == 1 and model.conditioning is None
    assert model.scale_condition == ScaleCondition.fit(model.coefficients.scale)
    assert model.summary["fit_config"]["scale_condition"] is True
    with pytest.raises(GeodiffError, match="one image"):
        geodiff.fit(scene, tile=16, train_steps=1, scale_condition=True, upsample=2, **TINY)
    with pytest.raises(GeodiffError, match="scale-conditioned"):
        model.generate(1, sample_steps=2)


def _conditioned(scene, tile=16):
    """An untrained scale-conditioned model measured on ``scene``'s tiles."""
    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.unet import UNet
    from geodiff.tiling import TileGrid, nodata_filter, select

    torch.manual_seed(0)
    grid = TileGrid.from_scene(scene, tile)
    tiles = select(grid.stack(scene), nodata_filter(grid.stack(scene)))
    scaler = Scaler("minmax")
    coefficients = scaler.fit(tiles)
    net = UNet.from_preset("tiny", 1, cond_channels=1, attention_resolutions=())
    return DiffusionModel(network=net.eval(), schedule=NoiseSchedule("cosine", 100), scaler=scaler,
                          coefficients=coefficients, tile=(tile, tile), units=scene.attrs.get("units"),
                          crs=scene.rio.crs.to_wkt(),
                          summary={"scale_condition": ScaleCondition.fit(coefficients.scale).to_config()})


class _Seen(torch.nn.Module):
    """The network, keeping every conditioning image it is given."""

    def __init__(self, net):
        super().__init__()
        self.net, self.images = net, []
        self.config, self.learn_sigma = net.config, net.learn_sigma

    def forward(self, x, t, cond=None):
        self.images.append(cond.clone())
        return self.net(x, t, cond=cond)


def _ramp_scene():
    """Amplitude growing from left to right: every tile has its own scale."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(32, 64)) * np.linspace(0.1, 10.0, 64)[None]
    return _scene(0, shape=(32, 64), nan=0.0).copy(data=values.astype(np.float32))


def test_sample_tiles_and_independent_tiles_are_made_for_the_scale_they_are_put_back_with():
    import dataclasses

    scene = _ramp_scene()
    model = _conditioned(scene)
    seen = _Seen(model.network)
    model = dataclasses.replace(model, network=seen)
    model.sample_tiles(3, sample_steps=2, seed=4, progress=False)
    drawn = model.coefficients.draw(3, seed=4).scale[:, 0]
    expected = model.scale_condition.image(drawn[:, None])[:, 0, 0, 0]
    for image in seen.images:
        np.testing.assert_allclose(image[:, 0].amin((1, 2)).numpy(), expected, rtol=1e-6)
        np.testing.assert_allclose(image[:, 0].amax((1, 2)).numpy(), expected, rtol=1e-6)

    seen.images.clear()
    scene.diffusion.sample(n=1, model=model, method="tiles", sample_steps=2).compute(scheduler="synchronous")
    tiles = scene.values.reshape(2, 16, 4, 16).transpose(0, 2, 1, 3).reshape(8, -1)
    own = model.scale_condition.image(((tiles.max(1) - tiles.min(1)) / 2)[:, None])[:, 0, 0, 0]
    seen_values = sorted({round(float(image.mean()), 4) for image in seen.images})
    np.testing.assert_allclose(seen_values, np.sort(own), atol=1e-4)


def test_fused_windows_see_the_scale_field_interpolated_between_tile_centres():
    from scipy.interpolate import RegularGridInterpolator

    scene = _ramp_scene()
    model = _conditioned(scene)
    images = []
    generate = DiffusionModel.generate

    def keeping(self, n, **options):
        images.append(options["conditions"].image.numpy())
        return generate(self, n, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DiffusionModel, "generate", keeping)
        scene.diffusion.sample(n=2, model=model, method="fused", sample_steps=2).compute(scheduler="synchronous")
    (image,) = images  # one block
    tiles = scene.values.reshape(2, 16, 4, 16).transpose(0, 2, 1, 3)
    scales = (tiles.max((2, 3)) - tiles.min((2, 3))) / 2
    stride = 8  # half a tile: the canvas reaches a stride past the scene on every side
    rows, cols = np.arange(-stride, 32 + stride, dtype=float), np.arange(-stride, 64 + stride, dtype=float)
    centres_r, centres_c = np.array([7.5, 23.5]), np.array([7.5, 23.5, 39.5, 55.5])
    rr, cc = np.meshgrid(np.clip(rows, 7.5, 23.5), np.clip(cols, 7.5, 55.5), indexing="ij")
    field = RegularGridInterpolator((centres_r, centres_c), scales)(np.stack([rr, cc], -1))
    assert image.shape == (2, 1, 48, 80)
    expected = model.scale_condition.image(np.broadcast_to(field, (2, 1, 48, 80)))
    np.testing.assert_allclose(image, expected, rtol=1e-5, atol=1e-5)


def test_a_scale_conditioned_model_keeps_its_condition_through_save_and_load(tmp_path):
    scene = _ramp_scene()
    model = _conditioned(scene)
    model.save(tmp_path / "m")
    again = geodiff.load_model(tmp_path / "m")
    assert again.scale_condition == model.scale_condition
    a = model.sample_tiles(2, sample_steps=2, seed=1, progress=False)
    b = again.sample_tiles(2, sample_steps=2, seed=1, progress=False)
    xr.testing.assert_allclose(a, b)
