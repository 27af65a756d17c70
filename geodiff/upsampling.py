"""Super-resolution: a coarse scene to a finer grid with a model trained by ``fit(..., upsample=f)``.

The model learned fine tiles from their area-averaged versions (Tuel et al. 2023 reach full
resolution with a 128 -> 256 model; SR3, Saharia et al. 2022, conditions the denoiser on the
interpolated low-resolution image). Upsampling a scene is scene sampling on the finer grid
(:func:`geodiff.sampling.sample_scene`, fused windows in blocks, lazy per block) with:

- the finer grid: the coarse transform with ``f``-times smaller pixels, the same CRS, and the
  coarse nodata mask repeated onto it;
- coefficients measured on the coarse scene: ``"location"`` coefficients of the coarse scene
  repeated onto the finer grid are exactly those of each tile's coarse version, which is what
  the model was trained to be scaled with;
- the conditioning field: the coarse scene (gaps filled by their nearest value) interpolated
  bilinearly onto the finer grid in the scaler's space (dB for backscatter), as the network
  resized each coarse tile in training, cut per window with the fused windows;
- data consistency (``consistent=True``, the default): every x_0 estimate is projected so that
  its block means are the coarse scene (:mod:`geodiff.consistency`);
- a start (``strength``): SDEdit (Meng et al. 2022) from the bicubic interpolation of the coarse
  scene, taken as the diffusion state at ``strength`` of the trained timesteps: its missing
  detail plays the noise, the sampler walks down from there (as :func:`geodiff.denoising.denoise`
  starts from the noisy scene). Pure noise (the default) gives the truest texture and loses
  PSNR to bicubic; a small strength keeps bicubic's PSNR and adds detail (docs/benchmarks.md).
"""

from __future__ import annotations

import warnings

import dask.array as darr
import numpy as np
import xarray as xr
from affine import Affine

from geodiff.errors import GeodiffError, SceneError
from geodiff.io.scene import GeoreferenceWarning

#: Relative tolerance on the coarse pixel size against ``factor`` times the model's.
PIXEL_SIZE_TOLERANCE = 1e-3


def upsample(model, coarse: xr.DataArray, n: int = 1, *, factor: int | None = None, consistent: bool = True,
             strength: float | None = None, **options) -> xr.DataArray:
    """``n`` fine versions of ``coarse`` on a grid ``model.upsample_factor`` times finer.

    See :meth:`geodiff.model.DiffusionModel.upsample`.
    """
    from geodiff.restoration import strength_step
    from geodiff.sampling import sample_scene

    start = None if strength is None else strength_step(model, strength)
    f = check_upsampling(model, coarse, factor)
    for name in ("coefficients", "method", "low_res", "consistent_with", "known", "observed", "start"):
        if name in options:
            raise GeodiffError(f"upsampling sets {name} itself (coefficients of the coarse scene, fused windows)")
    if start is not None:
        # A stochastic sampler, as denoise's: samples differ wherever more than one step lies below the start.
        options.setdefault("sampler", "ddpm")
    fine = fine_template(coarse, f)
    observed = None if start is None else interpolated(coarse, f, model.scaler, mode="bicubic")
    out = sample_scene(fine, n, model, coefficients="location", method="fused",
                       low_res=interpolated(coarse, f, model.scaler), consistent_with=fine if consistent else None,
                       observed=observed, start=start, **options)
    out.attrs.update(upsample_factor=f, coarse_shape=[coarse.sizes["y"], coarse.sizes["x"]],
                     consistent=int(consistent))
    if start is not None:
        out.attrs.update(strength=float(strength), start_from="the bicubic interpolation of the coarse scene")
    return out


def check_upsampling(model, coarse: xr.DataArray, factor: int | None) -> int:
    """The model's factor, once the request is known to fit it.

    Raises
    ------
    geodiff.errors.GeodiffError
        Not an upsampling model, another ``factor`` than the model's, a coarse scene of other
        bands or units, of another pixel size than ``factor`` times the model's, or too small
        for one fine tile.
    """
    f = model.upsample_factor
    if not f:
        raise GeodiffError("this model does not upsample: train one with fit(..., upsample=2)")
    if factor is not None and factor != f:
        raise GeodiffError(f"the model upsamples by {f}, not {factor}: train one with fit(..., upsample={factor})")
    stacked = [d for d in coarse.dims if d not in ("band", "y", "x")]
    if stacked:
        raise SceneError(f"upsample one coarse scene, (y, x) or (band, y, x); this one also has {stacked}")
    model._check_compatible(coarse)
    size = model.summary.get("pixel_size")
    if coarse.rio.crs is None:
        warnings.warn("the coarse scene has no CRS: the fine scene is on a pixel grid", GeoreferenceWarning, stacklevel=3)
    elif size is not None:
        dx, dy = coarse.rio.resolution()
        have, want = np.array([abs(dy), abs(dx)]), f * np.asarray(size)
        if not np.allclose(have, want, rtol=PIXEL_SIZE_TOLERANCE):
            raise SceneError(f"the coarse scene's pixels are {have[0]:g} x {have[1]:g}; this model upsamples "
                             f"{want[0]:g} x {want[1]:g} pixels (its training pixels times {f})")
    th, tw = model.tile
    if coarse.sizes["y"] * f < th or coarse.sizes["x"] * f < tw:
        raise SceneError(f"a coarse scene of {coarse.sizes['y']} x {coarse.sizes['x']} pixels upsampled by {f} is "
                         f"smaller than the model's {th}x{tw} tile")
    return int(f)


def fine_template(coarse: xr.DataArray, factor: int) -> xr.DataArray:
    """The finer grid: each coarse pixel repeated ``factor`` x ``factor`` times (lazily), on
    coordinates and a transform with ``factor``-times smaller pixels, CRS and nodata kept."""
    data = darr.asarray(coarse.data)
    data = darr.repeat(darr.repeat(data, factor, axis=-2), factor, axis=-1)
    coords = {"y": _finer(coarse["y"].values, factor), "x": _finer(coarse["x"].values, factor)}
    if "band" in coarse.dims:
        coords["band"] = coarse["band"].values
    fine = xr.DataArray(data, dims=coarse.dims, coords=coords, attrs=dict(coarse.attrs), name=coarse.name)
    if coarse.rio.crs is not None:
        fine = fine.rio.write_crs(coarse.rio.crs).rio.write_transform(
            coarse.rio.transform(recalc=True) * Affine.scale(1 / factor))
    fine.encoding = {k: v for k, v in coarse.encoding.items() if k in ("_FillValue", "source")}
    return fine


def _finer(centres: np.ndarray, factor: int) -> np.ndarray:
    """Pixel centres of a ``factor``-times finer axis over the same extent."""
    step = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
    first_edge = float(centres[0]) - step / 2
    return first_edge + (np.arange(len(centres) * factor) + 0.5) * step / factor


#: Halo (coarse pixels) a chunk needs for its resize to be the whole scene's: the kernel's reach.
HALO = {"bilinear": 1, "bicubic": 2}


def interpolated(coarse: xr.DataArray, factor: int, scaler, mode: str = "bilinear") -> xr.DataArray:
    """``coarse`` gap-filled and interpolated onto the finer grid in the scaler's space (torch's
    ``align_corners=False`` resize; ``"bilinear"`` is the network's conditioning field,
    ``"bicubic"`` the start of :func:`upsample` with a strength), returned in physical units,
    lazily per chunk: a gap-free scene's field is the whole scene's resize, whatever its chunks."""
    data = darr.asarray(coarse.data).astype(np.float32)
    halo = HALO[mode]
    axes = {data.ndim - 2: halo, data.ndim - 1: halo}
    chunks = tuple(c if k < data.ndim - 2 else tuple(factor * v for v in c) for k, c in enumerate(data.chunks))
    # Edge replication is what torch's resize does at the scene's border too.
    field = darr.map_overlap(_resize_block, data, depth=axes, boundary="nearest", trim=False, chunks=chunks,
                             dtype=np.float32, factor=factor, db=bool(scaler.db), floor=scaler.db_floor, mode=mode)
    return xr.DataArray(field, dims=coarse.dims)


def _resize_block(block: np.ndarray, factor: int, db: bool, floor: float, mode: str) -> np.ndarray:
    """One chunk with its halo, resized by ``factor``, halo cut off."""
    import torch
    import torch.nn.functional as F

    from geodiff.scaling.db import from_db, to_db
    from geodiff.tiling.fill import fill_planes

    planes = block if block.ndim == 3 else block[None]
    values = fill_planes(to_db(planes, floor) if db else planes, "nearest")
    values = np.nan_to_num(values, nan=0.0)  # a chunk with no data: masked in the output anyway
    up = F.interpolate(torch.from_numpy(np.ascontiguousarray(values, np.float32))[None], scale_factor=factor,
                       mode=mode, align_corners=False)[0].numpy()
    cut = factor * HALO[mode]
    up = up[:, cut:-cut, cut:-cut]
    up = from_db(up) if db else up
    return (up if block.ndim == 3 else up[0]).astype(np.float32)


def two_stage(coarse_model, model, n: int, *, like, seed: int = 0, coarse_options: dict | None = None,
              factor: int | None = None, **options) -> xr.DataArray:
    """``n`` coarse scenes from ``coarse_model`` on the grid of ``like``, each upsampled by
    ``model``: ``(sample, [band,] y, x)`` on the finer grid.

    The coarse scenes are computed here, once (the fine ones are scaled with their coefficients,
    measured when the fine scenes are requested); the fine scenes stay lazy. Fine sample ``i``
    is seeded from ``(seed, i)``.
    """
    if like is None:
        raise GeodiffError("a two-stage sample needs the coarse grid: like=...")
    if not model.upsample_factor:
        raise GeodiffError("this model does not upsample: train one with fit(..., upsample=2)")
    coarse = coarse_model.sample_scene(n, like=like, seed=seed, **(coarse_options or {}))
    check_upsampling(model, coarse.isel(sample=0), factor)
    coarse = coarse.compute()
    seeds = [int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0]) for i in range(n)]
    fine = [upsample(model, coarse.isel(sample=i, drop=True), 1, factor=factor, seed=s, **options)
            for i, s in enumerate(seeds)]
    out = xr.concat(fine, dim="sample").assign_coords(sample=np.arange(n))
    out.attrs.update(fine[0].attrs, seed=int(seed), coarse_model_id=coarse_model.model_id)
    return out
