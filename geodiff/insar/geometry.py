"""Line-of-sight geometry: unit vectors from ground to satellite and LOS projection of E/N/U motion.

Conventions: heading is the satellite's flight direction in degrees clockwise from north
(Sentinel-1 about -12 ascending, -168 descending); incidence is the angle between the local
vertical and the line of sight, in degrees; the radar looks right of the flight direction unless
``look="left"``. The LOS unit vector points from the ground to the satellite, so the projected
displacement is positive towards the satellite (the decomposition of Wright et
al. 2004, GRL 31, L01607).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from geodiff.errors import GeodiffError

__all__ = ["los_vector", "project_los"]


def los_vector(
    heading: ArrayLike, incidence: ArrayLike, look: str = "right"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """East, north and up components of the ground-to-satellite unit vector.

    For a right-looking radar the satellite lies at azimuth ``heading - 90`` degrees as seen
    from the ground, so ``(e, n, u) = (-sin(inc) cos(head), sin(inc) sin(head), cos(inc))``;
    a left-looking radar flips the horizontal part.

    Parameters
    ----------
    heading : array_like
        Flight direction in degrees clockwise from north; scalars or per-pixel arrays.
    incidence : array_like
        Incidence angle in degrees, in ``[0, 90)``.
    look : {"right", "left"}
        Side the antenna looks to.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Unit-vector components (east, north, up), dimensionless.
    """
    if look not in ("right", "left"):
        raise GeodiffError(f"look must be 'right' or 'left', got {look!r}")
    inc = np.asarray(incidence, dtype=float)
    if np.any((inc < 0) | (inc >= 90)):
        raise GeodiffError("incidence must be in degrees within [0, 90); did you pass radians?")
    head = np.deg2rad(np.asarray(heading, dtype=float))
    inc = np.deg2rad(inc)
    side = 1.0 if look == "right" else -1.0
    return -side * np.sin(inc) * np.cos(head), side * np.sin(inc) * np.sin(head), np.cos(inc)


def project_los(
    east: ArrayLike,
    north: ArrayLike,
    up: ArrayLike,
    *,
    look_vector: tuple[ArrayLike, ArrayLike, ArrayLike] | None = None,
    heading: ArrayLike | None = None,
    incidence: ArrayLike | None = None,
    look: str = "right",
) -> np.ndarray:
    """Project east/north/up displacement onto the line of sight.

    Give either ``look_vector`` (ground-to-satellite unit vector components, e.g. the LOS
    files of LiCSBAS or ISCE) or ``heading`` and ``incidence`` in degrees.

    Parameters
    ----------
    east, north, up : array_like
        Displacement components in any length unit (metres, mm, or a rate).
    look_vector : (array_like, array_like, array_like), optional
        East, north, up components of the ground-to-satellite unit vector, scalars or arrays
        broadcastable against the displacement.
    heading, incidence : array_like, optional
        Flight heading and incidence angle in degrees (see :func:`los_vector`).
    look : {"right", "left"}
        Antenna look side when ``heading`` is used.

    Returns
    -------
    numpy.ndarray
        LOS displacement in the unit of the input, positive towards the satellite.
    """
    if (look_vector is None) == (heading is None or incidence is None):
        raise GeodiffError("give either look_vector=(e, n, u) or both heading= and incidence= (degrees)")
    if look_vector is None:
        le, ln, lu = los_vector(heading, incidence, look)
    else:
        le, ln, lu = (np.asarray(c, dtype=float) for c in look_vector)
        norm = np.sqrt(le**2 + ln**2 + lu**2)
        if not np.allclose(norm, 1.0, atol=1e-3):
            raise GeodiffError("look_vector must be a unit vector (e, n, u); normalise it first")
    return le * east + ln * north + lu * up
