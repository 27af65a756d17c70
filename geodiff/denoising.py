"""Denoising interferograms: a diffusion model of clean deformation given the noisy interferogram.

After Popescu, Anantrasirichai, Biggs and Zhu (Bristol): train on pairs built from physics
(:func:`denoising_pairs`: deformation sources of :mod:`geodiff.synth` added to real noise from
short interferograms, or to synthetic atmosphere when none is given) with a spatially correlated
forward process, then restore real interferograms. Here the network learns the clean tile given
the noisy one as its conditioning image (``fit(clean, condition=noisy)``, both scaled with the
noisy tile's coefficients, the only ones known when restoring), and :func:`denoise` samples the
clean scene with fused windows in blocks, like any scene; the mean of several samples is the
estimate and their spread its uncertainty.

Sampling does not start from pure noise. Because the forward process's noise is correlated like
the atmosphere, the noisy scene itself is taken as the diffusion state at the step whose noise
level is the scene's (:func:`scene_noise_level`: the training pairs' noise in physical units,
measured when the denoiser is fitted, seen through the scaling of the scene's own tiles), and
the sampler walks down from there. Drawn from pure noise, the samples of a briefly trained
denoiser forget their input: on single tiles whose noisy input is 6.5 mm off, 10.1 mm RMSE,
against 5.4 started from the tiles (docs/benchmarks.md). The level is the scene's, not the
pairs' median in normalised units, because the noise is a number of millimetres whatever the
signal: a tile with a strong bowl has a wide min-max range, so the same noise is a small part
of it, and starting it as noisy as a typical tile made the sampler invent an offset (48.9 mm
RMSE on a tile with a 261 mm bowl, 13.1 at the tile's own level).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from geodiff.errors import GeodiffError, SceneError
from geodiff.restoration import MAX_GAP, strength_step

# The scene is taken to be twice as noisy (in standard deviation) as the training pairs were: real
# noise is not the forward process's Gaussian, and the extra steps let the sampler remove it.
# Measured on Mexico City noise (one model, 16 tiles, the pairs' median level): the mean of 4 DDPM
# samples has 5.4 mm RMSE at 2x, 5.6 at 2.8x, 6.3 at 4x; a deterministic solver 5.9, 5.7, 5.6, 5.5
# and 5.5 at 0.7x, 1x, 1.4x, 2x and 2.8x. At each scene's own level (48 tiles, noisy 7.2 mm):
# 5.76, 5.67 and 5.65 at 1.4x, 2x and 2.8x (docs/benchmarks.md).
LEVEL_MARGIN = 2.0


def default_noise(tile: int) -> dict:
    """The forward process denoisers train with: a von Karman field of the Kolmogorov exponent
    (the spectrum of InSAR atmospheres) with an outer scale of a quarter tile, in pixels."""
    return {"kind": "power", "exponent": 8 / 3, "length": max(tile / 4, 1.0)}


def denoising_pairs(n: int, *, tile: int = 64, noise: xr.DataArray | None = None, spacing: float = 100.0,
                    kinds: Sequence[str] = ("mogi", "okada", "sill"), max_nodata: float = MAX_GAP,
                    seed: int = 0) -> xr.Dataset:
    """``n`` (clean, noisy) line-of-sight displacement tiles in mm, ``(sample, y, x)``.

    ``clean`` is the deformation of one random source per tile (:func:`geodiff.synth.dataset`,
    Sentinel-1 geometry); ``noisy`` adds noise to it: a random ``tile``-pixel crop of a real
    interferogram of ``noise`` (a ``(time, y, x)`` stack in mm, e.g. short interferograms whose
    signal is atmosphere and decorrelation; crops with more than ``max_nodata`` missing are
    redrawn, gaps filled by their nearest value), or, without ``noise``, synthetic turbulent
    atmosphere, a ramp and decorrelation noise from :mod:`geodiff.synth`. The ``source``
    coordinate names each tile's source kind.
    """
    from geodiff.insar.phase import phase_to_displacement
    from geodiff.synth import Atmosphere, dataset, template

    rng = np.random.default_rng(seed)
    like = template((tile, tile), spacing)
    synthetic = noise is None
    ds = dataset(n, like=like, kinds=kinds, atmosphere=Atmosphere() if synthetic else None,
                 ramp=0.5 if synthetic else None, coherence=(0.3, 0.95) if synthetic else None, seed=rng)
    clean = ds["deformation"].values * 1000.0
    if synthetic:
        added = phase_to_displacement(ds["atmosphere"].values + ds["ramp"].values + ds["noise"].values) * 1000.0
    else:
        added = noise_crops(noise, n, tile, max_nodata, rng)
    coords = {"sample": np.arange(n), "y": like["y"].values, "x": like["x"].values, "source": ds["source"]}
    out = xr.Dataset({"clean": (("sample", "y", "x"), clean.astype(np.float32)),
                      "noisy": (("sample", "y", "x"), (clean + added).astype(np.float32))}, coords=coords)
    for name in out.data_vars:
        out[name].attrs["units"] = "mm"
    out.attrs["noise"] = "synthetic atmosphere, ramp, decorrelation" if synthetic else "real interferograms"
    return out.rio.write_crs(like.rio.crs)


def noise_crops(stack: xr.DataArray, n: int, tile: int, max_nodata: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` random ``tile``-pixel crops of a ``(time, y, x)`` noise stack, each with at most
    ``max_nodata`` missing (gaps filled by their nearest value) and its mean removed."""
    from geodiff.tiling.fill import fill_planes

    if stack.ndim != 3:
        raise GeodiffError(f"noise is a (time, y, x) stack of interferograms in mm, got dims {stack.dims}")
    t, h, w = stack.shape
    if h < tile or w < tile:
        raise GeodiffError(f"noise interferograms of {h} x {w} pixels are smaller than a {tile}-pixel tile")
    values = np.asarray(stack.values, np.float64)
    out = np.empty((n, tile, tile))
    for k in range(n):
        for _ in range(100):
            i, r, c = rng.integers(t), rng.integers(h - tile + 1), rng.integers(w - tile + 1)
            crop = values[i, r:r + tile, c:c + tile]
            if np.isnan(crop).mean() <= max_nodata:
                break
        else:
            raise GeodiffError(f"no crop of the noise stack has at most {max_nodata:.0%} missing")
        crop = fill_planes(crop[None], "nearest")[0]
        out[k] = crop - crop.mean()  # noise, not a reference offset
    return out


def fit_denoiser(pairs: xr.Dataset, *, noise=None, **options):
    """A denoising model trained on ``pairs`` (:func:`denoising_pairs`): ``geodiff.fit`` of the
    clean tiles conditioned on the noisy ones, with the correlated forward process of
    :func:`default_noise` unless ``noise`` is given. ``options`` are ``fit``'s (tile defaults to
    the pairs' size)."""
    from geodiff.training import fit

    for name in ("clean", "noisy"):
        if name not in pairs:
            raise GeodiffError(f"denoising pairs need a {name!r} variable (geodiff.denoising.denoising_pairs)")
    tile = options.pop("tile", min(pairs.sizes["y"], pairs.sizes["x"]))
    model = fit(pairs["clean"], tile, condition=pairs["noisy"], noise=noise or default_noise(tile), **options)
    model.summary["noise_std"] = noise_std(pairs)
    return model


def noise_std(pairs: xr.Dataset) -> float:
    """The median standard deviation of ``noisy - clean`` over the pairs, in their units (mm)."""
    return float((pairs["noisy"] - pairs["clean"]).std(("y", "x")).median())


def scene_noise_level(scene: xr.DataArray, model) -> float:
    """The noise level of ``scene`` (gap-free) in the normalised space the model sees it in: the
    model's training noise (``summary["noise_std"]``, physical units) times the median over the
    scene's tiles of the scaler's gain there (normalised units per physical unit; one pass over
    the scene)."""
    from geodiff.tiling import TileGrid

    std = model.summary.get("noise_std")
    if std is None:
        raise GeodiffError("this model does not know the noise of its training pairs (fit it with "
                           "geodiff.denoising.fit_denoiser), so give denoise a strength in (0, 1]")
    tiles = TileGrid.from_scene(scene, model.tile, 0, edge="pad").stack(scene, tiles_per_chunk=1)
    coefficients = model.scaler.fit(tiles)
    gain = model.scaler.transform(tiles + 1.0, coefficients) - model.scaler.transform(tiles, coefficients)
    return std * float(np.nanmedian(gain.median(("y", "x")).values))


def start_step(model, scene: xr.DataArray | None = None, strength: float | None = None) -> int:
    """The trained timestep :func:`denoise` starts from: ``strength`` of the trained timesteps,
    or by default the step whose noise-to-signal ratio ``(1 - abar) / abar`` is that of
    :data:`LEVEL_MARGIN` times the ``scene``'s :func:`scene_noise_level`."""
    if strength is not None:
        return strength_step(model, strength)
    if scene is None:
        raise GeodiffError("the start step is the scene's noise level: give the scene, or a strength in (0, 1]")
    level = scene_noise_level(scene, model)
    abar = model.schedule.alphas_cumprod.double().numpy()
    return int(np.argmin(np.abs((1 - abar) / abar - (LEVEL_MARGIN * level) ** 2)))


def denoise(scene: xr.DataArray, model, n: int = 4, *, gaps: str = "fill", max_gap: float = MAX_GAP,
            samples: bool = False, strength: float | None = None, sampler: str = "ddpm", **options) -> xr.Dataset:
    """The clean estimate of a noisy ``scene`` from a denoising model, in the scene's units.

    Parameters
    ----------
    scene
        A ``(y, x)`` interferogram or rate map in the model's units (mm), NaN as gaps.
    model
        A model from :func:`fit_denoiser` (or ``fit(clean, condition=noisy)``).
    n
        Samples drawn; ``denoised`` is their mean and ``spread`` their standard deviation.
    gaps
        ``"fill"``: the estimate covers the gaps too; ``"keep"``: NaN where the scene is.
    max_gap
        Largest fraction of missing pixels accepted (Popescu et al. skip interferograms more than
        half missing).
    samples
        Also return the ``n`` samples (``samples`` variable).
    strength
        The noise level the scene is taken at, as a fraction of the trained timesteps: the
        sampler starts there from the scene itself. None: from the scene's noise level, the
        model's training noise in the scene's normalised space (:func:`start_step`).
    sampler
        A stochastic sampler ("ddpm") gives samples that differ, whose spread is the
        uncertainty; a deterministic one gives ``n`` equal samples.
    options
        :func:`geodiff.sampling.sample_scene`'s ``seed``, ``sample_steps``, ``stride``, ``block``, ...

    Returns
    -------
    xarray.Dataset
        ``denoised`` and ``spread`` on the scene's grid (lazy), ``samples`` if asked; attrs with
        the provenance.

    Raises
    ------
    geodiff.errors.GeodiffError
        A model not conditioned on paired scenes, a scene of other units, all gaps or more than
        ``max_gap`` missing, an unknown ``gaps``, a ``strength`` outside (0, 1] or none for a
        model that does not know its noise level.
    """
    from geodiff.sampling import sample_scene
    from geodiff.upsampling import interpolated

    if model.conditioning != "paired":
        raise GeodiffError("denoising needs a model conditioned on noisy scenes: geodiff.denoising.fit_denoiser")
    if gaps not in ("fill", "keep"):
        raise GeodiffError(f"gaps must be 'fill' or 'keep', got {gaps!r}")
    for name in ("coefficients", "method", "mask", "known", "low_res", "observed", "start"):
        if name in options:
            raise GeodiffError(f"denoising sets {name} itself")
    fraction = float((~np.isfinite(scene)).mean())
    if fraction == 1.0:
        raise SceneError("the scene is all gaps: there is nothing to denoise")
    if fraction > max_gap:
        raise SceneError(f"{fraction:.0%} of the scene is missing, more than max_gap={max_gap:.0%}: raise max_gap to "
                         "denoise it anyway")
    condition = interpolated(scene, 1, model.scaler).assign_coords(scene.coords)  # gaps filled, per chunk
    start = start_step(model, condition, strength)
    drawn = sample_scene(scene, n, model, sampler=sampler, coefficients="location", mask=gaps == "keep",
                         method="fused", low_res=condition, observed=condition, start=start, **options)
    out = xr.Dataset({"denoised": drawn.mean("sample"), "spread": drawn.std("sample")})
    if samples:
        out["samples"] = drawn
    for name in out.data_vars:
        out[name].attrs["units"] = scene.attrs.get("units", "")
    out.attrs.update({k: v for k, v in drawn.attrs.items() if isinstance(v, (str, int, float))},
                     restoration="denoise", gap_fraction=round(fraction, 6), samples=n)
    if strength is not None:
        out.attrs["strength"] = float(strength)
    return out
