"""Okada (1985) rectangular dislocation in an elastic half-space: surface displacement."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from geodiff.errors import GeodiffError

__all__ = ["okada"]

# Below this, cos(dip) is treated as zero (vertical fault) and the I-terms take their limit form.
_VERTICAL_EPS = 1e-6


def okada(
    x: ArrayLike,
    y: ArrayLike,
    *,
    xcen: float,
    ycen: float,
    depth: float,
    strike: float,
    dip: float,
    length: float,
    width: float,
    slip: float = 0.0,
    rake: float = 0.0,
    opening: float = 0.0,
    nu: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface displacement of a uniform rectangular dislocation (Okada 1985).

    Implements the closed-form surface displacements of Okada (1985, BSSA 75(4), 1135-1154,
    eqs. 25-30) for strike-slip, dip-slip and tensile components, with the singular cases of
    Okada (1992, BSSA 82(2), 1018-1040, sect. "singular points"). The rectangle is given by its
    centroid; strike and dip follow the right-hand rule (the fault dips to the right of the
    strike direction). Faults, dikes (``dip=90, opening>0``) and rectangular sills
    (``dip=0, opening>0``) are all special cases.

    Parameters
    ----------
    x, y : array_like
        Easting and northing of the observation points, in metres.
    xcen, ycen : float
        Horizontal position of the centroid of the rectangle, in metres.
    depth : float
        Depth of the centroid below the surface, in metres; the top edge must stay below the
        surface (``depth >= width / 2 * sin(dip)``).
    strike : float
        Strike in degrees clockwise from north.
    dip : float
        Dip in degrees, in ``[0, 90]``.
    length, width : float
        Along-strike length and down-dip width, in metres.
    slip : float
        Shear slip in metres, along ``rake``.
    rake : float
        Rake in degrees (Aki & Richards: 0 left-lateral, 90 reverse, -90 normal, 180 right-lateral).
    opening : float
        Tensile opening in metres (positive opens the crack).
    nu : float
        Poisson's ratio of the half-space.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        East, north and up displacement in metres.
    """
    if not (0.0 <= dip <= 90.0):
        raise GeodiffError(f"dip must be in degrees within [0, 90], got {dip}; flip strike by 180 for the other way")
    if not (length > 0 and width > 0):
        raise GeodiffError(f"length and width must be positive metres, got {length}, {width}")
    if not -1.0 < nu < 0.5:
        raise GeodiffError(f"Poisson's ratio nu must be in (-1, 0.5), got {nu}")
    d_rad, s_rad, r_rad = np.deg2rad(dip), np.deg2rad(strike), np.deg2rad(rake)
    sd, cd = np.sin(d_rad), np.cos(d_rad)
    if abs(cd) < _VERTICAL_EPS:
        sd, cd = 1.0, 0.0
    # Okada's reference point is the bottom edge at the start of the strike; depth d is its depth.
    d = depth + 0.5 * width * sd
    if depth - 0.5 * width * sd < -1e-9 * width:
        raise GeodiffError(
            f"the top edge of the rectangle is above the surface (depth {depth} m < width/2 * sin(dip)); "
            "increase depth or reduce width"
        )
    strike_e, strike_n = np.sin(s_rad), np.cos(s_rad)
    # Okada's +y axis: horizontal, left of strike, the up-dip direction.
    left_e, left_n = -strike_n, strike_e
    ref_e = xcen - 0.5 * length * strike_e - 0.5 * width * cd * left_e
    ref_n = ycen - 0.5 * length * strike_n - 0.5 * width * cd * left_n
    de = np.asarray(x, dtype=float) - ref_e
    dn = np.asarray(y, dtype=float) - ref_n
    xo = de * strike_e + dn * strike_n
    yo = de * left_e + dn * left_n
    p = yo * cd + d * sd
    q = yo * sd - d * cd

    u1, u2, u3 = slip * np.cos(r_rad), slip * np.sin(r_rad), opening
    a = 1.0 - 2.0 * nu  # mu / (lambda + mu)
    ux = np.zeros_like(xo)
    uy = np.zeros_like(xo)
    uz = np.zeros_like(xo)
    # Chinnery's notation: f(xi, eta) evaluated at the four corners with signs + - - +.
    for xi, eta, sign in ((xo, p, 1.0), (xo, p - width, -1.0), (xo - length, p, -1.0), (xo - length, p - width, 1.0)):
        fx, fy, fz = _corner(xi, eta, q, sd, cd, a, u1, u2, u3)
        ux += sign * fx
        uy += sign * fy
        uz += sign * fz
    ue = ux * strike_e + uy * left_e
    un = ux * strike_n + uy * left_n
    return np.asarray(ue), np.asarray(un), np.asarray(uz)


def _corner(xi, eta, q, sd, cd, a, u1, u2, u3):
    """Okada (1985) eqs. 25-30 at one corner (xi, eta) of the Chinnery sum."""
    r = np.sqrt(xi**2 + eta**2 + q**2)
    ytil = eta * cd + q * sd
    dtil = eta * sd - q * cd
    x2 = np.sqrt(xi**2 + q**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Singular points (Okada 1992): R + eta = 0 on the extension of a fault edge.
        r_eta_zero = np.abs(r + eta) < 1e-12 * np.maximum(r, 1.0)
        ln_r_eta = np.where(r_eta_zero, -np.log(np.abs(r - eta)), np.log(np.abs(r + eta)))
        inv_r_eta = np.where(r_eta_zero, 0.0, 1.0 / (r + eta))
        inv_r_xi = np.where(np.abs(r + xi) < 1e-12 * np.maximum(r, 1.0), 0.0, 1.0 / (r + xi))
        theta = np.where(np.abs(q) < 1e-12 * np.maximum(r, 1.0), 0.0, np.arctan(xi * eta / (q * r)))
        if cd > 0:
            i5 = np.where(
                np.abs(xi) < 1e-12 * np.maximum(r, 1.0),
                0.0,
                a * 2.0 / cd * np.arctan((eta * (x2 + q * cd) + x2 * (r + x2) * sd) / (xi * (r + x2) * cd)),
            )
            i4 = a / cd * (np.log(r + dtil) - sd * ln_r_eta)
            i3 = a * (ytil / (cd * (r + dtil)) - ln_r_eta) + sd / cd * i4
            i1 = a * (-xi / (cd * (r + dtil))) - sd / cd * i5
        else:
            rd = r + dtil
            i1 = -0.5 * a * xi * q / rd**2
            i3 = 0.5 * a * (eta / rd + ytil * q / rd**2 - ln_r_eta)
            i4 = -a * q / rd
            i5 = -a * xi * sd / rd
        i2 = a * (-ln_r_eta) - i3
        qr = q / r
        xq_rr = xi * q / r * inv_r_eta
    two_pi = 2.0 * np.pi
    ux = np.zeros_like(r)
    uy = np.zeros_like(r)
    uz = np.zeros_like(r)
    if u1:
        ux += -u1 / two_pi * (xq_rr + theta + i1 * sd)
        uy += -u1 / two_pi * (ytil * qr * inv_r_eta + q * cd * inv_r_eta + i2 * sd)
        uz += -u1 / two_pi * (dtil * qr * inv_r_eta + q * sd * inv_r_eta + i4 * sd)
    if u2:
        ux += -u2 / two_pi * (qr - i3 * sd * cd)
        uy += -u2 / two_pi * (ytil * qr * inv_r_xi + cd * theta - i1 * sd * cd)
        uz += -u2 / two_pi * (dtil * qr * inv_r_xi + sd * theta - i5 * sd * cd)
    if u3:
        ux += u3 / two_pi * (q * qr * inv_r_eta - i3 * sd**2)
        uy += u3 / two_pi * (-dtil * qr * inv_r_xi - sd * (xq_rr - theta) - i1 * sd**2)
        uz += u3 / two_pi * (ytil * qr * inv_r_xi + cd * (xq_rr - theta) - i5 * sd**2)
    return ux, uy, uz
