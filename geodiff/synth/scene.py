"""Synthetic interferograms on a georeferenced grid: labelled components and their sum."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from geodiff.errors import GeodiffError, SceneError
from geodiff.insar.constants import (
    SENTINEL1_HEADING_DESCENDING,
    SENTINEL1_INCIDENCE,
    SENTINEL1_WAVELENGTH,
)
from geodiff.insar.geometry import los_vector
from geodiff.insar.phase import displacement_to_phase, wrap
from geodiff.synth import atmosphere as atm
from geodiff.synth.config import Atmosphere, Source
from geodiff.synth.decorrelation import phase_noise
from geodiff.synth.decorrelation import unwrapping_errors as _unwrapping_errors
from geodiff.synth.frame import LocalFrame, local_frame
from geodiff.synth.ramps import random_ramp
from geodiff.synth.rng import generator

__all__ = ["VARIABLE_ATTRS", "assemble", "deformation", "interferogram", "labelled_dataset", "los_deformation",
           "turbulent_mm"]

VARIABLE_ATTRS = {
    # name: (long_name, units) of each variable of a synthetic interferogram
    "deformation": ("LOS displacement of the deformation sources, positive towards the satellite", "m"),
    "atmosphere": ("atmospheric phase screen (turbulent + stratified)", "rad"),
    "ramp": ("orbital ramp phase", "rad"),
    "noise": ("decorrelation phase noise and unwrapping errors", "rad"),
    "unwrapped": ("unwrapped interferometric phase", "rad"),
    "wrapped": ("wrapped interferometric phase, in [-pi, pi)", "rad"),
    "coherence": ("interferometric coherence", "1"),
}


def labelled_dataset(
    values: dict[str, np.ndarray],
    like: xr.DataArray,
    *,
    dims: tuple[str, ...],
    coords,
    wavelength: float,
    heading: float,
    looks: int,
    dtype: type = np.float64,
) -> xr.Dataset:
    """Components of synthetic interferograms as a georeferenced Dataset, NaN where ``like`` is NaN."""
    mask = np.isnan(np.asarray(like.values, dtype=float))
    data = {}
    for name, arr in values.items():
        long_name, units = VARIABLE_ATTRS[name]
        data[name] = xr.DataArray(
            np.where(mask, np.nan, arr).astype(dtype, copy=False), dims=dims, coords=coords,
            attrs={"long_name": long_name, "units": units},
        )
    ds = xr.Dataset(data)
    ds.attrs.update(
        wavelength=wavelength,
        heading=heading,
        looks=int(looks),
        sign_convention="phase = -4 pi / wavelength * LOS displacement (positive towards the satellite)",
    )
    return ds if like.rio.crs is None else ds.rio.write_crs(like.rio.crs)


def turbulent_mm(
    atmosphere: Atmosphere, shape: tuple[int, int], frame: LocalFrame, rng: np.random.Generator, size: int | None = None
) -> np.ndarray:
    """Turbulent screen(s) (mm) of an :class:`Atmosphere` on a local frame; zeros when its std is 0."""
    if not atmosphere.turbulent_std > 0:
        return np.zeros(shape if size is None else (size, *shape))
    return atm.turbulent(
        shape, std=atmosphere.turbulent_std, model=atmosphere.model, exponent=atmosphere.exponent,
        correlation_length=atmosphere.correlation_length, spacing=frame.spacing, size=size, seed=rng,
    )


def _grid_values(value, like: xr.DataArray, name: str) -> np.ndarray:
    """A scalar, array or DataArray on ``like``'s grid, as an ndarray of its shape."""
    arr = np.asarray(value.values if isinstance(value, xr.DataArray) else value, dtype=float)
    if arr.ndim == 0:
        return np.full(like.shape, float(arr))
    if arr.shape != like.shape:
        raise GeodiffError(f"{name} has shape {arr.shape} but the grid is {like.shape}; reproject it onto the grid")
    return arr


def los_deformation(
    frame: LocalFrame,
    sources: Sequence[Source],
    look: tuple,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sum of the sources' LOS displacement (m) on a local frame for a ground-to-satellite ``look`` vector."""
    total = np.zeros(frame.x.shape)
    for src in sources:
        if not hasattr(src, "los"):
            raise GeodiffError(f"sources must be Mogi, Okada, Sill or Shapes configurations, got {type(src).__name__}")
        total += src.los(frame, look, rng)
    return total


def deformation(
    like: xr.DataArray,
    sources: Sequence[Source],
    *,
    heading: float = SENTINEL1_HEADING_DESCENDING,
    incidence: float | ArrayLike = SENTINEL1_INCIDENCE,
    seed: int | np.random.Generator | None = None,
) -> xr.DataArray:
    """LOS displacement (m) of deformation sources on ``like``'s grid, georeferenced like it.

    Parameters
    ----------
    like : xarray.DataArray
        2-D ``(y, x)`` grid with a CRS; its values are ignored except for NaN (kept as NaN).
    sources : sequence of Mogi, Okada, Sill or Shapes
        Source configurations (positions in ``like``'s CRS, sizes in metres).
    heading, incidence : float or array_like
        Flight heading and incidence angle in degrees (Sentinel-1 descending by default).
    seed : int or numpy.random.Generator, optional
        Randomness for the random-shape sources.

    Returns
    -------
    xarray.DataArray
        LOS displacement in metres, positive towards the satellite.
    """
    frame = local_frame(like)
    look = los_vector(heading, _grid_values(incidence, like, "incidence"))
    los = los_deformation(frame, sources, look, generator(seed))
    los = np.where(np.isnan(like.values), np.nan, los)
    name, units = VARIABLE_ATTRS["deformation"]
    return _like(like, los, name, units).rename("deformation")


def _like(like: xr.DataArray, values: np.ndarray, long_name: str, units: str) -> xr.DataArray:
    out = xr.DataArray(values, dims=like.dims, coords=like.coords, attrs={"long_name": long_name, "units": units})
    if like.rio.crs is not None:
        out = out.rio.write_crs(like.rio.crs)
    return out


def interferogram(
    like: xr.DataArray,
    *,
    sources: Sequence[Source] = (),
    atmosphere: Atmosphere | None = None,
    dem: xr.DataArray | ArrayLike | None = None,
    ramp: float | ArrayLike | None = None,
    coherence: float | ArrayLike | xr.DataArray | None = None,
    looks: int = 1,
    unwrapping_errors: int = 0,
    heading: float = SENTINEL1_HEADING_DESCENDING,
    incidence: float | ArrayLike = SENTINEL1_INCIDENCE,
    wavelength: float = SENTINEL1_WAVELENGTH,
    seed: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """A labelled synthetic interferogram on ``like``'s grid.

    ``unwrapped = -4 pi / wavelength * deformation + atmosphere + ramp + noise`` and
    ``wrapped = wrap(unwrapped)``; every component is returned, so the clean deformation is the
    label of the noisy phase.

    Parameters
    ----------
    like : xarray.DataArray
        2-D ``(y, x)`` grid with a CRS (projected or geographic); NaN pixels stay NaN in every
        output.
    sources : sequence of Mogi, Okada, Sill or Shapes
        Deformation sources (see :mod:`geodiff.synth.config`).
    atmosphere : Atmosphere, optional
        Turbulent and stratified delay (mm); ``None`` for none.
    dem : xarray.DataArray or array_like, optional
        Elevation (m) on the grid, for the stratified delay.
    ramp : float or array_like, optional
        Standard deviation (rad) of a random planar orbital ramp's coefficients, or a ramp (rad)
        on the grid.
    coherence : float, array_like or xarray.DataArray, optional
        Coherence in ``[0, 1]`` (scalar or per pixel); ``None`` means 1 (no decorrelation noise).
    looks : int
        Number of looks of the decorrelation noise.
    unwrapping_errors : int
        Number of regions shifted by whole cycles in the unwrapped phase.
    heading, incidence : float or array_like
        Flight heading and incidence angle in degrees.
    wavelength : float
        Radar wavelength in metres.
    seed : int or numpy.random.Generator, optional
        Source of randomness; the same seed gives the same scene.

    Returns
    -------
    xarray.Dataset
        ``deformation`` (m), ``atmosphere``, ``ramp``, ``noise``, ``unwrapped``, ``wrapped`` (rad)
        and ``coherence``, georeferenced like ``like``.
    """
    rng = generator(seed)
    frame = local_frame(like)
    shape = like.shape
    if np.isnan(np.asarray(like.values, dtype=float)).all():
        raise SceneError("the grid is all NaN; give a grid with at least some valid pixels")
    look = los_vector(heading, _grid_values(incidence, like, "incidence"))
    defo = los_deformation(frame, sources, look, rng)

    atmo_mm = np.zeros(shape)
    if atmosphere is not None:
        atmo_mm += turbulent_mm(atmosphere, shape, frame, rng)
        if atmosphere.stratified_k:
            if dem is None:
                raise GeodiffError("a stratified atmosphere (stratified_k != 0) needs dem= on the grid")
            atmo_mm += atm.stratified(_grid_values(dem, like, "dem"), atmosphere.stratified_k)
    atmo = displacement_to_phase(atmo_mm / 1000.0, wavelength)

    if ramp is None:
        ramp_phase = np.zeros(shape)
    elif np.ndim(ramp) == 0 and not isinstance(ramp, xr.DataArray):
        ramp_phase = random_ramp(shape, std=float(ramp), seed=rng)
    else:
        ramp_phase = _grid_values(ramp, like, "ramp")

    coh = np.ones(shape) if coherence is None else _grid_values(coherence, like, "coherence")
    noise = phase_noise(coh, looks, seed=rng) if coherence is not None else np.zeros(shape)
    if unwrapping_errors:
        noise = noise + _unwrapping_errors(shape, n_regions=int(unwrapping_errors), seed=rng)

    return assemble(defo, atmo, ramp_phase, noise, coh, like, dims=like.dims, coords=like.coords,
                    wavelength=wavelength, heading=heading, looks=looks)


def assemble(deformation, atmosphere, ramp, noise, coherence, like: xr.DataArray, *, dims, coords, wavelength: float,
             heading: float, looks: int, dtype: type = np.float64) -> xr.Dataset:
    """An interferogram from its components: ``unwrapped = -4 pi / wavelength * deformation +
    atmosphere + ramp + noise`` (deformation in m, the rest in rad), ``wrapped`` its wrap, every
    component kept as the label of the noisy phase (:func:`labelled_dataset`)."""
    unwrapped = displacement_to_phase(deformation, wavelength) + atmosphere + ramp + noise
    values = {
        "deformation": deformation,
        "atmosphere": atmosphere,
        "ramp": ramp,
        "noise": noise,
        "unwrapped": unwrapped,
        "wrapped": wrap(unwrapped),
        "coherence": coherence,
    }
    return labelled_dataset(values, like, dims=dims, coords=coords, wavelength=wavelength, heading=heading,
                            looks=looks, dtype=dtype)

