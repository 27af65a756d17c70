"""Restoration of real scenes with a trained model: filling nodata gaps (inpainting).

Inpainting is scene sampling with the scene's own valid pixels held as known pixels
(:func:`geodiff.sampling.sample_scene` with ``known=``): fused windows in blocks, lazy per
block, coefficients measured on the scene around the gaps. Known pixels act through the
denoiser's x_0 estimate (RePaint's replacement, Lugmayr et al. 2022, without its resampling
jumps; :mod:`geodiff.diffusion.conditions`): at every step a gap pixel is predicted by windows
that see the noised valid pixels around it at the same noise level, and the windows' fusion
carries that context across a gap wider than a window. Every estimate's mismatch with the valid
pixels is also carried into the gaps as its Laplace fill
(:func:`geodiff.consistency.harmonic_projection`), so that a gap never keeps a level of its own.
The output holds the real values exactly where the scene has data.
"""

from __future__ import annotations

import warnings

import dask.array as darr
import numpy as np
import xarray as xr

from geodiff.errors import GeodiffError, SceneError

#: Largest gap fraction inpainted unless told otherwise (Popescu et al. skip interferograms > 50 % missing).
MAX_GAP = 0.5


class NothingToFillWarning(UserWarning):
    """The scene has no gap: it is returned as it is."""


def strength_step(model, strength) -> int:
    """The trained timestep a restoration of ``strength`` (a fraction of the trained timesteps,
    in (0, 1]) starts from."""
    if not (isinstance(strength, (int, float)) and 0 < strength <= 1):
        raise GeodiffError(f"strength is a fraction of the trained timesteps in (0, 1], got {strength!r}")
    return round(strength * (model.schedule.timesteps - 1))


def inpaint(scene: xr.DataArray, model, n: int = 1, *, max_gap: float = MAX_GAP, strength: float | None = None,
            **options) -> xr.DataArray:
    """``n`` versions of ``scene`` with its NaN gaps filled by ``model``, consistent with the
    valid pixels around them.

    Parameters
    ----------
    scene
        A ``([band,] y, x)`` scene with NaN gaps (:func:`geodiff.open_scene`), in the model's
        bands and units.
    model
        A model trained on scenes like this one (``geodiff.fit``).
    n
        Number of fills; their spread per pixel is the fill's uncertainty.
    max_gap
        Largest fraction of missing pixels to fill (a scene with more is refused).
    strength
        SDEdit (Meng et al. 2022): the gaps begin as a Laplace fill of the pixels around them,
        noised to this fraction of the trained timesteps (1: pure noise, small: close to the
        Laplace fill), and the sampler runs from there. None (default): from pure noise. On
        Campi Flegrei one fill from pure noise beats Laplace fill on RMSE and nearest-neighbour
        fill on the variogram, and 0.7 lowers its RMSE further; on Mexico City pure noise has
        the lowest RMSE, on OPERA backscatter 0.5 the best texture (docs/benchmarks.md).
    options
        :func:`geodiff.sampling.sample_scene`'s ``seed``, ``sampler``, ``sample_steps``,
        ``resampling`` (RePaint's resampling jumps, with ``sampler="ddpm"`` or ``"ddim"``),
        ``stride``, ``block``, ``batch_size``, ``device``.

    Returns
    -------
    xarray.DataArray
        ``(sample, [band,] y, x)``, lazy: the real values where the scene has data, the fill in
        its gaps; the ``filled`` coordinate ``([band,] y, x)`` is True on the filled pixels. Attrs
        carry the provenance, ``restoration="inpaint"`` and the gap fraction.

    Raises
    ------
    geodiff.errors.GeodiffError
        A scene all gaps, or with more than ``max_gap`` missing, before any sampling; and what
        :func:`~geodiff.sampling.sample_scene` refuses.

    Warns
    -----
    NothingToFillWarning
        The scene has no gap: it comes back unchanged (``n`` copies, ``filled`` all False).
    """
    from geodiff.sampling import sample_scene

    if not (isinstance(max_gap, (int, float)) and 0 < max_gap <= 1):
        raise GeodiffError(f"max_gap is a fraction of the scene in (0, 1], got {max_gap!r}")
    start = None if strength is None else strength_step(model, strength)
    for name in ("coefficients", "method", "mask", "known", "labels", "low_res", "start", "observed"):
        if name in options:
            raise GeodiffError(f"inpainting sets {name} itself")
    if model.upsample_factor:
        raise GeodiffError("a super-resolution model upsamples coarse scenes (model.upsample); inpaint with a model "
                           "trained on scenes like this one")
    gaps = ~np.isfinite(scene)
    fraction = float(gaps.mean())
    if fraction == 1.0:
        raise SceneError("the scene is all gaps: there is nothing to fill from")
    if fraction > max_gap:
        raise SceneError(f"{fraction:.0%} of the scene is missing, more than max_gap={max_gap:.0%}: a fill would be "
                         "mostly invention; raise max_gap to fill it anyway")
    filled = xr.DataArray(darr.asarray(gaps.data), dims=scene.dims)
    if fraction == 0.0:
        warnings.warn("the scene has no gap: it is returned unchanged", NothingToFillWarning, stacklevel=2)
        out = xr.concat([scene] * n, dim="sample").assign_coords(sample=np.arange(n), filled=filled)
        out.attrs.update(restoration="inpaint", gap_fraction=0.0)
        return out
    synth = sample_scene(scene, n, model, coefficients="location", mask=False, method="fused", known=scene,
                         start=start, **options)
    real = darr.asarray(scene.data)
    out = synth.copy(data=darr.where(darr.isfinite(real)[None], real[None], synth.data).astype(np.float32))
    out = out.assign_coords(filled=filled)
    out.attrs.update(restoration="inpaint", gap_fraction=round(fraction, 6))
    if strength is not None:
        out.attrs["strength"] = float(strength)
    return out
