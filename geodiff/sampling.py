"""Synthetic scenes on a scene's grid, lazily: coherent fused blocks (the default) or independent tiles."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import dask.array as darr
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from geodiff import recipe
from geodiff.cluster import active_client, check_workers
from geodiff.errors import GeodiffError, SceneError
from geodiff.io.scene import GeoreferenceWarning
from geodiff.label_map import label_lattice
from geodiff.model import DiffusionModel, _is_int, _pair, check_guidance
from geodiff.names import COEFFICIENTS, SCENE_METHODS
from geodiff.scaling import Coefficients
from geodiff.scene_blocks import (
    BLOCK_TILES,
    BlockJob,
    Generation,
    Nodes,
    block_graph,
    block_sizes,
    check_layout,
    run_job,
)
from geodiff.tiling import TileGrid


@dataclass(frozen=True)
class _TileJob:
    """Generates every sample of one tile; picklable, so dask.distributed workers can run it."""

    generation: Generation
    renormalise: bool

    def __call__(self, seed: int, loc: np.ndarray, scale: np.ndarray, crop: tuple[int, int],
                 valid: np.ndarray | None) -> np.ndarray:
        h, w = crop
        if valid is not None:
            valid = valid[0, :h, :w]  # the tile's mask, cut to the part inside the scene
        model, n = self.generation.model, self.generation.n
        if valid is not None and not valid.any():
            # All-nodata tiles are never fed to the network.
            shape = (n, model.channels, h, w)
            return np.full(shape if model.bands else (n, h, w), np.nan, np.float32)
        z = self.generation(seed, conditions=model.with_scale(None, scale.reshape(n, -1)))
        if self.renormalise:
            z = model.scaler.renormalise(z)
        coefficients = Coefficients(model.scaler.method, loc.reshape(n, -1), scale.reshape(n, -1), units=model.units)
        values = model.scaler.inverse(z, coefficients)[..., :h, :w]
        if valid is not None:
            values = np.where(valid, values, np.nan)
        return (values if model.bands else values[:, 0]).astype(np.float32)




def sample_scene(scene: xr.DataArray, n: int, model: DiffusionModel, *, sampler: str = recipe.SAMPLER,
                 sample_steps: int = recipe.SAMPLE_STEPS, seed: int = 0, mask: bool = True, coefficients: str = "location",
                 batch_size: int = 16, device=None, timestep_spacing: str = recipe.TIMESTEP_SPACING,
                 renormalise: bool = False, method: str = "fused", stride=None, block=None, labels=None,
                 guidance: float = 0.0, label_column: str = "label", low_res: xr.DataArray | None = None,
                 known: xr.DataArray | None = None, consistent_with: xr.DataArray | None = None,
                 resampling: tuple[int, int] | None = None, start: int | None = None,
                 observed: xr.DataArray | None = None) -> xr.DataArray:
    """``n`` synthetic versions of ``scene`` on its own grid, generated block by block when computed.

    Parameters
    ----------
    scene
        The scene whose grid, CRS, coordinates and nodata mask the samples take (a template:
        only its values' mask, and with ``coefficients="location"`` their local range, are used).
    n
        Number of samples (> 0).
    model
        A trained model with the scene's band count and units. The order is the accessor's,
        ``da.diffusion.sample(n, model=model)``.
    sampler, sample_steps
        Sampler of :func:`geodiff.diffusion.sample` and its number of steps
        (:mod:`geodiff.recipe`'s by default).
    seed
        Same seed, same output, whichever parts are computed and in whatever order. With
        ``"fused"``, block ``(i, j)`` depends on ``(seed, its origin, sample index)`` and on
        the blocks above and to its left; with ``"tiles"``, sample i of the tile at
        ``(row, col)`` depends on ``(seed, row, col, i)`` only. Neither depends on ``n`` or
        ``batch_size``.
    mask
        NaN wherever the scene is nodata (blocks or tiles with no valid pixel are not generated).
    coefficients
        ``"location"``: coefficients measured on the scene's tiles, measured when this
        function is called, in one streaming pass over the scene, and recorded in attrs (samples
        keep the scene's local range). ``"draw"``: coefficients drawn from the model's training
        tiles, per tile and sample; the scene is then only read for its nodata mask. Fused
        scenes draw them as a smooth random field, a whole training set per tile
        (:func:`_coefficient_field_draw`); independent tiles draw them independently.
    batch_size, device
        Network batch size (windows or tiles per call) and device.
    timestep_spacing
        The trained timesteps the sampler visits (see :mod:`geodiff.diffusion.respace`).
    renormalise
        ``"tiles"`` only: stretch each generated tile back onto the normalised range by its own
        statistics before it is rescaled (:meth:`~geodiff.model.DiffusionModel.sample_tiles`).
    method
        ``"fused"``: one coherent sample per scene (:mod:`geodiff.scene_blocks`): the
        coefficients interpolated between tile centres define one normalised space, windows
        every ``stride`` pixels are fused at every step inside blocks of ``block`` pixels, and
        each block continues the blocks above and to its left over a margin of half a tile.
        ``"tiles"``: every tile sampled on its own and rescaled with its own coefficients, as
        geodiff did before (a patchwork; kept for comparison).
    stride, block
        ``"fused"`` only: window stride (default half a tile) and block size in pixels (default
        8 tiles), an int or a ``(rows, cols)`` pair.
    labels, guidance, label_column
        A class-conditional model's label map (``"fused"`` only): one class name for the whole
        scene, a GeoDataFrame of polygons with class names in ``label_column``, or a raster on
        the scene's grid (names, or indices into ``model.classes``); see
        :mod:`geodiff.label_map`. Each window is sampled as the class at its centre, and fused
        windows make region boundaries seamless; unlabelled pixels are sampled unconditionally.
        ``"draw"`` coefficients come from training tiles of each tile's class. ``guidance`` is
        the classifier-free guidance weight.
    low_res
        A super-resolution model's conditioning: the coarse scene interpolated onto this grid,
        ``([band,] y, x)`` in physical units (``"fused"`` only). Use
        :meth:`~geodiff.model.DiffusionModel.upsample`, which builds it.
    known
        Values to keep wherever they are finite, ``([band,] y, x)`` on this grid in physical
        units (``"fused"`` only): the rest is generated around them. Use
        :func:`geodiff.restoration.inpaint`, which fills a scene's gaps so.
    consistent_with
        For a super-resolution model: the coarse scene repeated onto this grid; every x_0
        estimate is projected so that its block means are that scene (:mod:`geodiff.consistency`).
    resampling
        ``(length, count)``: every stretch of ``length`` sampler steps is walked ``count`` times,
        RePaint's resampling, which lets generated pixels agree with ``known`` ones ("ddpm" and
        "ddim" only; :func:`~geodiff.diffusion.samplers.resampling_walk`). It costs about
        ``count`` times the network evaluations.
    start
        With ``known``: the trained timestep to start from (SDEdit, Meng et al. 2022), the
        pixels to generate beginning as a Laplace fill of the known ones around them, noised to
        that step; the sampler then visits only its timesteps at or below it. With ``observed``:
        the timestep whose noise level the observation is taken to have.
    observed
        A noisy observation of the scene, ``([band,] y, x)`` on this grid in physical units,
        gap-free (``"fused"`` only, with ``start``): the sampler starts from it at ``start`` as
        the diffusion state there, with no fresh noise, and generates every pixel. Use
        :func:`geodiff.denoising.denoise`, which denoises a scene so.

    Returns
    -------
    xarray.DataArray
        ``(sample, [band,] y, x)`` backed by dask, one chunk per block (``"fused"``) or tile.
        Attrs carry units, normalisation, the coefficients used per tile, the method and its
        layout, and provenance; encoding carries the scene's nodata so exports re-encode it.

    Raises
    ------
    geodiff.errors.GeodiffError
        At the call, not when computed: arguments the model cannot sample with (see
        :meth:`~geodiff.model.DiffusionModel.check_sampling`), a scene of other bands or units,
        a grid smaller than one window, a stride larger than a window, a block under two tiles or
        too large for memory, a label map with unknown classes or on another grid or CRS, a
        guidance weight < 0.
    """
    if method not in SCENE_METHODS:
        raise GeodiffError(f"method must be one of {', '.join(SCENE_METHODS)}, got {method!r}")
    _, stride = model.check_sampling(n, sampler=sampler, sample_steps=sample_steps, batch_size=batch_size, seed=seed,
                                     timestep_spacing=timestep_spacing, stride=stride, resampling=resampling)
    if coefficients not in COEFFICIENTS:
        raise GeodiffError(f"coefficients must be one of {', '.join(COEFFICIENTS)}, got {coefficients!r}")
    if method == "fused" and renormalise:
        raise GeodiffError("renormalise stretches independent tiles; it applies to method='tiles' only")
    if method == "tiles" and (block is not None):
        raise GeodiffError("block applies to method='fused' only")
    if renormalise:
        model.scaler.check_renormalisable()
    if (low_res is None) != (model.conditioning is None):
        needs = {"upsample": "a super-resolution model samples from a coarse scene: model.upsample(coarse)",
                 "paired": "a model conditioned on paired scenes samples from one: geodiff.denoising.denoise(scene, "
                           "model)"}
        raise GeodiffError(needs[model.conditioning] if low_res is None else
                           "low_res conditions a model trained with a conditioning image; this one is not")
    if (low_res is not None or known is not None or observed is not None) and method != "fused":
        raise GeodiffError("upsampling, inpainting and denoising need method='fused'")
    if observed is not None and (known is not None or start is None):
        raise GeodiffError("an observation is a start state: observed= needs start= and no known=")
    if start is not None:
        if known is None and observed is None:
            raise GeodiffError("start begins from known values or an observation: it needs known= or observed=")
        if not (_is_int(start) and 0 <= start < model.schedule.timesteps):
            raise GeodiffError(f"start must be a trained timestep 0..{model.schedule.timesteps - 1}, got {start!r}")
    if labels is None and guidance:
        raise GeodiffError("guidance needs labels to guide towards")
    if labels is not None:
        check_guidance(model, guidance)
        if model.multi_label:
            raise GeodiffError("a label map gives one class per region; this model is multi-label: sample its "
                               "tiles with sample_tiles(n, labels=...)")
        if method != "fused":
            raise GeodiffError("a label map needs method='fused' (windows take their class, and fusion blends "
                               "the regions)")
    stacked = [d for d in scene.dims if d not in ("band", "y", "x")]
    if stacked:
        raise SceneError(f"a synthetic scene is sampled on one grid, (y, x) or (band, y, x); this one also has "
                         f"{stacked}: sample on one slice, e.g. da.isel({stacked[0]}=0)")
    model._check_compatible(scene)
    client = active_client()
    if client is not None and device is not None:
        check_workers(client, device=device)  # each worker computes on its own, so each must have it
    if scene.rio.crs is None:
        warnings.warn("the grid has no CRS: the synthetic scene is on a pixel grid", GeoreferenceWarning, stacklevel=2)
    if mask and coefficients == "draw" and not bool(_valid(scene).any()):
        # "location" finds out in its own pass over the scene, below.
        raise SceneError("the grid is all nodata: nothing to sample (mask=False samples every pixel)")
    grid = TileGrid.from_scene(scene, model.tile, 0, edge="pad")
    lattice = None
    if labels is not None:
        lattice = label_lattice(labels, scene, model.classes, max(1, min(stride) // 2), column=label_column)
    if method == "fused" and coefficients == "draw":
        tile_classes = None if lattice is None else lattice.tile_classes(grid.row_starts, grid.col_starts, model.tile,
                                                                         grid.shape)
        per_tile = _coefficient_field_draw(model, grid, n, seed, tile_classes)
    else:
        per_tile = _coefficients(model, scene, grid, coefficients, n, seed)
    call = {"sampler": sampler, "sample_steps": sample_steps, "seed": seed, "coefficients": coefficients,
            "timestep_spacing": timestep_spacing, "method": method}
    if resampling is not None:
        resampling = (int(resampling[0]), int(resampling[1]))
        call["resampling"] = list(resampling)
    if start is not None:
        call["start"] = int(start)
        call["start_from"] = "the observation, as it is" if observed is not None else \
            "a Laplace fill of the known pixels, noised"
    generation = Generation(model, n, sampler, sample_steps, batch_size, device, timestep_spacing, resampling)
    if method == "fused":
        block = (BLOCK_TILES * model.tile[0], BLOCK_TILES * model.tile[1]) if block is None else _pair(block)
        (h, w) = grid.shape
        repeats = resampling[1] if resampling else 1
        check_layout((h, w), model.tile, block, n, model.channels, sample_steps * repeats)
        if lattice is not None:
            call.update(labels=_describe(labels), guidance=float(guidance))
        data = _fused_scene(scene, generation, grid, per_tile, mask, seed, stride, block, call, lattice,
                            float(guidance), low_res, known, consistent_with, start, observed)
        call.update(stride=list(stride), block=list(block), margin=[model.tile[0] // 2, model.tile[1] // 2],
                    normalised_space="per-pixel coefficients interpolated bilinearly between tile centres")
    else:
        data = _tile_scene(scene, generation, grid, per_tile, mask, seed, renormalise, call)
        call["renormalised"] = int(renormalise)

    dims = ("sample", "band", "y", "x") if model.bands else ("sample", "y", "x")
    coords = {"sample": np.arange(n), "y": scene["y"].values, "x": scene["x"].values}
    if model.bands:
        coords["band"] = scene["band"].values
    if "spatial_ref" in scene.coords:
        coords["spatial_ref"] = scene["spatial_ref"]
    out = xr.DataArray(data, dims=dims, coords=coords, name="synthetic")
    out.attrs.update(model.provenance(**call))
    out.attrs["tile"] = list(model.tile)
    if scene.encoding.get("source"):
        # Provenance, and how writers know never to put the synthetic scene over the real one.
        out.attrs["source_scene"] = str(scene.encoding["source"])
    out.attrs["coefficients_per_tile"] = per_tile.to_attrs()
    fill = scene.encoding.get("_FillValue")
    if fill is not None:
        out.encoding["_FillValue"] = fill
    return out


def _valid(scene: xr.DataArray) -> xr.DataArray:
    """Where the scene has data: any band finite."""
    return np.isfinite(scene).any("band") if "band" in scene.dims else np.isfinite(scene)


def _describe(labels) -> str:
    """What a label map was, for attrs."""
    if isinstance(labels, str):
        return labels
    if isinstance(labels, xr.DataArray):
        return f"raster {labels.name or ''}".strip()
    return f"{len(labels)} polygons"


def _fused_scene(scene, generation, grid, per_tile, mask, seed, stride, block, call, lattice=None, guidance=0.0,
                 low_res=None, known=None, consistent_with=None, start=None, observed=None) -> darr.Array:
    model, n = generation.model, generation.n
    rows, cols = len(grid.row_starts), len(grid.col_starts)
    ch = model.channels
    th, tw = model.tile
    nodes = Nodes(per_tile.loc.reshape(rows, cols, n, ch), per_tile.scale.reshape(rows, cols, n, ch),
                  grid.row_starts + (th - 1) / 2, grid.col_starts + (tw - 1) / 2)
    shape = grid.shape
    valid = None
    if mask:
        valid = darr.asarray(_valid(scene).data).rechunk((block_sizes(shape[0], block[0], th),
                                                          block_sizes(shape[1], block[1], tw)))
    job = BlockJob(generation, stride, shape, lattice, guidance, None if start is None else int(start),
                   observed is not None)
    name = "geodiff-scene-" + tokenize(model.model_id, scene, n, seed, mask, block, stride, per_tile.loc, per_tile.scale,
                                       sorted(call.items()), None if lattice is None else lattice.classes, low_res,
                                       known, consistent_with, observed)
    if observed is not None:
        known = observed  # read per block as the scene's values are, and started from instead of kept
    low_res, known, target = (None if f is None else darr.asarray(f.data) for f in (low_res, known, consistent_with))
    graph, (row_sizes, col_sizes), dependencies = block_graph(
        job, model.scaler, nodes, shape, block, (th // 2, tw // 2), seed, valid, name, bool(model.bands), low_res,
        known, target)
    chunks = ((n,), *([(ch,)] if model.bands else []), row_sizes, col_sizes)
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=dependencies)
    return darr.Array(hlg, name, chunks, dtype=np.float32)


def _tile_scene(scene, generation, grid, per_tile, mask, seed, renormalise, call) -> darr.Array:
    model, n = generation.model, generation.n
    valid = None
    if mask:
        valid = _valid(grid.stack(scene, tiles_per_chunk=1))  # a task per tile reads what its tile covers
    job = _TileJob(generation, bool(renormalise))
    name = "geodiff-sample-" + tokenize(model.model_id, scene, n, seed, mask, sorted(call.items()),
                                        bool(renormalise))
    cols = len(grid.col_starts)
    th, tw = grid.size
    (h, w), lead = grid.shape, (model.channels,) if model.bands else ()
    # The job (and the model in it) is one graph key, shipped once to each worker, not in every task.
    job_key = f"{name}-job"
    graph, dependencies = {job_key: job}, []
    if valid is not None:
        dependencies.append(valid.data)
    for k, (r, c) in enumerate(grid.origins):
        i, j = divmod(k, cols)
        crop = (min(th, h - r), min(tw, w - c))
        tile_seed = int(np.random.SeedSequence([int(seed), int(r), int(c)]).generate_state(1)[0])
        valid_key = (valid.data.name, k, 0, 0) if valid is not None else None
        graph[(name, 0, *([0] * len(lead)), i, j)] = (
            run_job, job_key, tile_seed, per_tile.loc[k], per_tile.scale[k], crop, valid_key,
        )
    chunks = ((n,), *[(c,) for c in lead], _sizes(grid.row_starts, th, h), _sizes(grid.col_starts, tw, w))
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=dependencies)
    return darr.Array(hlg, name, chunks, dtype=np.float32)


def _sizes(starts: np.ndarray, size: int, length: int) -> tuple[int, ...]:
    return tuple(int(min(size, length - s)) for s in starts)


#: Correlation length, in tiles, of the random field that draws fused scenes' coefficients.
DRAW_CORRELATION_TILES = 3.0


def _coefficient_field_draw(model: DiffusionModel, grid: TileGrid, n: int, seed: int,
                            tile_classes: np.ndarray | None = None) -> Coefficients:
    """Coefficient sets per tile and sample from a smooth random field with the training tiles'
    distribution at every tile.

    Independent draws per tile, interpolated between tile centres, would narrow the range of
    coefficients between the centres (the mean of four draws) in a pattern with the tile's period.
    Instead a Gaussian random field per sample (exponential covariance, length
    :data:`DRAW_CORRELATION_TILES` tiles) is mapped through its normal CDF onto the training sets
    ordered by their first band's ``loc``: every tile takes a whole training set (``loc`` and
    ``scale`` stay jointly consistent), with the empirical marginal, and neighbouring tiles take
    neighbouring sets. With ``tile_classes`` (a class index per tile; the null class for none),
    a tile maps onto the training sets of its class only.
    """
    from scipy.special import ndtr

    from geodiff.geostats import Exponential, gaussian_random_field

    grid_rows, grid_cols = len(grid.row_starts), len(grid.col_starts)
    c = model.coefficients
    ok = np.flatnonzero(np.isfinite(c.loc).all(1) & np.isfinite(c.scale).all(1))
    ordered = ok[np.argsort(c.loc[ok, 0], kind="stable")]
    # One field per sample, from (seed, sample index): sample i does not depend on n. Drawn on at
    # least 16 x 16 nodes and cropped, as the circulant embedding needs room for the covariance.
    shape = (max(grid_rows, 16), max(grid_cols, 16))
    u = np.stack([gaussian_random_field(shape, Exponential(1.0, DRAW_CORRELATION_TILES),
                                        seed=np.random.default_rng([int(seed), i]))[:grid_rows, :grid_cols]
                  for i in range(n)])
    position = ndtr(u)  # (n, rows, cols), uniform in [0, 1)
    classes = np.full((grid_rows, grid_cols), -1) if tile_classes is None else np.asarray(tile_classes)
    have = None if tile_classes is None else [set(v or ()) for v in c.meta.get("labels", [[]] * len(c))]
    index = np.empty(u.shape, dtype=np.int64)
    for k in np.unique(classes):
        pool = ordered
        if 0 <= k < len(model.classes or ()):
            pool = ordered[[model.classes[k] in have[i] for i in ordered]]
            if pool.size == 0:
                raise SceneError(f"no training tile of class {model.classes[k]!r} has coefficients to draw")
        cells = classes == k
        index[:, cells] = pool[np.minimum((position[:, cells] * len(pool)).astype(int), len(pool) - 1)]
    sets = index.reshape(n, -1).T  # (tiles, n), row-major tiles as the grid stacks them
    count = sets.shape[0]
    return Coefficients(model.scaler.method, c.loc[sets].reshape(count, -1), c.scale[sets].reshape(count, -1),
                        grid.origins[:, 0], grid.origins[:, 1], model.bands, model.units, model.scaler.db,
                        meta={"samples": n, "layout": "loc/scale per tile: samples x bands, row-major",
                              "draw": f"Gaussian random field, exponential covariance of {DRAW_CORRELATION_TILES} tiles, "
                                      "through its CDF onto training sets ordered by loc"})


def _coefficients(model: DiffusionModel, scene: xr.DataArray, grid: TileGrid, how: str, n: int,
                  seed: int) -> Coefficients:
    """Coefficients per tile: ``loc``/``scale`` of shape ``(tiles, n, bands)``."""
    count = len(grid)
    if how == "draw":
        # Sample-major, so that the first n sets of one draw, hence each sample's sets, do not depend on n.
        drawn = model.coefficients.draw(count * n, seed=seed)
        loc = drawn.loc.reshape(n, count, -1).transpose(1, 0, 2)
        scale = drawn.scale.reshape(n, count, -1).transpose(1, 0, 2)
    else:
        measured = model.scaler.fit(grid.stack(scene))  # one streaming pass over the scene
        empty = ~(np.isfinite(measured.loc).all(1) & np.isfinite(measured.scale).all(1))
        if empty.all():
            raise SceneError("the scene is all nodata: there is nothing to take coefficients from")
        if empty.any():
            # Tiles without data borrow the nearest measured tile's coefficients.
            nearest = measured.nearest(measured.row[empty], measured.col[empty])
            measured.loc[empty], measured.scale[empty] = nearest.loc, nearest.scale
        loc = np.repeat(measured.loc[:, None], n, axis=1)
        scale = np.repeat(measured.scale[:, None], n, axis=1)
    return Coefficients(model.scaler.method, loc.reshape(count, -1), scale.reshape(count, -1),
                        grid.origins[:, 0], grid.origins[:, 1], model.bands, model.units, model.scaler.db,
                        meta={"samples": n, "layout": "loc/scale per tile: samples x bands, row-major"})
