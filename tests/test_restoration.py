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
