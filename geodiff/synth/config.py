"""Configuration of synthetic scenes: deformation sources and atmosphere, as small dataclasses.

Source positions are in the coordinates of the grid the scene is built on (metres for UTM,
degrees for a geographic grid); depths and sizes are always in metres. Each source knows its
LOS displacement on a :class:`~geodiff.synth.frame.LocalFrame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodiff.insar.geometry import project_los
from geodiff.synth.atmosphere import KOLMOGOROV_EXPONENT
from geodiff.synth.frame import LocalFrame
from geodiff.synth.shapes import SHAPES, random_shapes
from geodiff.synth.sources import mogi, okada, penny_crack

__all__ = ["Atmosphere", "Mogi", "Okada", "Shapes", "Sill", "Source"]


def _los(source, frame: LocalFrame, look: tuple, x: float, y: float, **params) -> np.ndarray:
    """LOS projection of a half-space ``source`` placed at ``(x, y)`` in the grid's CRS."""
    xc, yc = frame.to_local(x, y)
    return project_los(*source(frame.x, frame.y, xcen=xc, ycen=yc, **params), look_vector=look)


@dataclass(frozen=True)
class Mogi:
    """Point pressure source (Mogi 1958): centre ``(x, y)``, ``depth`` (m), volume change ``dV`` (m^3)."""

    x: float
    y: float
    depth: float
    dV: float
    nu: float = 0.25

    def los(self, frame: LocalFrame, look: tuple, rng: np.random.Generator) -> np.ndarray:
        return _los(mogi, frame, look, self.x, self.y, depth=self.depth, dV=self.dV, nu=self.nu)


@dataclass(frozen=True)
class Okada:
    """Rectangular dislocation (Okada 1985).

    Centroid ``(x, y)`` and ``depth`` (m), ``strike``/``dip``/``rake`` in degrees, ``length`` and
    ``width`` in m, ``slip`` and ``opening`` in m (see :func:`geodiff.synth.sources.okada`).
    """

    x: float
    y: float
    depth: float
    strike: float
    dip: float
    length: float
    width: float
    slip: float = 0.0
    rake: float = 0.0
    opening: float = 0.0
    nu: float = 0.25

    def los(self, frame: LocalFrame, look: tuple, rng: np.random.Generator) -> np.ndarray:
        return _los(
            okada, frame, look, self.x, self.y, depth=self.depth, strike=self.strike, dip=self.dip,
            length=self.length, width=self.width, slip=self.slip, rake=self.rake, opening=self.opening, nu=self.nu,
        )


@dataclass(frozen=True)
class Sill:
    """Horizontal penny-shaped crack: centre ``(x, y)``, ``depth`` and ``radius`` (m), opening volume ``dV`` (m^3)."""

    x: float
    y: float
    depth: float
    radius: float
    dV: float

    def los(self, frame: LocalFrame, look: tuple, rng: np.random.Generator) -> np.ndarray:
        return _los(penny_crack, frame, look, self.x, self.y, depth=self.depth, radius=self.radius, dV=self.dV)


@dataclass(frozen=True)
class Shapes:
    """GANInSAR's baseline: random geometric shapes drawn directly as LOS displacement (m)."""

    n_shapes: int | tuple[int, int] = (1, 4)
    amplitude: tuple[float, float] = (-0.05, 0.05)
    kinds: tuple[str, ...] = SHAPES

    def los(self, frame: LocalFrame, look: tuple, rng: np.random.Generator) -> np.ndarray:
        return random_shapes(
            frame.x.shape, n_shapes=self.n_shapes, kinds=self.kinds, amplitude=self.amplitude, seed=rng
        )


Source = Mogi | Okada | Sill | Shapes


@dataclass(frozen=True)
class Atmosphere:
    """Atmospheric delay of a scene, in mm of apparent LOS displacement.

    Attributes
    ----------
    turbulent_std : float
        Standard deviation of the turbulent screen, mm (0 for none).
    model : {"power_law", "exponential"}
        Structure of the turbulent screen (see :func:`geodiff.synth.atmosphere.turbulent`).
    exponent : float
        Power-law spectral exponent (8/3 for Kolmogorov turbulence).
    correlation_length : float
        e-folding length of the exponential covariance, m.
    stratified_k : float
        Stratified delay per metre of elevation, mm/m (needs a DEM; 0 for none).
    """

    turbulent_std: float = 5.0
    model: str = "power_law"
    exponent: float = KOLMOGOROV_EXPONENT
    correlation_length: float = 5000.0
    stratified_k: float = 0.0
