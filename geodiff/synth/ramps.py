"""Orbital ramps: low-order polynomial surfaces left by imprecise baselines."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from geodiff.errors import GeodiffError
from geodiff.synth.rng import generator

__all__ = ["ramp", "random_ramp"]

_TERMS = {1: 3, 2: 6}


def ramp(x: ArrayLike, y: ArrayLike, coefficients: ArrayLike) -> np.ndarray:
    """Polynomial surface ``c0 + c1 x + c2 y [+ c3 x**2 + c4 x y + c5 y**2]``.

    Parameters
    ----------
    x, y : array_like
        Coordinates (any unit; the coefficients carry the inverse unit).
    coefficients : array_like
        Three (plane) or six (quadratic) coefficients, or ``(..., 3|6)`` for a stack of ramps.

    Returns
    -------
    numpy.ndarray
        The surface, broadcast over the leading axes of ``coefficients``.
    """
    c = np.asarray(coefficients, dtype=float)
    if c.shape[-1] not in (3, 6):
        raise GeodiffError(f"a ramp takes 3 (plane) or 6 (quadratic) coefficients, got {c.shape[-1]}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    terms = [np.ones_like(x), x, y] + ([x * x, x * y, y * y] if c.shape[-1] == 6 else [])
    basis = np.stack(np.broadcast_arrays(*terms), axis=-1)
    return np.tensordot(c, basis, axes=([-1], [-1]))


def random_ramp(
    shape: tuple[int, int],
    *,
    std: float = 1.0,
    order: int = 1,
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Random orbital ramps over a grid, with coordinates normalised to ``[-1, 1]``.

    Each coefficient is normal with standard deviation ``std`` (in the output unit, e.g. rad),
    so ``std`` is the typical change across half the scene; ramps have zero mean.

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(ny, nx)``.
    std : float
        Standard deviation of each polynomial coefficient, in the output unit.
    order : {1, 2}
        Plane or quadratic surface.
    size : int, optional
        Number of ramps on a leading axis.
    seed : int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` or ``(size, ny, nx)`` array.
    """
    if order not in _TERMS:
        raise GeodiffError(f"order must be 1 (plane) or 2 (quadratic), got {order}")
    rng = generator(seed)
    n = 1 if size is None else int(size)
    y = np.linspace(-1.0, 1.0, shape[0])[:, None]
    x = np.linspace(-1.0, 1.0, shape[1])[None, :]
    c = rng.normal(0.0, std, (n, _TERMS[order]))
    out = ramp(x, y, c)
    out -= out.mean(axis=(-2, -1), keepdims=True)
    return out[0] if size is None else out
