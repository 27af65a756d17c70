"""Super-resolution: low-resolution training pairs, the finer grid, the conditioning field, upsampling (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import geodiff
from geodiff.errors import GeodiffError, SceneError
from geodiff.tile_dataset import TileDataset
from geodiff.tiling.augment import area_mean, coarsened
from geodiff.upsampling import fine_template, interpolated
from tests.test_collection import TINY, _scene


def test_area_mean_is_xarrays_block_mean_in_linear_power_for_decibels():
    rng = np.random.default_rng(0)
    values = rng.normal(-15, 4, (2, 12, 8)).astype(np.float32)
    values[0, 0, 0] = np.nan
    da = xr.DataArray(values, dims=("band", "y", "x"))
    expected = da.coarsen(y=4, x=4).mean().values
    np.testing.assert_allclose(area_mean(values, 4), expected, rtol=1e-6)
    power = 10 * np.log10(xr.DataArray(10 ** (values / 10), dims=da.dims).coarsen(y=2, x=2).mean().values)
    np.testing.assert_allclose(area_mean(values, 2, db=True), power, rtol=1e-5)


def test_low_resolution_pairs_share_the_coarse_tiles_coefficients():
    scene = _scene(0, shape=(48, 64), nan=0.02)
    ds = TileDataset.from_scenes(scene, tile=16, progress=False).with_low_res(4)
    tiles, low = ds.__getitems__([0, 3])
    assert tiles.shape == (2, 1, 16, 16) and low.shape == (2, 1, 4, 4)
    # Min-max of the coarse tile: it spans [-1, 1]; the fine tile, scaled alike, reaches beyond.
    torch.testing.assert_close(low.amin((1, 2, 3)), torch.full((2,), -1.0))
    torch.testing.assert_close(low.amax((1, 2, 3)), torch.full((2,), 1.0))
    raw = ds.raw(3)
    np.testing.assert_allclose(np.nanmin(area_mean(raw, 4)), np.nanmin(coarsened(
        xr.DataArray(raw[0], dims=("y", "x")), 4).values), rtol=1e-6)
    assert tiles[1].abs().max() > 1.0
    with pytest.raises(GeodiffError, match="split"):
        ds.with_low_res(3)


def test_the_fine_grid_is_the_coarse_transform_with_smaller_pixels_and_the_mask_repeated():
    fine_real = _scene(1, shape=(40, 64), nan=0.0)
    coarse = coarsened(fine_real, 4)
    coarse = coarse.where(~((coarse["x"] > coarse["x"][5]) & (coarse["y"] > coarse["y"][5])))
    fine = fine_template(coarse, 4)
    np.testing.assert_allclose(fine["x"].values, fine_real["x"].values)
    np.testing.assert_allclose(fine["y"].values, fine_real["y"].values)
    assert fine.rio.transform() == fine_real.rio.transform() and fine.rio.crs == fine_real.rio.crs
    np.testing.assert_array_equal(np.isnan(fine.values), np.isnan(coarse.values).repeat(4, 0).repeat(4, 1))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_the_interpolated_field_is_torchs_resize_of_the_whole_scene_whatever_the_chunks(mode):
    rng = np.random.default_rng(2)
    coarse = xr.DataArray(rng.gamma(2.0, 0.05, (2, 20, 26)).astype(np.float32), dims=("band", "y", "x"))
    scaler = geodiff.scaling.Scaler(db=True)
    chunked = interpolated(coarse.chunk({"y": 7, "x": 9}), 2, scaler, mode=mode).values
    whole = torch.nn.functional.interpolate(torch.from_numpy(10 * np.log10(coarse.values))[None], scale_factor=2,
                                            mode=mode, align_corners=False)[0].numpy()
    np.testing.assert_allclose(10 * np.log10(chunked), whole, rtol=1e-5, atol=1e-4)


@pytest.fixture(scope="module")
def upsampler():
    return geodiff.fit(_scene(0, shape=(64, 96), nan=0.0), tile=16, train_steps=3, upsample=2, **TINY)


def test_upsampling_gives_lazy_deterministic_fine_scenes_on_the_exact_grid(upsampler):
    assert upsampler.upsample_factor == 2 and upsampler.network.config["cond_channels"] == 1
    assert upsampler.summary["pixel_size"] == [30.0, 30.0] and upsampler.fit_config["upsample"] == 2
    real = _scene(3, shape=(48, 64), nan=0.05)
    coarse = coarsened(real, 2)
    fine = upsampler.upsample(coarse, 2, sample_steps=2, block=32, seed=1)
    assert fine.chunks is not None and fine.shape == (2, 48, 64)
    assert fine.rio.transform() == real.rio.transform() and fine.rio.crs == real.rio.crs
    values = fine.values
    np.testing.assert_array_equal(np.isnan(values[0]), np.isnan(coarse.values).repeat(2, 0).repeat(2, 1))
    np.testing.assert_array_equal(upsampler.upsample(coarse, 2, sample_steps=2, block=32, seed=1).values, values)
    assert fine.attrs["upsample_factor"] == 2 and fine.attrs["coefficients"] == "location"
    # The coarse scene reaches the network: another coarse scene, another fine one, same seed.
    other = upsampler.upsample(coarse * 0.5 + coarse.mean(), 2, sample_steps=2, block=32, seed=1).values
    assert not np.allclose(np.nan_to_num(other), np.nan_to_num(values))


def test_the_two_stage_pipeline_samples_coarse_scenes_and_upsamples_each(upsampler):
    coarse_grid = coarsened(_scene(4, shape=(64, 64), nan=0.0), 2)
    coarse_model = geodiff.fit(coarsened(_scene(5, shape=(64, 96), nan=0.0), 2), tile=16, train_steps=2, **TINY)
    fine = upsampler.upsample(coarse_model, 2, like=coarse_grid, sample_steps=2, block=32,
                              coarse_options={"sample_steps": 2})
    assert fine.shape == (2, 64, 64) and fine.attrs["coarse_model_id"] == coarse_model.model_id
    assert fine.rio.transform() == coarse_grid.rio.transform() * __import__("affine").Affine.scale(0.5)
    assert np.isfinite(fine.values).all() and not np.allclose(fine.values[0], fine.values[1])


def test_bad_upsampling_requests_are_refused_before_any_work(upsampler):
    coarse = coarsened(_scene(3, shape=(48, 64), nan=0.0), 2)
    with pytest.raises(GeodiffError, match="upsamples by 2, not 4"):
        upsampler.upsample(coarse, factor=4)
    with pytest.raises(SceneError, match="pixels are 120"):
        upsampler.upsample(coarsened(coarse, 2))
    with pytest.raises(SceneError, match="smaller than the model's"):
        upsampler.upsample(coarse.isel(y=slice(0, 6)))
    with pytest.raises(GeodiffError, match="model.upsample"):
        upsampler.sample_scene(1, like=coarse)
    plain = geodiff.fit(coarse, tile=16, train_steps=1, **TINY)
    with pytest.raises(GeodiffError, match="does not upsample"):
        plain.upsample(coarse)
    with pytest.raises(GeodiffError, match="two-stage"):
        upsampler.upsample(coarse, like=coarse)


def test_a_saved_upsampling_model_loads_and_upsamples_the_same(upsampler, tmp_path):
    coarse = coarsened(_scene(3, shape=(48, 64), nan=0.0), 2)
    again = geodiff.load_model(upsampler.save(tmp_path / "sr"))
    assert again.upsample_factor == 2 and again.summary["pixel_size"] == upsampler.summary["pixel_size"]
    np.testing.assert_array_equal(again.upsample(coarse, sample_steps=2, block=32).values,
                                  upsampler.upsample(coarse, sample_steps=2, block=32).values)


def test_a_residual_model_learns_the_tile_minus_its_resized_condition_and_adds_it_back():
    from geodiff.diffusion import NoiseSchedule, TrainConfig, Trainer
    from geodiff.diffusion.conditions import Conditions
    from geodiff.diffusion.unet import UNet

    net = UNet.from_preset("tiny", 1, cond_channels=1, attention_resolutions=(), seed=0)
    trainer = Trainer(net, NoiseSchedule("sigmoid", 100), TrainConfig(train_steps=1, cond_residual=True,
                                                                      progress=False), device="cpu")
    x0, low = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 8, 8)
    expected = x0 - torch.nn.functional.interpolate(low, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(trainer._target(x0, low), expected)
    model = geodiff.fit(_scene(0, shape=(64, 96), nan=0.0), tile=16, train_steps=2, upsample=2, cond_residual=True,
                        **TINY)
    assert model.cond_residual
    conditions = Conditions(image=torch.from_numpy(np.full((2, 1, 8, 8), 0.5, np.float32)))
    shifted = Conditions(image=conditions.image + 1.0)
    a = model.generate(2, sample_steps=2, conditions=conditions, clip=None)
    b = model.generate(2, sample_steps=2, conditions=shifted, clip=None)
    # The residual the network makes moves with its input, but the added image moves b by 1 exactly
    # where the network's own change is small: the mean shift is about 1.
    assert np.mean(b - a) == pytest.approx(1.0, abs=0.5)
    fine = model.upsample(coarsened(_scene(3, shape=(48, 64), nan=0.0), 2), sample_steps=2, block=32)
    assert np.isfinite(fine.values).all()


def test_consistent_upsampling_keeps_the_coarse_scene_as_its_block_means(upsampler):
    coarse = coarsened(_scene(3, shape=(48, 64), nan=0.0), 2)
    fine = upsampler.upsample(coarse, 2, sample_steps=3, block=32)
    np.testing.assert_allclose(coarsened(fine.isel(sample=1, drop=True), 2).values, coarse.values, rtol=1e-4,
                               atol=1e-3)
    free = upsampler.upsample(coarse, 2, sample_steps=3, block=32, consistent=False)
    assert np.abs(coarsened(free.isel(sample=1, drop=True), 2).values - coarse.values).max() > 0.1
    assert fine.attrs["consistent"] == 1 and free.attrs["consistent"] == 0


def test_the_projection_rescales_power_blocks_and_leaves_cut_cells_alone():
    from geodiff.consistency import block_mean_projection
    from geodiff.scaling import Scaler

    scaler = Scaler(db=True)
    rng = np.random.default_rng(0)
    target = np.repeat(np.repeat(rng.gamma(2.0, 0.1, (1, 4, 5)), 2, -2), 2, -1)[:, 1:, :]  # first row cut
    loc, scale = np.full((1, 1, 7, 10), -10.0), np.full((1, 1, 7, 10), 5.0)
    project = block_mean_projection(target, loc, scale, scaler, 2, (1, 0))
    x0 = torch.from_numpy(rng.uniform(-1, 1, (1, 1, 7, 10)))
    out = scaler.inverse_field(project(x0).numpy(), loc, scale)[0, 0]
    np.testing.assert_allclose(out[1:].reshape(3, 2, 5, 2).mean((1, 3)), target[0, 1::2, ::2], rtol=1e-9)
    np.testing.assert_allclose(out[0], scaler.inverse_field(x0.numpy(), loc, scale)[0, 0, 0])  # a cut cell
    assert (out > 0).all()


def test_a_strength_starts_from_bicubic_and_stays_near_it_when_small(upsampler):
    coarse = coarsened(_scene(3, shape=(48, 64), nan=0.0), 2)
    cubic = interpolated(coarse, 2, upsampler.scaler, mode="bicubic").values
    common = {"sample_steps": 10, "block": 32, "consistent": False}
    near = upsampler.upsample(coarse, 2, strength=0.05, **common)
    far = upsampler.upsample(coarse, 2, **common)
    assert near.attrs["strength"] == 0.05 and near.attrs["sampler"] == "ddpm" and "bicubic" in near.attrs["start_from"]
    assert near.attrs["start"] == round(0.05 * (upsampler.schedule.timesteps - 1))
    # A briefly trained network's x_0 estimates are far from the data; from pure noise they are
    # all there is, from bicubic at 5 % of the noise they move it little.
    off = {name: float(np.abs(da.values - cubic).mean()) for name, da in (("near", near), ("far", far))}
    assert off["near"] < 0.5 * off["far"], off
    # One step below 5 %: DDPM's last step adds no noise, so the samples are one x_0 estimate.
    np.testing.assert_allclose(near.values[0], near.values[1], atol=1e-5)
    steps = upsampler.upsample(coarse, 2, strength=0.5, **common).values
    assert np.abs(steps[0] - steps[1]).mean() > 0.1 * np.abs(steps[0] - cubic).mean()
    for strength in (0, 1.5, "0.1"):
        with pytest.raises(GeodiffError, match="strength"):
            upsampler.upsample(coarse, strength=strength)
    with pytest.raises(GeodiffError, match="sets observed itself"):
        upsampler.upsample(coarse, observed=coarse)
