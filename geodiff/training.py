"""From a georeferenced scene to a trained :class:`~geodiff.model.DiffusionModel`."""

from __future__ import annotations

import math
import time
from dataclasses import fields
from numbers import Real

import numpy as np
import xarray as xr

from geodiff import recipe
from geodiff._version import __version__
from geodiff.errors import GeodiffError, TilingError
from geodiff.files import check_destination
from geodiff.model import DiffusionModel, _is_int
from geodiff.scaling import Scaler
from geodiff.tiling import TileGrid, fill_gaps, nodata_filter, patch_filter, select


def training_tiles(scene: xr.DataArray, tile, *, overlap=0, max_nodata: float = 0.5,
                   patch: tuple[float, float] | None = None, max_tiles: int | None = None, seed=0):
    """Tiles worth training on, as a lazy ``(tile, [band,] y, x)`` stack with ``row``/``col``.

    Tiles with more than ``max_nodata`` nodata are dropped (they are never fed to the network);
    ``patch=(theta, a)`` applies GANInSAR's patch filter; ``max_tiles`` keeps a random subset.
    """
    grid = TileGrid.from_scene(scene, tile, overlap, edge="shift")
    tiles = grid.stack(scene)
    keep = nodata_filter(tiles, max_nodata)
    if patch is not None:
        keep = keep & patch_filter(tiles, *patch)
    tiles = select(tiles, keep)
    if max_tiles is not None and tiles.sizes["tile"] > max_tiles:
        picked = np.sort(np.random.default_rng(seed).choice(tiles.sizes["tile"], max_tiles, replace=False))
        tiles = tiles.isel(tile=picked)
    return tiles


def _check_training_args(*, epochs, steps, batch_size, lr, max_nodata, seed, max_seconds) -> None:
    """Refuse a training request that cannot run (or would save an untrained model) before any work."""
    checks = [
        (steps is not None or epochs is not None, "give the length of training: epochs=... or steps=..."),
        (steps is None or (_is_int(steps) and steps >= 1), f"steps must be an integer >= 1, got {steps!r}"),
        (steps is not None or epochs is None or (_is_real(epochs) and epochs > 0),
         f"epochs must be > 0, got {epochs!r}"),
        (_is_int(batch_size) and batch_size >= 1, f"batch_size must be an integer >= 1, got {batch_size!r}"),
        (_is_real(lr) and lr > 0, f"lr must be > 0, got {lr!r}"),
        (_is_real(max_nodata) and 0 <= max_nodata <= 1,
         f"max_nodata is a fraction of a tile and must lie in [0, 1], got {max_nodata!r}"),
        (_is_int(seed) and seed >= 0, f"seed must be an integer >= 0, got {seed!r}"),
        (max_seconds is None or (_is_real(max_seconds) and max_seconds > 0),
         f"max_seconds must be a time budget > 0 in seconds (or None), got {max_seconds!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise GeodiffError(message)


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def fit_scene(
    scene: xr.DataArray,
    tile: int | tuple[int, int] = 64,
    epochs: float | None = 50,
    *,
    steps: int | None = None,
    overlap: int = 0,
    max_nodata: float = 0.5,
    patch: tuple[float, float] | None = None,
    max_tiles: int | None = None,
    fill: str = "nearest",
    scaler: Scaler | str = "minmax",
    preset: str = "small",
    network: dict | None = None,
    schedule: str = recipe.SCHEDULE,
    timesteps: int = 1000,
    learn_sigma: bool = recipe.LEARN_SIGMA,
    prediction: str = recipe.PREDICTION,
    noise="white",
    batch_size: int = 16,
    lr: float = 2e-4,
    max_seconds: float | None = None,
    device=None,
    seed: int = 0,
    progress: bool = True,
    **train_options,
) -> DiffusionModel:
    """Train a diffusion model on the tiles of a scene.

    Parameters
    ----------
    scene
        ``(y, x)`` or ``(band, y, x)`` DataArray, NaN as nodata (see :func:`geodiff.open_scene`).
    tile
        Tile size in pixels; each side must be divisible by ``2**(levels - 1)`` of the network
        (8 for the presets).
    epochs, steps
        Training length as passes over the tiles, or as optimizer steps (``steps`` wins).
    overlap, max_nodata, patch, max_tiles
        Tiling: overlap between training tiles (more, correlated tiles), the nodata filter, the
        optional GANInSAR patch filter ``(theta, a)`` in scene units, and a cap on tile count.
    fill
        How nodata gaps inside kept tiles are filled before training (``"nearest"``,
        ``"laplace"``, ``"zero"``): a network never sees NaN.
    scaler
        A :class:`~geodiff.scaling.Scaler` or a method name; per-tile min-max to [-1, 1] by
        default (the seed paper's choice).
    preset, network
        UNet size preset (``"tiny"``, ``"small"``, ``"base"``) and constructor overrides.
    schedule, timesteps, learn_sigma, prediction, noise
        Diffusion process: by default :mod:`geodiff.recipe`'s, a sigmoid schedule of 1000 steps
        (Jabri et al. 2022), v-prediction and a fixed variance with the plain MSE loss. On radar
        tiles at an equal CPU budget this beat improved DDPM's cosine schedule with
        eps-prediction and learned variance on every fidelity figure, at 10 to 50 evaluations
        (docs/benchmarks.md); ``schedule="cosine", prediction="eps", learn_sigma=True`` is that
        recipe.
    batch_size, lr
        Optimiser settings; any other :class:`~geodiff.diffusion.TrainConfig` field can be
        passed as a keyword (``ema_decay``, ``resampler``, ``min_snr_gamma``, ...).
    max_seconds
        Stop training after this wall time (seconds), whatever ``epochs`` says; the progress
        bar then aims at the steps this budget allows.
    device
        ``None`` picks CUDA, then MPS, then CPU.
    seed
        Seeds tile subsampling, the initial weights and every random draw of training (the
        caller's global torch RNG is left untouched): same seed, same model id on one device.
    progress
        Show a progress bar.

    Raises
    ------
    geodiff.errors.GeodiffError
        A training length, ``batch_size``, ``lr``, ``max_seconds``, ``max_nodata`` or ``seed``
        out of range, or an unknown training option, before any tile is read.
    """
    import torch

    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.checkpoint import versions
    from geodiff.diffusion.trainer import TrainConfig, Trainer, init_seed
    from geodiff.diffusion.unet import UNet

    _check_training_args(epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, max_nodata=max_nodata,
                         seed=seed, max_seconds=max_seconds)
    unknown = set(train_options) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise GeodiffError(f"unknown training option(s) {sorted(unknown)}")
    if train_options.get("checkpoint_dir"):
        check_destination(train_options["checkpoint_dir"], parents=True)  # before the tiles are read
    scaler = Scaler(scaler) if isinstance(scaler, str) else scaler
    # Training tiles become a tensor anyway: read them once, then fit and scale in memory.
    tiles = training_tiles(scene, tile, overlap=overlap, max_nodata=max_nodata, patch=patch,
                           max_tiles=max_tiles, seed=seed).compute()
    coefficients = scaler.fit(tiles)
    scaled, _ = fill_gaps(scaler.transform(tiles, coefficients), fill)
    data = scaled.transpose("tile", ..., "y", "x").values
    data = torch.from_numpy(np.ascontiguousarray(data if data.ndim == 4 else data[:, None], dtype=np.float32))
    channels = data.shape[1]
    th, tw = data.shape[-2:]

    net = UNet.from_preset(preset, channels, learn_sigma=learn_sigma, **{"seed": init_seed(seed), **(network or {})})
    if th % net.divisor or tw % net.divisor:
        raise TilingError(f"tile {th}x{tw} is not divisible by {net.divisor} as the {preset!r} network needs; "
                          f"use a tile size that is a multiple of {net.divisor}")
    config = TrainConfig(epochs=None if steps else epochs, steps=steps, batch_size=min(batch_size, len(data)),
                         lr=lr, max_seconds=max_seconds, prediction=prediction, learn_sigma=learn_sigma,
                         noise=noise, seed=seed, progress=progress, **train_options)
    trainer = Trainer(net, NoiseSchedule(schedule, timesteps), config, device=device)
    start = time.monotonic()
    history = trainer.fit(data)
    losses = [r["loss"] for r in history if "loss" in r]
    summary = {
        "tiles": len(data),
        "tile_origins": {"row": tiles["row"].values.tolist(), "col": tiles["col"].values.tolist()},
        "epochs": epochs if not steps else None,
        "steps": trainer.step,
        "batch_size": config.batch_size,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "seconds": round(time.monotonic() - start, 2),
        "device": str(trainer.device),
        "source": str(scene.encoding.get("source", "")),
        "train_config": config.to_dict(),
    }
    return DiffusionModel(
        network=trainer.ema_model().eval(),
        schedule=trainer.schedule,
        scaler=scaler,
        coefficients=coefficients,
        tile=(int(th), int(tw)),
        bands=coefficients.bands,
        units=scene.attrs.get("units"),
        crs=scene.rio.crs.to_wkt() if scene.rio.crs is not None else None,
        prediction=prediction,
        noise=config.noise.to_config(),
        summary=summary,
        versions={**versions(), "geodiff": __version__},
    )
