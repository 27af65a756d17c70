"""LOS unit vectors against a rotation built with scipy, and projection properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from geodiff.errors import GeodiffError
from geodiff.insar import (
    SENTINEL1_HEADING_ASCENDING,
    SENTINEL1_HEADING_DESCENDING,
    los_vector,
    project_los,
)


@pytest.mark.parametrize("heading", [-168.0, -12.0, 0.0, 77.0, 190.0])
@pytest.mark.parametrize("incidence", [0.0, 29.0, 39.0, 46.0])
def test_los_vector_matches_rotation_about_flight_axis(heading, incidence):
    # Ground-to-satellite: the vertical tilted about the flight axis away from the (right) look side.
    h = np.deg2rad(heading)
    flight = np.array([np.sin(h), np.cos(h), 0.0])
    expected = Rotation.from_rotvec(-np.deg2rad(incidence) * flight).apply([0.0, 0.0, 1.0])
    np.testing.assert_allclose(los_vector(heading, incidence), expected, atol=1e-12)
    left = Rotation.from_rotvec(np.deg2rad(incidence) * flight).apply([0.0, 0.0, 1.0])
    np.testing.assert_allclose(los_vector(heading, incidence, look="left"), left, atol=1e-12)


def test_sentinel1_tracks_see_from_the_expected_side():
    e_desc, _, _ = los_vector(SENTINEL1_HEADING_DESCENDING, 39.0)
    e_asc, _, _ = los_vector(SENTINEL1_HEADING_ASCENDING, 39.0)
    assert e_desc > 0.5 and e_asc < -0.5  # descending looks west (satellite east), ascending looks east


def test_projection_by_angles_equals_projection_by_vector_and_is_linear():
    rng = np.random.default_rng(1)
    e, n, u = rng.normal(size=(3, 50))
    los = los_vector(-168.0, 35.0)
    a = project_los(e, n, u, heading=-168.0, incidence=35.0)
    np.testing.assert_allclose(a, project_los(e, n, u, look_vector=los))
    np.testing.assert_allclose(project_los(2 * e, 2 * n, 2 * u, look_vector=los), 2 * a)
    # Pure uplift projects by cos(incidence); motion perpendicular to the LOS vanishes.
    assert project_los(0, 0, 1.0, heading=10.0, incidence=35.0) == pytest.approx(np.cos(np.deg2rad(35.0)))
    perp = np.cross(los, [0, 0, 1.0])
    assert project_los(*perp, look_vector=los) == pytest.approx(0.0, abs=1e-12)


def test_per_pixel_geometry_broadcasts():
    inc = np.linspace(30, 45, 12).reshape(3, 4)
    out = project_los(np.zeros((3, 4)), 0.0, 1.0, heading=-168.0, incidence=inc)
    np.testing.assert_allclose(out, np.cos(np.deg2rad(inc)))


def test_bad_geometry_raises():
    with pytest.raises(GeodiffError, match="degrees"):
        los_vector(0.0, 1.2 * np.pi / 2 * 60)
    with pytest.raises(GeodiffError):
        project_los(0, 0, 1, heading=0.0)
    with pytest.raises(GeodiffError, match="unit"):
        project_los(0, 0, 1, look_vector=(1, 1, 1))
