"""GANInSAR baseline shapes (areas, symmetry, composition) and orbital ramps."""

from __future__ import annotations

import numpy as np
import pytest

from geodiff.errors import GeodiffError
from geodiff.synth import (
    distorted_gaussian,
    ellipse,
    gaussian_bubble,
    ramp,
    random_ramp,
    random_shapes,
    rectangle,
    triangle,
)


def test_filled_shapes_have_their_geometric_area():
    shape = (200, 200)
    verts = [(20.0, 30.0), (150.0, 60.0), (80.0, 170.0)]
    (y0, x0), (y1, x1), (y2, x2) = verts
    shoelace = 0.5 * abs(x0 * (y1 - y2) + x1 * (y2 - y0) + x2 * (y0 - y1))
    assert triangle(shape, verts, 1.0, blur=0).sum() == pytest.approx(shoelace, rel=0.02)
    assert ellipse(shape, (100, 100), (30, 50), angle=25, blur=0).sum() == pytest.approx(np.pi * 30 * 50, rel=0.01)
    assert rectangle(shape, (100, 100), (40, 70), angle=-35, blur=0).sum() == pytest.approx(40 * 70, rel=0.02)
    # Blurring moves amplitude around but keeps its total (shape well inside the grid).
    sharp = rectangle(shape, (100, 100), (40, 70), amplitude=-2.0, blur=0)
    soft = rectangle(shape, (100, 100), (40, 70), amplitude=-2.0, blur=2.0)
    assert soft.sum() == pytest.approx(sharp.sum(), rel=1e-6)


def test_gaussian_bubble_peak_symmetry_and_volume():
    g = gaussian_bubble((101, 101), (50, 50), (8.0, 12.0), angle=0, amplitude=3.0)
    assert g.max() == pytest.approx(3.0) and g[50, 50] == pytest.approx(3.0)
    np.testing.assert_allclose(g, g[::-1, ::-1], atol=1e-14)
    assert g.sum() == pytest.approx(3.0 * 2 * np.pi * 8 * 12, rel=1e-3)
    # Rotating by 90 degrees swaps the axes.
    np.testing.assert_allclose(gaussian_bubble((101, 101), (50, 50), (12.0, 8.0), angle=90), g / 3.0, atol=1e-12)


def test_distorted_gaussian_is_distorted_but_bounded():
    plain = gaussian_bubble((96, 96), (48, 48), (10.0, 14.0), angle=30)
    warped = distorted_gaussian((96, 96), (48, 48), (10.0, 14.0), angle=30, distortion=0.5, seed=2)
    assert 0 < warped.max() <= 1.0
    assert np.abs(warped - plain).max() > 0.05
    np.testing.assert_array_equal(warped, distorted_gaussian((96, 96), (48, 48), (10.0, 14.0), 30, 1.0, 0.5, seed=2))


def test_random_shapes_compose_reproducibly():
    a = random_shapes((64, 80), n_shapes=(2, 5), amplitude=(-3, 3), seed=4)
    assert a.shape == (64, 80) and np.abs(a).max() > 0
    np.testing.assert_array_equal(a, random_shapes((64, 80), n_shapes=(2, 5), amplitude=(-3, 3), seed=4))
    assert not np.array_equal(a, random_shapes((64, 80), n_shapes=(2, 5), amplitude=(-3, 3), seed=5))
    assert not random_shapes((32, 32), n_shapes=0, seed=1).any()
    for kind in ("triangle", "gaussian", "rectangle", "ellipse", "distorted_gaussian"):
        assert np.abs(random_shapes((48, 48), n_shapes=1, kinds=[kind], amplitude=(1, 2), seed=0)).max() > 0.1
    with pytest.raises(GeodiffError, match="kinds"):
        random_shapes((8, 8), kinds=["hexagon"])


def test_ramp_values_and_least_squares_recovery():
    y, x = np.mgrid[0:20, 0:30].astype(float)
    c = [0.5, -0.1, 0.03]
    np.testing.assert_allclose(ramp(x, y, c), 0.5 - 0.1 * x + 0.03 * y)
    q = ramp(x, y, [1, 0, 0, 2, 0, -1])
    np.testing.assert_allclose(q, 1 + 2 * x**2 - y**2)
    stack = ramp(x, y, np.array([c, [0, 1, 1]]))
    assert stack.shape == (2, 20, 30)
    # A random plane is exactly a plane: least squares on (1, x, y) leaves no residual.
    r = random_ramp((20, 30), std=2.0, size=3, seed=0)
    design = np.column_stack([np.ones(600), x.ravel(), y.ravel()])
    for field in r:
        coef, *_ = np.linalg.lstsq(design, field.ravel(), rcond=None)
        np.testing.assert_allclose(design @ coef, field.ravel(), atol=1e-10)
        assert abs(field.mean()) < 1e-12
    with pytest.raises(GeodiffError):
        ramp(x, y, [1, 2])
    with pytest.raises(GeodiffError):
        random_ramp((4, 4), order=3)
