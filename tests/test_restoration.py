"""Inpainting real scenes' gaps with a trained model (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

import geodiff
from geodiff.errors import GeodiffError, SceneError
from geodiff.restoration import NothingToFillWarning, inpaint
from tests.test_collection import TINY, _scene


@pytest.fixture(scope="module")
def model():
    return geodiff.fit(_scene(0, shape=(64, 96), nan=0.0), tile=16, train_steps=3, **TINY)


def _holey(seed=1):
    scene = _scene(seed, shape=(48, 80), nan=0.03)
    hole = np.zeros(scene.shape, bool)
    hole[10:30, 20:60] = True  # wider than a window
    return scene.where(~hole)


def test_inpainting_keeps_every_valid_pixel_and_fills_every_gap(model):
    scene = _holey()
    out = scene.diffusion.inpaint(model, 3, sample_steps=2, block=32, seed=4)
    assert out.chunks is not None and out.shape == (3, 48, 80) and out.rio.crs == scene.rio.crs
    values = out.values
    valid = np.isfinite(scene.values)
    np.testing.assert_array_equal(values[:, valid], np.broadcast_to(scene.values[valid], (3, valid.sum())))
    assert np.isfinite(values).all()
    np.testing.assert_array_equal(out["filled"].values, ~valid)
    spread = np.ptp(values, axis=0)
    assert (spread[valid] == 0).all() and (spread[~valid] > 0).all()  # the spread is the fill's uncertainty
    assert out.attrs["restoration"] == "inpaint" and out.attrs["gap_fraction"] == pytest.approx((~valid).mean(), abs=1e-6)
    np.testing.assert_array_equal(inpaint(scene, model, 3, sample_steps=2, block=32, seed=4).values, values)


def test_the_fill_depends_on_the_pixels_around_the_gap(model):
    scene = _holey()
    brighter = scene + 20.0
    a = inpaint(scene, model, sample_steps=2, block=32).values[0]
    b = inpaint(brighter.assign_attrs(scene.attrs), model, sample_steps=2, block=32).values[0]
    gap = ~np.isfinite(scene.values)
    # Same seed, same noise: the context moved the fill (coefficients and known pixels alike).
    assert np.nanmean(b[gap] - a[gap]) == pytest.approx(20.0, rel=0.3)


def test_scenes_without_gaps_all_gaps_or_too_many_are_answered_clearly(model):
    full = _scene(2, shape=(48, 64), nan=0.0)
    with pytest.warns(NothingToFillWarning, match="no gap"):
        same = inpaint(full, model, 2)
    np.testing.assert_array_equal(same.values[1], full.values)
    assert not same["filled"].values.any()
    with pytest.raises(SceneError, match="all gaps"):
        inpaint(full * np.nan, model)
    mostly = full.where(full["x"] < full["x"][16])
    with pytest.raises(SceneError, match="max_gap"):
        inpaint(mostly, model)
    assert inpaint(mostly, model, max_gap=0.9, sample_steps=2, block=32).shape == (1, 48, 64)
    with pytest.raises(GeodiffError, match="sets mask"):
        inpaint(_holey(), model, mask=True)
    with pytest.raises(GeodiffError, match="trained on"):
        inpaint(_holey().assign_attrs(units="rad"), model, sample_steps=2)


def test_resampling_jumps_run_through_blocks_and_are_recorded(model):
    scene = _holey()
    plain = inpaint(scene, model, 2, sampler="ddim", sample_steps=4, block=32, seed=4)
    jumped = inpaint(scene, model, 2, sampler="ddim", sample_steps=4, block=32, seed=4, resampling=(2, 3))
    assert jumped.attrs["resampling"] == [2, 3] and "resampling" not in plain.attrs
    values, valid = jumped.values, np.isfinite(scene.values)
    np.testing.assert_array_equal(values[:, valid], plain.values[:, valid])
    assert np.isfinite(values).all() and np.abs(values[:, ~valid] - plain.values[:, ~valid]).max() > 1e-3
    for sampler, resampling in (("dpmsolver++", (2, 3)), ("ddim", (2, 0))):
        with pytest.raises(GeodiffError, match="resampling"):  # at the call, before any block is sampled
            inpaint(scene, model, sampler=sampler, sample_steps=4, resampling=resampling)


def test_strength_starts_the_gaps_from_a_laplace_fill(model):
    from geodiff.tiling.fill import fill_planes

    scene = _holey()
    gap = ~np.isfinite(scene.values)
    laplace = fill_planes(scene.values, "laplace")[gap]
    away = {}
    for strength in (0.05, 1.0):
        out = inpaint(scene, model, 2, sample_steps=10, block=32, seed=4, strength=strength)
        assert out.attrs["strength"] == strength and out.attrs["start"] == round(strength * 999)
        values = out.values
        np.testing.assert_array_equal(values[:, ~gap], np.broadcast_to(scene.values[~gap], (2, (~gap).sum())))
        away[strength] = float(np.abs(values[:, gap] - laplace).mean())
    assert away[0.05] < 0.3 * away[1.0], away  # a light start stays near the Laplace fill
    for strength in (0, 1.5, "half"):
        with pytest.raises(GeodiffError, match="strength"):
            inpaint(scene, model, strength=strength)


def test_the_harmonic_projection_carries_the_mismatch_on_known_pixels_into_the_gaps():
    import torch

    from geodiff.consistency import harmonic_projection

    yy, xx = np.mgrid[0:12, 0:16].astype(float)
    mask = np.ones((4, 1, 12, 16), bool)
    mask[0, 0, 3:8, 4:11] = False  # inside: a harmonic offset is mended exactly
    mask[1, 0, :, 10:] = False  # on an edge: a constant offset is
    mask[2] = False  # nothing known, nothing to meet
    truth = np.random.default_rng(0).normal(size=mask.shape)
    offset = np.stack([0.3 + 0.02 * (xx**2 - yy**2), np.full_like(xx, -0.7), 0.5 + 0 * xx, 0.1 * xx])[:, None]
    x0 = truth - offset
    out = harmonic_projection(np.where(mask, truth, np.nan), mask)(torch.from_numpy(x0)).numpy()
    gap = ~mask[:2]
    np.testing.assert_allclose(out[:2][gap], truth[:2][gap], atol=1e-9)
    np.testing.assert_array_equal(out[:2][~gap], x0[:2][~gap])  # the known pixels are put back after it
    np.testing.assert_array_equal(out[2:], x0[2:])  # no known pixel, or no gap: as it was


def test_an_estimate_that_knows_nothing_fills_the_gap_with_the_laplace_fill(model):
    """A network whose x_0 estimate is 0 everywhere: the gap can only take what the projection
    carries in from the pixels around it, the Laplace fill (one tile: one set of coefficients,
    so normalised and physical fills agree)."""
    import dataclasses

    import torch

    from geodiff.tiling.fill import fill_planes

    class Blank(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.config, self.learn_sigma = net, net.config, net.learn_sigma

        def forward(self, x, t, **kwargs):
            return self.net(x, t, **kwargs) * 0

    blank = dataclasses.replace(model, network=Blank(model.network), prediction="x0")
    scene = _scene(5, shape=(16, 16), nan=0.0)
    scene = scene.where(~((scene["y"] > scene["y"][12]) & (scene["y"] < scene["y"][4]) & (scene["x"] > scene["x"][3])
                          & (scene["x"] < scene["x"][11])))
    gap = ~np.isfinite(scene.values)
    assert 0.1 < gap.mean() < 0.4
    out = inpaint(scene, blank, sampler="ddim", sample_steps=3).values[0]
    np.testing.assert_allclose(out[gap], fill_planes(scene.values, "laplace")[gap], rtol=1e-4, atol=1e-4)
