"""The seam statistic against a direct computation, on fields with and without tile seams, and
on real scenes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

import geodiff
from geodiff.errors import GeodiffError
from geodiff.metrics import seam_statistic


def smooth_field(shape, seed, sigma=4.0):
    rng = np.random.default_rng(seed)
    field = scipy.ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / field.std()


def tiled_field(size=256, tile=32, seed=0):
    """Tiles of one stationary process, each drawn on its own: a step at every tile boundary."""
    out = np.empty((size, size))
    for k, (r, c) in enumerate((r, c) for r in range(0, size, tile) for c in range(0, size, tile)):
        out[r:r + tile, c:c + tile] = smooth_field((tile, tile), seed + k + 1)
    return out


def test_matches_a_direct_computation():
    values = np.random.default_rng(3).standard_normal((2, 40, 36))
    values[0, 5:9, 7:20] = np.nan
    p, k = 9, 4
    diffs = []
    for j in range(1, 36):
        if j % p == k:
            diffs.append(np.abs(values[..., j] - values[..., j - 1]).ravel())
    for j in range(1, 40):
        if j % p == k:
            diffs.append(np.abs(values[..., j, :] - values[..., j - 1, :]).ravel())
    direct = {}
    for phase in range(p):
        d = [np.abs(values[..., j] - values[..., j - 1]).ravel() for j in range(1, 36) if j % p == phase]
        d += [np.abs(values[..., j, :] - values[..., j - 1, :]).ravel() for j in range(1, 40) if j % p == phase]
        direct[phase] = np.nanmean(np.concatenate(d))
    expected = max(direct.values()) / np.median(list(direct.values()))
    score = seam_statistic(values, periods=[p])
    assert score.statistic == pytest.approx(expected, rel=1e-12)
    assert score.phase == max(direct, key=direct.get) and score.period == p


def test_tile_seams_stand_out_and_stationary_fields_do_not():
    seamless = seam_statistic(smooth_field((256, 256), 0))
    seams = seam_statistic(tiled_field())
    assert seamless.statistic < 1.25
    assert seams.statistic > 3 * seamless.statistic
    assert seams.period % 32 == 0 and seams.phase % 32 == 0


def test_real_scenes_are_near_one(opera_rtc, mexico_city_a):
    scenes = [min(opera_rtc.rglob("*_VV.tif")), min(mexico_city_a.glob("*_unw.tif"))]
    for path in scenes:
        assert 1.0 < seam_statistic(geodiff.open_scene(path)).statistic < 1.2, path.name


def test_bad_input():
    with pytest.raises(GeodiffError, match="at least 32"):
        seam_statistic(np.zeros((20, 40)))
    with pytest.raises(GeodiffError, match="no pair"):
        seam_statistic(np.full((40, 40), np.nan))
    with pytest.raises(GeodiffError, match="no period"):
        seam_statistic(np.zeros((40, 40)), periods=[16])
