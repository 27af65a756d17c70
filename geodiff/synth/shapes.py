"""The geometric-shape baseline simulator of GANInSAR (Zhou et al. 2024) and distorted Gaussians.

Each shape is a deformation-like pattern on a pixel grid: a filled triangle, rectangle or
ellipse with softened edges, a Gaussian bubble, or an anisotropic 2-D Gaussian whose coordinates
are warped by a smooth random displacement. :func:`random_shapes` composes several at random,
the way GANInSAR builds its baseline of synthetic deformation-rate maps. Coordinates and sizes
are in pixels; amplitudes are in the caller's unit (e.g. mm/yr).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from geodiff.errors import GeodiffError
from geodiff.synth.rng import generator

__all__ = [
    "SHAPES",
    "distorted_gaussian",
    "ellipse",
    "gaussian_bubble",
    "random_shapes",
    "rectangle",
    "triangle",
]

SHAPES = ("triangle", "gaussian", "rectangle", "ellipse", "distorted_gaussian")


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if len(shape) != 2 or min(shape) < 1:
        raise GeodiffError(f"shape must be two positive integers (ny, nx), got {shape!r}")
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return yy.astype(float), xx.astype(float)


def _soften(mask: np.ndarray, amplitude: float, blur: float) -> np.ndarray:
    out = amplitude * mask.astype(float)
    return ndimage.gaussian_filter(out, blur, mode="constant") if blur > 0 else out


def triangle(
    shape: tuple[int, int], vertices: Sequence[tuple[float, float]], amplitude: float = 1.0, blur: float = 1.0
) -> np.ndarray:
    """Filled triangle of constant ``amplitude`` with vertices ``[(row, col), ...]`` in pixels.

    ``blur`` is the standard deviation (pixels) of the Gaussian that softens the edges.
    """
    v = np.asarray(vertices, dtype=float)
    if v.shape != (3, 2):
        raise GeodiffError(f"a triangle needs three (row, col) vertices, got an array of shape {v.shape}")
    yy, xx = _grid(shape)
    # Inside when the three edge cross products share a sign (either winding).
    signs = []
    for i in range(3):
        (y0, x0), (y1, x1) = v[i], v[(i + 1) % 3]
        signs.append((x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0))
    s = np.stack(signs)
    inside = np.all(s >= 0, axis=0) | np.all(s <= 0, axis=0)
    return _soften(inside, amplitude, blur)


def _rotate(dy: np.ndarray, dx: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(dy, dx)`` from a shape's centre turned by ``angle`` degrees: ``u`` along the
    shape's width, ``v`` along its height."""
    t = np.deg2rad(angle)
    return dx * np.cos(t) + dy * np.sin(t), -dx * np.sin(t) + dy * np.cos(t)


def _rotated(shape: tuple[int, int], center: tuple[float, float], angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in a frame centred on ``center`` and turned by ``angle`` degrees."""
    yy, xx = _grid(shape)
    return _rotate(yy - center[0], xx - center[1], angle)


def rectangle(
    shape: tuple[int, int],
    center: tuple[float, float],
    size: tuple[float, float],
    angle: float = 0.0,
    amplitude: float = 1.0,
    blur: float = 1.0,
) -> np.ndarray:
    """Filled rectangle of ``size`` (height, width) pixels at ``center`` (row, col), rotated ``angle`` degrees."""
    u, v = _rotated(shape, center, angle)
    inside = (np.abs(v) <= size[0] / 2) & (np.abs(u) <= size[1] / 2)
    return _soften(inside, amplitude, blur)


def ellipse(
    shape: tuple[int, int],
    center: tuple[float, float],
    axes: tuple[float, float],
    angle: float = 0.0,
    amplitude: float = 1.0,
    blur: float = 1.0,
) -> np.ndarray:
    """Filled ellipse with semi-axes ``axes`` (along rows, along cols) pixels, rotated ``angle`` degrees."""
    u, v = _rotated(shape, center, angle)
    inside = (v / axes[0]) ** 2 + (u / axes[1]) ** 2 <= 1.0
    return _soften(inside, amplitude, blur)


def gaussian_bubble(
    shape: tuple[int, int],
    center: tuple[float, float],
    sigma: float | tuple[float, float],
    angle: float = 0.0,
    amplitude: float = 1.0,
) -> np.ndarray:
    """2-D Gaussian ``amplitude * exp(-(u**2 / 2 su**2 + v**2 / 2 sv**2))``; ``sigma`` in pixels."""
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    u, v = _rotated(shape, center, angle)
    return amplitude * np.exp(-0.5 * ((v / sy) ** 2 + (u / sx) ** 2))


def distorted_gaussian(
    shape: tuple[int, int],
    center: tuple[float, float],
    sigma: tuple[float, float],
    angle: float = 0.0,
    amplitude: float = 1.0,
    distortion: float = 0.3,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Anisotropic Gaussian whose coordinates are warped by a smooth random field.

    The warp is a sum of a few random low-frequency sinusoids with amplitude ``distortion``
    times the Gaussian's larger sigma, giving lopsided, bent bowls rather than perfect ellipses.
    """
    rng = generator(seed)
    yy, xx = _grid(shape)
    scale = distortion * max(sigma)
    wy = np.zeros(shape)
    wx = np.zeros(shape)
    for _ in range(3):
        ky, kx = rng.normal(0.0, 1.0 / (4 * max(sigma)), 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        wy += scale / 3 * np.sin(ky * yy + kx * xx + ph[0]) * rng.normal()
        wx += scale / 3 * np.sin(kx * yy - ky * xx + ph[1]) * rng.normal()
    u, v = _rotate(yy + wy - center[0], xx + wx - center[1], angle)
    return amplitude * np.exp(-0.5 * ((v / sigma[0]) ** 2 + (u / sigma[1]) ** 2))


def random_shapes(
    shape: tuple[int, int],
    *,
    n_shapes: int | tuple[int, int] = (1, 4),
    kinds: Sequence[str] = SHAPES,
    amplitude: tuple[float, float] = (-1.0, 1.0),
    size: tuple[float, float] = (0.05, 0.35),
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Random composition of baseline shapes (GANInSAR's simulator), summed on one grid.

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(ny, nx)`` in pixels.
    n_shapes : int or (int, int)
        Number of shapes, or an inclusive range to draw it from.
    kinds : sequence of str
        Shape kinds to draw from (:data:`SHAPES`).
    amplitude : (float, float)
        Range of peak amplitudes, in the output unit.
    size : (float, float)
        Range of shape sizes as fractions of the smaller grid side.
    seed : int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` float64 array in the unit of ``amplitude``.
    """
    unknown = set(kinds) - set(SHAPES)
    if unknown or not kinds:
        raise GeodiffError(f"kinds must be a non-empty subset of {SHAPES}, got {list(kinds)}")
    rng = generator(seed)
    count = n_shapes if np.isscalar(n_shapes) else rng.integers(n_shapes[0], n_shapes[1] + 1)
    side = min(shape)
    out = np.zeros(shape)
    for _ in range(int(count)):
        kind = kinds[rng.integers(len(kinds))]
        amp = rng.uniform(*amplitude)
        centre = (rng.uniform(0, shape[0]), rng.uniform(0, shape[1]))
        s1, s2 = rng.uniform(*size, 2) * side
        angle = rng.uniform(0, 180)
        if kind == "triangle":
            pts = np.array(centre) + rng.normal(0, s1, (3, 2))
            out += triangle(shape, pts, amp, blur=rng.uniform(0.5, 3))
        elif kind == "rectangle":
            out += rectangle(shape, centre, (s1, s2), angle, amp, blur=rng.uniform(0.5, 3))
        elif kind == "ellipse":
            out += ellipse(shape, centre, (s1 / 2, s2 / 2), angle, amp, blur=rng.uniform(0.5, 3))
        elif kind == "gaussian":
            out += gaussian_bubble(shape, centre, s1 / 2, 0.0, amp)
        else:
            out += distorted_gaussian(shape, centre, (s1 / 2, s2 / 2), angle, amp, seed=rng)
    return out
