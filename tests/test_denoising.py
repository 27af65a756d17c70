"""Denoising: physics-built pairs, paired conditioning, and restoring a noisy scene (issue 15)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import xarray as xr

import geodiff
from geodiff.denoising import LEVEL_MARGIN, denoise, denoising_pairs, fit_denoiser, start_step
from geodiff.errors import GeodiffError, SceneError
from geodiff.insar.phase import phase_to_displacement
from geodiff.sampling import sample_scene
from geodiff.tile_dataset import TileDataset
from tests.test_collection import TINY, _scene


def test_synthetic_pairs_add_geodiff_synths_atmosphere_ramp_and_noise_to_the_deformation():
    pairs = denoising_pairs(4, tile=32, seed=3)
    ref = geodiff.synth.dataset(4, like=geodiff.synth.template((32, 32), 100.0), seed=np.random.default_rng(3))
    np.testing.assert_allclose(pairs["clean"].values, ref["deformation"].values * 1000, rtol=1e-6)
    added = phase_to_displacement(ref["atmosphere"] + ref["ramp"] + ref["noise"]).values * 1000
    np.testing.assert_allclose(pairs["noisy"].values - pairs["clean"].values, added, rtol=1e-4, atol=1e-3)
    assert list(pairs["source"].values) == list(ref["source"].values) and pairs["noisy"].attrs["units"] == "mm"


def test_real_noise_pairs_take_demeaned_crops_of_the_stack():
    stack = xr.DataArray(np.arange(2 * 40 * 50, dtype=float).reshape(2, 40, 50), dims=("time", "y", "x"))
    pairs = denoising_pairs(5, tile=16, noise=stack, seed=0)
    for added in (pairs["noisy"] - pairs["clean"]).values:
        candidates = [(t, r, c) for t in range(2) for r in range(25) for c in range(35)
                      if np.allclose(stack.values[t, r:r + 16, c:c + 16] - stack.values[t, r:r + 16, c:c + 16].mean(),
                                     added, atol=1e-3)]
        assert len(candidates) >= 1
    with pytest.raises(GeodiffError, match="smaller than"):
        denoising_pairs(1, tile=64, noise=stack)


def test_paired_tiles_are_scaled_with_the_conditions_coefficients():
    clean, noisy = _scene(0, nan=0.0), _scene(1, nan=0.0) * 3
    ds = TileDataset.from_scenes(clean, tile=16, progress=False).with_condition(noisy.assign_attrs(clean.attrs))
    tiles, conds = ds.__getitems__([2])
    assert conds.amin() == -1 and conds.amax() == 1  # min-max of the noisy tile
    row, col = (int(v) for v in ds.index[["row", "col"]].iloc[2])
    window = noisy.values[row:row + 16, col:col + 16]
    lo, hi = window.min(), window.max()
    expected = -1 + 2 * (clean.values[row:row + 16, col:col + 16] - lo) / (hi - lo)
    np.testing.assert_allclose(tiles[0, 0].numpy(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(GeodiffError, match="one per scene"):
        ds.with_condition([noisy, noisy])


@pytest.fixture(scope="module")
def denoiser():
    return fit_denoiser(denoising_pairs(16, tile=32, seed=0), train_steps=3, batch_size=4, **TINY)


def test_denoising_a_scene_gives_the_mean_of_its_samples_on_the_scenes_grid(denoiser):
    assert denoiser.conditioning == "paired" and denoiser.noise["kind"] == "power"
    scene = denoising_pairs(1, tile=64, seed=7)["noisy"].isel(sample=0, drop=True)
    scene = scene.where(~((scene["x"] < scene["x"][10]) & (scene["y"] > scene["y"][20])))
    out = denoise(scene, denoiser, 3, sample_steps=50, samples=True, seed=1)
    np.testing.assert_allclose(out["denoised"].values, out["samples"].values.mean(0), rtol=1e-5, atol=1e-5)
    assert out["samples"].shape == (3, 64, 64) and np.isfinite(out["denoised"].values).all()
    assert out.rio.crs == scene.rio.crs and out["denoised"].attrs["units"] == "mm"
    assert (out["spread"].values > 1e-3 * float(scene.max() - scene.min())).mean() > 0.99
    assert out.attrs["start_from"] == "the observation, as it is"
    kept = denoise(scene, denoiser, 3, sample_steps=50, gaps="keep", seed=1)["denoised"].values
    np.testing.assert_array_equal(np.isnan(kept), np.isnan(scene.values))
    np.testing.assert_allclose(kept[np.isfinite(kept)], out["denoised"].values[np.isfinite(kept)], rtol=1e-5)


def test_the_start_is_the_training_noise_seen_through_the_scenes_own_scaling(denoiser):
    """The pairs' median noise in mm, divided by each tile's min-max half-range: a scene with a
    strong signal starts less noisy than a flat one, for the same noise in mm."""
    pairs = denoising_pairs(16, tile=32, seed=0)
    noisy, clean = pairs["noisy"].values.astype(np.float64), pairs["clean"].values
    std = np.median((noisy - clean).std((1, 2)))
    assert denoiser.summary["noise_std"] == pytest.approx(std, rel=1e-4)
    abar = denoiser.schedule.alphas_cumprod.double().numpy()
    scene = denoising_pairs(1, tile=32, seed=7)["noisy"].isel(sample=0, drop=True)
    starts = []
    for gain in (1.0, 10.0):
        stronger = scene * gain
        level = LEVEL_MARGIN * std / (float(stronger.max() - stronger.min()) / 2)
        t = start_step(denoiser, stronger)
        assert abs((1 - abar[t]) / abar[t] - level ** 2) <= \
            min(abs((1 - abar[t + d]) / abar[t + d] - level ** 2) for d in (-1, 1))
        starts.append(t)
    assert starts[1] < starts[0]


def test_denoising_starts_from_the_scene_itself(denoiser):
    """Started two steps above the data, the sampler can move the scene by no more than those
    steps' noise level, whatever the (barely trained) network says."""
    scene = denoising_pairs(1, tile=64, seed=7)["noisy"].isel(sample=0, drop=True)
    light = denoise(scene, denoiser, 2, strength=0.002, sample_steps=10, seed=1)["denoised"].values
    span = float(scene.max() - scene.min())
    assert np.abs(light - scene.values).max() < 0.05 * span
    attrs = denoise(scene, denoiser, 1, strength=0.002).attrs
    assert attrs["strength"] == 0.002 and attrs["start"] == 2


def test_a_single_tile_scene_is_denoised_as_that_tile_alone(denoiser):
    """A canvas conditioned on the scene stays inside it: on a scene of one tile the sampler runs
    on the tile itself, conditioned on and started from the scene scaled with its own min-max,
    with nothing made up beyond its edges (deterministic sampler: no seed enters)."""
    import torch

    from geodiff.diffusion.conditions import Conditions

    scene = denoising_pairs(1, tile=32, seed=7)["noisy"].isel(sample=0, drop=True)
    got = denoise(scene, denoiser, 1, sampler="ddim", sample_steps=10, seed=1)["denoised"].values
    tiles = scene.expand_dims(tile=1)
    coefficients = denoiser.scaler.fit(tiles)
    z = torch.from_numpy(denoiser.scaler.transform(tiles, coefficients).values[:, None].astype(np.float32))
    conditions = Conditions(image=z, known=z, mask=torch.zeros_like(z, dtype=torch.bool),
                            start=start_step(denoiser, scene), noisy_start=True)
    alone = denoiser.generate(1, sampler="ddim", sample_steps=10, seed=5, conditions=conditions)
    expected = denoiser.scaler.inverse(alone[:, 0], coefficients)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(scene.max() - scene.min()))


def test_bad_denoising_requests_are_refused(denoiser):
    scene = denoising_pairs(1, tile=64, seed=7)["noisy"].isel(sample=0, drop=True)
    with pytest.raises(SceneError, match="max_gap"):
        denoise(scene.where(scene["x"] < scene["x"][20]), denoiser)
    with pytest.raises(SceneError, match="all gaps"):
        denoise(scene * np.nan, denoiser)
    with pytest.raises(GeodiffError, match="'fill' or 'keep'"):
        denoise(scene, denoiser, gaps="drop")
    with pytest.raises(GeodiffError, match="trained on data in mm"):
        denoise(scene.assign_attrs(units="rad"), denoiser, sample_steps=2)
    plain = geodiff.fit(_scene(0, nan=0.0), tile=16, train_steps=1, **TINY)
    with pytest.raises(GeodiffError, match="conditioned on noisy"):
        denoise(scene, plain)
    with pytest.raises(GeodiffError, match="denoise"):
        denoiser.sample_scene(1, like=scene)
    with pytest.raises(GeodiffError, match=r"strength is a fraction"):
        denoise(scene, denoiser, strength=1.5)
    unmeasured = copy.copy(denoiser)
    unmeasured.summary = {k: v for k, v in denoiser.summary.items() if k != "noise_std"}
    with pytest.raises(GeodiffError, match="give denoise a strength"):
        denoise(scene, unmeasured)
    with pytest.raises(GeodiffError, match="needs start"):
        sample_scene(scene, 1, denoiser, low_res=scene, observed=scene)
    with pytest.raises(GeodiffError, match="no known"):
        sample_scene(scene, 1, denoiser, low_res=scene, observed=scene, known=scene, start=10)
