"""Stacks of labelled synthetic interferograms for training and evaluating networks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from geodiff.errors import GeodiffError
from geodiff.insar.constants import (
    SENTINEL1_HEADING_DESCENDING,
    SENTINEL1_INCIDENCE,
    SENTINEL1_WAVELENGTH,
)
from geodiff.insar.geometry import los_vector
from geodiff.insar.phase import displacement_to_phase
from geodiff.synth.config import Atmosphere, Mogi, Okada, Shapes, Sill, Source
from geodiff.synth.decorrelation import phase_noise
from geodiff.synth.decorrelation import unwrapping_errors as _unwrapping_errors
from geodiff.synth.frame import local_frame
from geodiff.synth.grid import template
from geodiff.synth.ramps import random_ramp
from geodiff.synth.rng import generator
from geodiff.synth.scene import assemble, los_deformation, turbulent_mm

__all__ = ["KINDS", "dataset", "random_source"]

KINDS = ("mogi", "okada", "sill", "shapes")


def random_source(kind: str, like: xr.DataArray, seed: int | np.random.Generator | None = None) -> Source:
    """A source of ``kind`` with random parameters in ranges typical of volcanic and tectonic InSAR.

    Centres fall in the central 60 % of the grid. Mogi and sills: depth 1.5-6 km, volume change
    +-1e5 to 5e6 m^3 (log-uniform); sills 1-3 km in radius. Okada: strike 0-360, dip 20-90,
    any rake, 2-10 km long, 2-6 km wide, top edge 0.2-4 km deep, slip 3 cm to 1 m (log-uniform).
    Shapes: 1-4 GANInSAR shapes of +-5 cm.

    Parameters
    ----------
    kind : {"mogi", "okada", "sill", "shapes"}
        Source type.
    like : xarray.DataArray
        Grid the source will be placed on (positions are drawn in its CRS).
    seed : int or numpy.random.Generator, optional
        Source of randomness.
    """
    rng = generator(seed)
    x, y = like[like.rio.x_dim].values, like[like.rio.y_dim].values
    fx, fy = rng.uniform(0.2, 0.8, 2)
    xc = float(x[0] + fx * (x[-1] - x[0]))
    yc = float(y[0] + fy * (y[-1] - y[0]))
    sign = rng.choice([-1.0, 1.0])
    if kind == "mogi":
        return Mogi(x=xc, y=yc, depth=rng.uniform(1500, 6000), dV=sign * 10 ** rng.uniform(5, 6.7))
    if kind == "sill":
        return Sill(x=xc, y=yc, depth=rng.uniform(1500, 5000), radius=rng.uniform(1000, 3000),
                    dV=sign * 10 ** rng.uniform(5, 6.7))
    if kind == "okada":
        dip = rng.uniform(20, 90)
        width = rng.uniform(2000, 6000)
        top = rng.uniform(200, 4000)
        return Okada(x=xc, y=yc, depth=top + 0.5 * width * np.sin(np.deg2rad(dip)), strike=rng.uniform(0, 360),
                     dip=dip, length=rng.uniform(2000, 10000), width=width, slip=10 ** rng.uniform(-1.5, 0),
                     rake=rng.uniform(-180, 180))
    if kind == "shapes":
        return Shapes()
    raise GeodiffError(f"kind must be one of {KINDS}, got {kind!r}")


def dataset(
    n: int,
    *,
    like: xr.DataArray | None = None,
    shape: tuple[int, int] = (128, 128),
    spacing: float = 100.0,
    crs: str = "EPSG:32633",
    kinds: Sequence[str] = ("mogi", "okada", "sill"),
    atmosphere: Atmosphere | None = Atmosphere(),
    ramp: float | None = 0.5,
    coherence: tuple[float, float] | float | None = (0.3, 0.95),
    looks: int = 4,
    unwrapping_errors: int = 0,
    heading: float = SENTINEL1_HEADING_DESCENDING,
    incidence: float | ArrayLike = SENTINEL1_INCIDENCE,
    wavelength: float = SENTINEL1_WAVELENGTH,
    dtype: type = np.float32,
    seed: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """``n`` labelled synthetic interferograms stacked on a ``sample`` dimension.

    Each example has one random source (:func:`random_source`, its kind drawn from ``kinds``),
    a turbulent atmosphere, a planar ramp, decorrelation noise for a coherence drawn per
    example, and optional unwrapping errors. Noise components are drawn for the whole stack in
    one vectorised call each; only the deformation is computed example by example. The result
    is a plain georeferenced Dataset: write it with ``to_netcdf``/``to_zarr`` or the io layer.

    Parameters
    ----------
    n : int
        Number of examples.
    like : xarray.DataArray, optional
        Grid of every example (2-D with a CRS); by default a north-up grid of ``shape`` pixels
        of ``spacing`` metres in ``crs``.
    shape, spacing, crs
        The default grid (ignored when ``like`` is given).
    kinds : sequence of str
        Source kinds to draw from (:data:`KINDS`).
    atmosphere : Atmosphere, optional
        Turbulent screen configuration (mm); its stratified part is not used (no DEM).
    ramp : float, optional
        Standard deviation (rad) of the planar ramp coefficients.
    coherence : (float, float) or float, optional
        Range to draw each example's coherence from, or a fixed value; ``None`` for no noise.
    looks : int
        Number of looks of the decorrelation noise.
    unwrapping_errors : int
        Number of whole-cycle regions per example.
    heading, incidence, wavelength
        Acquisition geometry (degrees) and radar wavelength (m).
    dtype : numpy dtype
        Floating type of the stored arrays.
    seed : int or numpy.random.Generator, optional
        Source of randomness; the same seed gives the same stack.

    Returns
    -------
    xarray.Dataset
        Variables ``deformation`` (m), ``atmosphere``, ``ramp``, ``noise``, ``unwrapped``,
        ``wrapped`` (rad) and ``coherence`` on ``(sample, y, x)``, and the label coordinate
        ``source`` (the kind of each example's source), with the grid's CRS.
    """
    if int(n) < 1:
        raise GeodiffError(f"n must be a positive number of examples, got {n}")
    n = int(n)
    rng = generator(seed)
    like = template(shape, spacing, crs=crs) if like is None else like
    frame = local_frame(like)
    grid = like.shape
    look = los_vector(heading, incidence)
    labels = [kinds[i] for i in rng.integers(len(kinds), size=n)]
    defo = np.empty((n, *grid))
    for i, kind in enumerate(labels):
        defo[i] = los_deformation(frame, [random_source(kind, like, rng)], look, rng)
    atmo = np.zeros((n, *grid))
    if atmosphere is not None:
        atmo = displacement_to_phase(turbulent_mm(atmosphere, grid, frame, rng, size=n) / 1000.0, wavelength)
    ramps = np.zeros((n, *grid)) if not ramp else random_ramp(grid, std=ramp, size=n, seed=rng)
    if coherence is None:
        coh = np.ones(n)
        noise = np.zeros((n, *grid))
    else:
        coh = np.full(n, float(coherence)) if np.ndim(coherence) == 0 else rng.uniform(*coherence, n)
        noise = phase_noise(np.broadcast_to(coh[:, None, None], (n, *grid)), looks, seed=rng)
    if unwrapping_errors:
        noise += _unwrapping_errors(grid, n_regions=int(unwrapping_errors), size=n, seed=rng)
    coords = {**like.coords, "sample": np.arange(n), "source": ("sample", np.array(labels, dtype=object))}
    return assemble(defo, atmo, ramps, noise, np.broadcast_to(coh[:, None, None], (n, *grid)), like,
                    dims=("sample", *like.dims), coords=coords, wavelength=wavelength, heading=heading, looks=looks,
                    dtype=dtype)

