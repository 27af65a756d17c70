"""Mogi (1958) point pressure source in an elastic half-space."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from geodiff.errors import GeodiffError

__all__ = ["mogi"]


def mogi(
    x: ArrayLike,
    y: ArrayLike,
    *,
    xcen: float,
    ycen: float,
    depth: float,
    dV: float,
    nu: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface displacement of a point volume change at depth (Mogi 1958).

    ``u = (1 - nu) dV / pi * (dx, dy, depth) / R**3`` with ``R**2 = dx**2 + dy**2 + depth**2``
    (Mogi 1958, Bull. Earthq. Res. Inst. 36; written in terms of the volume change as in
    Segall 2010, *Earthquake and Volcano Deformation*, eq. 7.14). The uplift above the source is
    ``(1 - nu) dV / (pi depth**2)``.

    Parameters
    ----------
    x, y : array_like
        Easting and northing of the observation points, in metres.
    xcen, ycen : float
        Horizontal position of the source, in metres (same frame as ``x``, ``y``).
    depth : float
        Source depth below the surface, in metres (positive).
    dV : float
        Volume change of the source, in cubic metres (positive for inflation).
    nu : float
        Poisson's ratio of the half-space.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        East, north and up displacement in metres.
    """
    if not depth > 0:
        raise GeodiffError(f"depth must be positive (metres below the surface), got {depth}")
    if not -1.0 < nu < 0.5:
        raise GeodiffError(f"Poisson's ratio nu must be in (-1, 0.5), got {nu}")
    dx = np.asarray(x, dtype=float) - xcen
    dy = np.asarray(y, dtype=float) - ycen
    c = (1.0 - nu) * dV / np.pi / (dx**2 + dy**2 + depth**2) ** 1.5
    return c * dx, c * dy, c * depth
