"""Coherent synthetic scenes of any size: fused windows inside blocks, blocks outpainted in a wavefront.

The design (issue: a scene must be one sample, not a patchwork of tiles):

- **One normalised space.** The network works on ``z = c + r (x - loc(p)) / scale(p)`` with
  coefficients that vary smoothly per pixel p: the per-tile coefficients (measured on the scene
  for ``"location"``, drawn from the training tiles for ``"draw"``) sit at the tile centres and
  are interpolated bilinearly between them. Neighbouring windows therefore share one space, and
  averaging their predictions is well posed; inside one tile the coefficients are close to the
  constant ones the network was trained with.
- **Blocks of fused windows.** The scene is cut into blocks of ``block`` pixels. Inside a block,
  windows of the tile's size every ``stride`` pixels are fused at every sampler step
  (:mod:`geodiff.diffusion.windows`, MultiDiffusion): one coherent sample per block.
- **Outpainting between blocks.** Block ``(i, j)`` is sampled on a canvas that reaches ``margin``
  pixels into its upper, left and upper-left neighbours, whose already generated pixels are
  held as known pixels (:class:`~geodiff.diffusion.conditions.Conditions`), so the block
  continues them across the boundary. Where a block has no neighbour (and always below and to
  its right) its canvas runs a window stride further, into look-ahead pixels that are generated
  and dropped, so that no pixel of the scene is a canvas edge pixel (except on the scene's own
  edges when the canvas is conditioned on the scene, which it then does not leave). Each block keeps the
  network's input on its canvas at every call, and its successors replay it: the margins in
  full, the look-ahead (their own first rows and columns) with a weight fading from 1 to 0
  over a stride, so that a block starts out from what its neighbours' pixels were made next to.
  Measured during development on the demo model (25 steps, z space, two blocks sampled
  directly; docs/benchmarks.md): the neighbour difference across a block boundary is 2.9 times
  the median with known final values alone (RePaint's replacement without
  resampling), 2.25 with the look-ahead canvas, 1.10 with the replayed trajectories. Each block
  is one dask task after those three: the graph computes in anti-diagonal wavefronts, and
  memory holds a few blocks and the margin strips, whatever the scene's size.

Deterministic: block ``(i, j)`` depends on ``(seed, block origin, sample index)`` and on its
upper-left neighbours, so a part of the scene computed alone equals that part of the whole scene.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, replace

import dask.array as darr
import numpy as np

from geodiff.cluster import tune_worker_allocator
from geodiff.errors import GeodiffError
from geodiff.label_map import LabelLattice
from geodiff.model import DiffusionModel

#: Blocks are this many tiles on a side unless told otherwise.
BLOCK_TILES = 8

# One block or tile at a time per process on the network: torch already uses every core (or the
# GPU) for one batch, and dask threads running several at once oversubscribe the cores, which
# slows torch's thread pool down by an order of magnitude. Reading and writing still overlap.
network_lock = threading.Lock()


@dataclass(frozen=True)
class Generation:
    """What every block or tile task of one scene asks the network for, besides its own
    seed, canvas and conditions: picklable, so dask.distributed workers can run it."""

    model: DiffusionModel
    n: int
    sampler: str
    sample_steps: int
    batch_size: int
    device: object
    timestep_spacing: str
    resampling: tuple[int, int] | None = None

    def __call__(self, seed: int, **canvas) -> np.ndarray:
        """:meth:`DiffusionModel.generate` of ``n`` samples, one task on the network at a time."""
        tune_worker_allocator()
        with network_lock:
            return self.model.generate(self.n, sampler=self.sampler, sample_steps=self.sample_steps, seed=seed,
                                       batch_size=self.batch_size, device=self.device,
                                       timestep_spacing=self.timestep_spacing, resampling=self.resampling, **canvas)


def block_sizes(length: int, block: int, least: int) -> tuple[int, ...]:
    """Sizes of the blocks that split ``length`` pixels: equal blocks of the largest size ``b <=
    block`` whose last block, if smaller, still has ``least`` pixels (a tile: it must hold its
    margins and a window). Equal blocks are what Zarr chunks must be, so writers store each block
    as it comes, without a rechunk that holds neighbouring blocks and triples the graph. Where no
    such ``b`` exists, nearly equal blocks (writers then rechunk)."""
    if length <= block:
        return (length,)
    for b in range(block, least - 1, -1):
        count, last = divmod(length, b)
        if last == 0 or last >= least:
            return (b,) * count + ((last,) if last else ())
    count = math.ceil(length / block)
    base, extra = divmod(length, count)
    return tuple(base + (1 if k < extra else 0) for k in range(count))


def check_layout(shape: tuple[int, int], tile: tuple[int, int], block: tuple[int, int], n: int, channels: int,
                 sample_steps: int) -> None:
    """Refuse a layout before any work: a block under two tiles (its canvas could then be
    smaller than one window), a block whose canvas cannot fit in memory. A grid smaller than one
    window is refused by the tile grid before."""
    if block[0] < 2 * tile[0] or block[1] < 2 * tile[1]:
        raise GeodiffError(f"a block of {block[0]}x{block[1]} pixels must be at least two tiles "
                           f"({2 * tile[0]}x{2 * tile[1]}) on a side")
    # A margin and a look-ahead, each at most a tile, on either side.
    canvas = (min(block[0], shape[0]) + 2 * tile[0]) * (min(block[1], shape[1]) + 2 * tile[1])
    # The canvas, its known pixels and mask, the sampler's state and a few x_0 estimates, and the
    # recorded trajectory (up to two network calls per step), in float32.
    need = (8 + 2 * sample_steps) * n * channels * canvas * 4
    available = _available_memory()
    if available is not None and need > available / 2:
        raise GeodiffError(f"a block of {block[0]}x{block[1]} pixels for {n} samples needs about "
                           f"{need / 2**30:.1f} GiB, more than half the {available / 2**30:.1f} GiB available: "
                           "choose a smaller block or fewer samples")


def _available_memory() -> int | None:
    """Free physical memory in bytes, None where the system does not say (sysconf is POSIX)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _linear(nodes: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weight of linear interpolation between sorted ``nodes`` at ``at``, held
    constant beyond the first and last node."""
    if len(nodes) == 1:
        zero = np.zeros(len(at), int)
        return zero, zero, np.zeros(len(at))
    at = np.clip(at, nodes[0], nodes[-1])
    upper = np.clip(np.searchsorted(nodes, at, side="right"), 1, len(nodes) - 1)
    lower = upper - 1
    return lower, upper, (at - nodes[lower]) / (nodes[upper] - nodes[lower])


def coefficient_field(values: np.ndarray, row_centres: np.ndarray, col_centres: np.ndarray,
                      rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of per-tile ``values`` ``(tile rows, tile cols, k)`` given at the
    tile centres onto pixels ``rows x cols``: ``(len(rows), len(cols), k)``."""
    r0, r1, wr = _linear(row_centres, rows)
    along = values[r0] * (1 - wr)[:, None, None] + values[r1] * wr[:, None, None]
    c0, c1, wc = _linear(col_centres, cols)
    return along[:, c0] * (1 - wc)[None, :, None] + along[:, c1] * wc[None, :, None]


@dataclass(frozen=True)
class Nodes:
    """Per-tile coefficients at the tile centres, ``loc``/``scale`` of shape ``(rows, cols, n, C)``."""

    loc: np.ndarray
    scale: np.ndarray
    row_centres: np.ndarray
    col_centres: np.ndarray

    def field(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """``loc``, ``scale`` per pixel of the window ``rows x cols``, shaped ``(n, C, h, w)``."""
        r = np.arange(rows.start, rows.stop, dtype=np.float64)
        c = np.arange(cols.start, cols.stop, dtype=np.float64)
        out = []
        for values in (self.loc, self.scale):
            rr, cc, n, ch = values.shape
            flat = coefficient_field(values.reshape(rr, cc, n * ch), self.row_centres, self.col_centres, r, c)
            out.append(flat.reshape(len(r), len(c), n, ch).transpose(2, 3, 0, 1))
        return out[0], out[1]


@dataclass(frozen=True)
class Strip:
    """What a block hands on to a neighbour, in normalised space: the final values of its margin
    ``(n, C, h, w)``, their states at every network call ``(calls, n, C, h, w)``, and the states
    of its look-ahead pixels beyond the margin (the neighbour's own first pixels; None for a
    corner)."""

    values: np.ndarray
    states: np.ndarray
    band: np.ndarray | None


@dataclass(frozen=True)
class Block:
    """A sampled block: ``z`` ``(n, C, h, w)`` in normalised space, the network's input on its
    whole canvas at every call (None when it was not generated), and where the block sits in
    that canvas (``top``, ``left``)."""

    z: np.ndarray
    trace: np.ndarray | None
    top: int
    left: int


@dataclass(frozen=True)
class Sampled:
    """What a block task returns: the block in physical units ``(n, [C,] h, w)``, and the strips
    its lower, right and lower-right neighbours continue (None where there is no such neighbour
    or the block was not generated). The network's trace of the canvas is dropped here, in the
    task, so memory holds a block's strips, not its whole trajectory."""

    values: np.ndarray
    bottom: Strip | None
    right: Strip | None
    corner: Strip | None


@dataclass(frozen=True)
class BlockJob:
    """Samples one block in normalised space, continuing its upper and left neighbours.

    The canvas is the block, its neighbours' margins above and to the left (or free pixels where
    it has none) and free look-ahead pixels below and to the right, a window stride each. Free
    pixels are generated and dropped, so that no kept pixel is a canvas edge pixel, which only a
    window's border predicts. Margins are held as known pixels and replay their states at every
    call. The block's first rows and columns, which were its neighbours' look-ahead, replay the
    states the neighbours had there with a weight that fades linearly from 1 at the margin to 0
    a stride inside the block: the network sees a blend of the neighbour's state and its own,
    so that the block starts out from what its neighbours' pixels were made next to.
    """

    generation: Generation
    stride: tuple[int, int]
    shape: tuple[int, int]  # the scene's
    labels: LabelLattice | None = None
    guidance: float = 0.0
    start: int | None = None  # inpainting: the trained timestep to start from, the gaps Laplace-filled
    observed: bool = False  # denoising: ``real`` is a noisy observation to start from, not pixels to keep

    def __call__(self, seed: int, origin: tuple[int, int], size: tuple[int, int], top: Strip | None,
                 left: Strip | None, corner: Strip | None, valid, nodes: Nodes | None = None,
                 low_res: np.ndarray | None = None, real: np.ndarray | None = None,
                 target: np.ndarray | None = None) -> Block:
        import torch

        from geodiff.diffusion.conditions import Conditions

        h, w = size
        n, ch = self.generation.n, self.generation.model.channels
        if valid is not None and not valid.any():  # all nodata: nothing to generate, nothing to hand on
            return Block(np.full((n, ch, h, w), np.nan, np.float32), None, 0, 0)
        if top is None or left is None:  # the corner sits between the two margins
            corner = None
        pad = self.stride
        # A canvas conditioned on the scene (a conditioning image, its own values) stays inside
        # it: beyond the edge there is nothing to condition on, and windows reading a made-up
        # continuation pull the edge pixels off (denoising single-tile scenes, docs/benchmarks.md).
        bounded = low_res is not None or real is not None
        before = [0 if bounded and o == 0 else p for o, p in zip(origin, pad)]
        after = [0 if bounded and o + s == full else p for o, s, full, p in zip(origin, size, self.shape, pad)]
        mt = before[0] if top is None else top.values.shape[-2]
        ml = before[1] if left is None else left.values.shape[-1]
        known = np.full((n, ch, mt + h + after[0], ml + w + after[1]), np.nan, np.float32)
        fade_rows = np.linspace(1, 0, pad[0] + 2, dtype=np.float32)[1:-1, None]
        fade_cols = np.linspace(1, 0, pad[1] + 2, dtype=np.float32)[None, 1:-1]
        given = [(s, kept, band, fade) for s, kept, band, fade in (
            (top, np.s_[..., :mt, ml:ml + w], np.s_[..., mt:mt + pad[0], ml:ml + w], fade_rows),
            (left, np.s_[..., mt:mt + h, :ml], np.s_[..., mt:mt + h, ml:ml + pad[1]], fade_cols),
            (corner, np.s_[..., :mt, :ml], None, None)) if s is not None]
        conditions = Conditions()
        if self.labels is not None:
            canvas = self.labels.canvas(origin[0] - mt, origin[1] - ml, *known.shape[-2:], self.shape)
            conditions = Conditions(labels=torch.from_numpy(canvas).expand(n, *canvas.shape), guidance=self.guidance,
                                    null_label=self.labels.null)
        if self.generation.model.scale_condition is not None:
            scale = _canvas_coefficients(nodes, origin, (mt, ml), known.shape[-2:])[1]
            conditions = self.generation.model.with_scale(conditions, scale)
        offset = None
        if low_res is not None:
            canvas_low = _canvas_field(self, low_res, nodes, origin, (mt, ml), known.shape[-2:]).astype(np.float32)
            conditions = replace(conditions, image=torch.from_numpy(canvas_low))
            if self.generation.model.cond_residual:  # the sampler's state is the residual from it
                offset = canvas_low
        if target is not None:
            from geodiff.consistency import block_mean_projection

            loc, scale = _canvas_coefficients(nodes, origin, (mt, ml), known.shape[-2:])
            conditions = replace(conditions, project=block_mean_projection(
                _canvas_crop(self, target, (mt, ml), known.shape[-2:]), loc, scale, self.generation.model.scaler,
                self.generation.model.upsample_factor, (origin[0] - mt, origin[1] - ml), offset))
        if given:
            calls = given[0][0].states.shape[0]
            states = np.full((calls, *known.shape), np.nan, np.float32)
            weight = np.ones(known.shape[-2:], np.float32)  # of the replayed states: 1 on the margins
            for strip, kept, band, fade in given:
                known[kept] = strip.values
                states[(slice(None), *kept)] = strip.states
                if band is not None:
                    states[(slice(None), *band)] = strip.band
                    weight[band[1:]] = np.minimum(weight[band[1:]], fade)
            conditions = replace(conditions, states=list(torch.from_numpy(states)), state_weight=torch.from_numpy(weight))
        observation = None
        if real is not None:
            z_real = _canvas_field(self, real, nodes, origin, (mt, ml), known.shape[-2:])
            if self.observed:  # denoising: the sampler starts from the observation outside the margins
                observation = z_real if offset is None else z_real - offset
            else:
                # The scene's own valid pixels are known too (inpainting); margins keep their
                # neighbours' values, which are the real ones wherever the scene has data.
                known = np.where(np.isfinite(known), known, z_real).astype(np.float32)
        if given or real is not None:
            held = known if offset is None else known - offset
            mask = np.isfinite(held)
            begin = np.nan_to_num(held)
            harmonic = None
            if real is not None and not self.observed:  # inpainting: gaps meet the pixels around them
                from geodiff.consistency import harmonic_projection

                harmonic = harmonic_projection(held, mask)
            if observation is not None:
                begin = np.where(mask, held, observation).astype(np.float32)
            elif self.start is not None:  # SDEdit: the gaps begin as the Laplace fill of what is known around them
                # an estimate of 0 everywhere, projected: the Laplace fill, on the factors the sampler reuses
                laplace = harmonic(torch.zeros(begin.shape, dtype=torch.float64)).numpy()
                begin = np.where(mask, begin, laplace).astype(np.float32)
            conditions = replace(conditions, known=torch.from_numpy(begin), mask=torch.from_numpy(mask),
                                 start=self.start, noisy_start=self.observed)
            if harmonic is not None:
                first = conditions.project
                conditions = replace(conditions, project=harmonic if first is None else lambda x0: harmonic(first(x0)))
        trace: list = []
        z = self.generation(seed, shape=known.shape[-2:], stride=self.stride, conditions=conditions, record=trace)
        return Block(z[..., mt:mt + h, ml:ml + w], np.stack([x.float().cpu().numpy() for x in trace]), mt, ml)


def _canvas_crop(job: BlockJob, chunk: np.ndarray, margins, canvas) -> np.ndarray:
    """A field on the scene's grid on a block's canvas, ``(C, H, W)`` in physical units.
    ``chunk`` is the block's chunk of the field with a tile of overlap on every side, which
    holds the whole canvas (margins and look-ahead are at most a tile)."""
    th, tw = job.generation.model.tile
    (mt, ml), (hc, wc) = margins, canvas
    field = chunk if chunk.ndim == 3 else chunk[None]
    return field[:, th - mt:th - mt + hc, tw - ml:tw - ml + wc]


def _canvas_coefficients(nodes: Nodes, origin, margins, canvas) -> tuple[np.ndarray, np.ndarray]:
    """``loc``, ``scale`` per pixel of a block's canvas, ``(n, C, H, W)``."""
    (mt, ml), (hc, wc) = margins, canvas
    return nodes.field(slice(origin[0] - mt, origin[0] - mt + hc), slice(origin[1] - ml, origin[1] - ml + wc))


def _canvas_field(job: BlockJob, chunk: np.ndarray, nodes: Nodes, origin, margins, canvas) -> np.ndarray:
    """A field on the scene's grid (a conditioning image, the scene's own values) on a block's
    canvas, in the canvas's normalised space ``(n, C, H, W)`` (see :func:`_canvas_crop`)."""
    loc, scale = _canvas_coefficients(nodes, origin, margins, canvas)
    return job.generation.model.scaler.transform_field(_canvas_crop(job, chunk, margins, canvas)[None], loc, scale)


def to_physical(block: Block, scaler, nodes: Nodes, rows: slice, cols: slice, valid, bands: bool) -> np.ndarray:
    """A block back in physical units with the per-pixel coefficients, NaN outside ``valid``."""
    loc, scale = nodes.field(rows, cols)
    values = scaler.inverse_field(block.z, loc, scale)
    if valid is not None:
        values = np.where(valid, values, np.nan)
    return (values if bands else values[:, 0]).astype(np.float32)


def run_job(job, *args):
    """A task calling a job that is a graph key of its own: the key is computed (unpickled) once
    per worker, and every task holds its name only."""
    return job(*args)


def run_block(job: BlockJob, scaler, nodes: Nodes, rows: slice, cols: slice, valid, bands: bool,
              margin: tuple[int, int], below: bool, beside: bool, seed: int, origin, size,
              top: Sampled | None, left: Sampled | None, corner: Sampled | None, *fields) -> Sampled:
    """One block as one task: sampled after its upper and left neighbours, back in physical
    units, with the strips its own neighbours need. One task per block (not one per strip and
    one for the units) keeps the graph of a Sentinel-1 GRD grid's 6,666 blocks small: the
    scheduler's bookkeeping, not pixels, is what grows with the scene."""
    block = job(seed, origin, size, None if top is None else top.bottom, None if left is None else left.right,
                None if corner is None else corner.corner, valid, nodes, *fields)
    return Sampled(to_physical(block, scaler, nodes, rows, cols, valid, bands),
                   _strip(block, margin[0], None) if below else None,
                   _strip(block, None, margin[1]) if beside else None,
                   _strip(block, margin[0], margin[1]) if below and beside else None)


def _values(sampled: Sampled) -> np.ndarray:
    return sampled.values


def _strip(block: Block, rows: int | None, cols: int | None) -> Strip | None:
    """The last ``rows`` rows (bottom), ``cols`` columns (right) or both (corner) of a block,
    with their states and, for bottom and right, the states of the look-ahead beyond them;
    None for a block that was not generated (all nodata): its neighbours generate that side."""
    if block.trace is None:
        return None
    h, w = block.z.shape[-2:]
    top, left = block.top, block.left
    if rows and cols:
        parts = block.z[..., -rows:, -cols:], block.trace[..., top + h - rows:top + h, left + w - cols:left + w], None
    elif rows:
        parts = (block.z[..., -rows:, :], block.trace[..., top + h - rows:top + h, left:left + w],
                 block.trace[..., top + h:, left:left + w])
    else:
        parts = (block.z[..., :, -cols:], block.trace[..., top:top + h, left + w - cols:left + w],
                 block.trace[..., top:top + h, left + w:])
    # Copies, not views: a view would keep the block's whole canvas trajectory alive until the
    # last neighbour has read its strip (a row of blocks' trajectories on a wide scene).
    return Strip(*(None if part is None else part.copy() for part in parts))


def block_graph(job: BlockJob, scaler, nodes: Nodes, shape: tuple[int, int], block: tuple[int, int],
                margin: tuple[int, int], seed: int, valid: darr.Array | None, name: str,
                bands: bool, low_res: darr.Array | None = None, real: darr.Array | None = None,
                target: darr.Array | None = None) -> tuple[dict, tuple, list]:
    """The dask graph of a fused scene: ``(graph, chunks, dependencies)`` for ``darr.Array``.

    Output chunks are the blocks, with keys ``(name, 0, [0,] i, j)``. The model and the
    coefficient nodes are one graph key each, not copied into every task. ``low_res`` (a
    conditioning field), ``real`` (the scene's values, known wherever finite) and ``target``
    (a coarse scene repeated onto the grid, whose block means the samples keep: see
    :mod:`geodiff.consistency`), all ``([band,] y, x)`` on the scene's grid in physical units,
    are read per block with a tile of overlap around it (dask's ``overlap``), so each block task
    gets its canvas's part.
    """
    tile = job.generation.model.tile
    rows, cols = block_sizes(shape[0], block[0], tile[0]), block_sizes(shape[1], block[1], tile[1])

    def overlapped(field):
        if field is None:
            return None
        lead = field.shape[:-2]
        # Canvases that read a field stay inside the scene: the boundary's values are never read.
        return darr.overlap.overlap(field.rechunk((*lead, rows, cols)),
                                    depth={field.ndim - 2: tile[0], field.ndim - 1: tile[1]}, boundary="nearest")

    fields = [overlapped(low_res), overlapped(real), overlapped(target)]
    r_off, c_off = np.cumsum((0, *rows)), np.cumsum((0, *cols))
    job_key, nodes_key, block_name = f"{name}-job", f"{name}-nodes", f"{name}-block"
    graph: dict = {job_key: job, nodes_key: nodes}
    for i in range(len(rows)):
        for j in range(len(cols)):
            r0, c0 = int(r_off[i]), int(c_off[j])
            block_seed = int(np.random.SeedSequence([int(seed), r0, c0]).generate_state(1)[0])
            top = (block_name, i - 1, j) if i else None
            left = (block_name, i, j - 1) if j else None
            corner = (block_name, i - 1, j - 1) if i and j else None
            valid_key = (valid.name, i, j) if valid is not None else None
            field_keys = [None if f is None else (f.name, *([0] * (f.ndim - 2)), i, j) for f in fields]
            box = (slice(r0, r0 + rows[i]), slice(c0, c0 + cols[j]))
            graph[(block_name, i, j)] = (run_block, job_key, scaler, nodes_key, *box, valid_key, bands, margin,
                                         i + 1 < len(rows), j + 1 < len(cols), block_seed, (r0, c0),
                                         (rows[i], cols[j]), top, left, corner, *field_keys)
            key = (name, 0, 0, i, j) if bands else (name, 0, i, j)
            graph[key] = (_values, (block_name, i, j))
    return graph, (rows, cols), [a for a in (valid, *fields) if a is not None]
