"""From a georeferenced scene to a trained :class:`~geodiff.model.DiffusionModel`."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from numbers import Real
from pathlib import Path

import numpy as np
import xarray as xr

from geodiff import recipe
from geodiff._version import __version__
from geodiff.errors import GeodiffError, TilingError
from geodiff.files import check_destination
from geodiff.model import DiffusionModel, _is_int
from geodiff.scaling import Scaler
from geodiff.tiling import TileGrid, nodata_filter, patch_filter, select


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


@dataclass(frozen=True)
class FitConfig:
    """The hyper-parameters of a :func:`fit` call, as data: the model records them in its summary
    (``model.summary["fit_config"]``, written by ``save``), and ``geodiff.fit(scenes,
    **config.to_dict())`` trains the same model again on the same scenes (same seed, same
    device). What is not a hyper-parameter (the scenes, labels, progress bars, the device, worker
    processes) is left out."""

    tile: tuple[int, int]
    epochs: float | None
    train_steps: int | None
    overlap: int
    max_nodata: float
    patch: tuple[float, float] | None
    scales: tuple[int, ...]
    max_tiles: int | None
    fill: str
    scaler: dict
    augment: dict | None
    val_fraction: float
    split: str
    conditional: bool
    upsample: int | None
    scale_condition: bool
    preset: str
    network: dict | None
    schedule: str
    timesteps: int
    learn_sigma: bool
    prediction: str
    noise: object
    batch_size: int
    lr: float
    max_seconds: float | None
    seed: int
    train_options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready keyword arguments of :func:`fit` (``train_options`` spread out)."""
        from geodiff.diffusion.noise import as_noise_spec

        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "train_options"}
        out["noise"] = as_noise_spec(self.noise).to_config()
        return {**out, **self.train_options}


def check_training_args(*, epochs, train_steps, batch_size, lr, max_nodata, seed, max_seconds, val_fraction=0.0) -> None:
    """Refuse a training request that cannot run (or would save an untrained model) before any work.

    Raises
    ------
    geodiff.errors.GeodiffError
        The first argument out of range, with what it must be.
    """
    checks = [
        (train_steps is not None or epochs is not None, "give the length of training: epochs=... or train_steps=..."),
        (train_steps is None or (_is_int(train_steps) and train_steps >= 1),
         f"train_steps must be an integer >= 1, got {train_steps!r}"),
        (train_steps is not None or epochs is None or (_is_real(epochs) and epochs > 0),
         f"epochs must be > 0, got {epochs!r}"),
        (_is_int(batch_size) and batch_size >= 1, f"batch_size must be an integer >= 1, got {batch_size!r}"),
        (_is_real(lr) and lr > 0, f"lr must be > 0, got {lr!r}"),
        (_is_real(max_nodata) and 0 <= max_nodata <= 1,
         f"max_nodata is a fraction of a tile and must lie in [0, 1], got {max_nodata!r}"),
        (_is_int(seed) and seed >= 0, f"seed must be an integer >= 0, got {seed!r}"),
        (max_seconds is None or (_is_real(max_seconds) and max_seconds > 0),
         f"max_seconds must be a time budget > 0 in seconds (or None), got {max_seconds!r}"),
        (_is_real(val_fraction) and 0 <= val_fraction < 1, f"val_fraction must lie in [0, 1), got {val_fraction!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise GeodiffError(message)


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def fit(
    scenes,
    tile: int | tuple[int, int] = 64,
    epochs: float | None = 50,
    *,
    train_steps: int | None = None,
    overlap: int = 0,
    max_nodata: float = 0.5,
    patch: tuple[float, float] | None = None,
    scales: tuple[int, ...] = (1,),
    max_tiles: int | None = None,
    fill: str = "nearest",
    scaler: Scaler | str = "minmax",
    augment=None,
    labels=None,
    label_column: str = "label",
    label_rule: str = "majority",
    conditional: bool = False,
    upsample: int | None = None,
    condition=None,
    scale_condition: bool = False,
    band_files=None,
    val_fraction: float = 0.0,
    split: str = "auto",
    num_workers: int = 0,
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
    resume: bool = False,
    **train_options,
) -> DiffusionModel:
    """Train a diffusion model on the tiles of one scene or of a collection of scenes.

    Tiles are indexed in one pass over the scenes and streamed from them per batch (see
    :class:`geodiff.tile_dataset.TileDataset`), so a collection may be far larger than memory.

    Parameters
    ----------
    scenes
        A ``([band,] y, x)`` DataArray (NaN as nodata, see :func:`geodiff.open_scene`); a list of
        DataArrays or paths, each with its own CRS and grid; a glob (``"dir/*.tif"``); a
        ``(time, y, x)`` stack whose leading dimension holds more scenes; a Dataset whose
        variables are bands; or a :class:`~geodiff.tile_dataset.TileDataset` built already.
    tile
        Tile size in pixels; each side must be divisible by ``2**(levels - 1)`` of the network
        (8 for the presets).
    epochs, train_steps
        Training length as passes over the tiles, or as optimizer steps (``train_steps`` wins).
    overlap, max_nodata, patch, scales, max_tiles
        Tiling: overlap between training tiles (more, correlated tiles), the nodata filter, the
        optional GANInSAR patch filter ``(theta, a)`` in scene units, GANInSAR's multi-scale
        patches (factors of block averaging), and a cap on the training tiles (a random subset).
    fill
        How nodata gaps inside kept tiles are filled before training (``"nearest"``,
        ``"laplace"``, ``"zero"``): a network never sees NaN.
    scaler
        A :class:`~geodiff.scaling.Scaler` or a method name; per-tile min-max to [-1, 1] by
        default (the seed paper's choice).
    augment
        A :class:`~geodiff.tile_dataset.Augment` (flips, quarter turns, value shift), drawn per
        step; none by default.
    labels, label_column, label_rule
        Tile labels carried in the index and the dataset: ``"attrs"``, ``"json"`` (BigEarthNet's
        sidecar) or a GeoDataFrame of labelled polygons; see :mod:`geodiff.labels`.
    conditional
        Train a class-conditional model on those labels: one class per tile, or a set of
        classes per tile (a multi-hot embedding) where any tile has several, as BigEarthNet's
        do; unlabelled tiles train the null class. Label dropout ``class_dropout``, 0.1 by default, trains the null class
        for classifier-free guidance.
        The model keeps its class vocabulary (``model.classes``) and samples
        ``sample_tiles(n, labels=..., guidance=w)``.
    upsample
        Train a super-resolution model by this factor (2, 4): the network sees each tile
        area-averaged by the factor (in linear power for backscatter) as its low-resolution
        conditioning, and both are scaled with the low-resolution tile's coefficients, which is
        what :meth:`~geodiff.model.DiffusionModel.upsample` knows of a coarse scene.
    condition
        Scenes paired one to one with ``scenes`` (same grids, same order, anything ``scenes``
        takes): the model learns each scene given its pair, whose tiles are its conditioning
        and whose coefficients scale both (a denoiser: clean scenes given noisy ones, see
        :func:`geodiff.denoising.fit_denoiser`).
    scale_condition
        Tell the network each tile's scale (its standardised log half-range, with per-tile
        scaling), so that it learns the texture that goes with an amplitude; samples are then
        made for the scale they are put back with (:mod:`geodiff.scaling.condition`). Not with
        ``upsample`` or ``condition``, whose image already carries the scale.
    band_files
        Band names (``("VV", "VH")``): files differing only by them are the bands of one scene.
    val_fraction, split
        Tiles held out for the validation loss, about ``val_fraction`` of them, by whole scene
        (``split="scene"``) or by spatial block of four tiles a side (``"block"``; training tiles
        overlapping a validation tile are dropped), ``"auto"``: by scene when there are several.
    num_workers
        DataLoader worker processes reading tiles ahead of the training loop.
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
        passed as a keyword (``ema_decay``, ``timestep_draw``, ``min_snr_gamma``, ...).
    max_seconds
        Stop training after this wall time (seconds), whatever ``epochs`` says; the progress
        bar then aims at the steps this budget allows.
    device
        ``None`` picks CUDA, then MPS, then CPU.
    seed
        Seeds tile subsampling, the split, the initial weights and every random draw of training
        (the caller's global torch RNG is left untouched): same seed, same model id on one device.
    progress
        Show progress bars (indexing, training).
    resume
        Continue from the trainer checkpoint in ``checkpoint_dir`` (a training option, with
        ``checkpoint_every``) when there is one: weights, EMA, optimizer, random streams and
        step, so that the run ends as an uninterrupted one would (a restarted torchrun job).

    Under torchrun (``torchrun --nproc-per-node N -m geodiff train ...``, or a process group
    joined with :func:`geodiff.diffusion.train.distributed.init_from_env`) the ranks train
    one model with DistributedDataParallel, ``batch_size`` being the global batch; every rank
    returns the same model.

    Returns
    -------
    DiffusionModel
        Its summary records the scenes (ids and files), the tiles per scene and the split.

    Raises
    ------
    geodiff.errors.GeodiffError
        A training length, ``batch_size``, ``lr``, ``max_seconds``, ``max_nodata``,
        ``val_fraction`` or ``seed`` out of range, or an unknown training option, before any tile
        is read; scenes that cannot be trained on together (see
        :func:`geodiff.tile_index.index_tiles`), before any training step.
    """

    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.checkpoint import STATE_FILE, versions
    from geodiff.diffusion.train import TrainConfig, Trainer, init_seed
    from geodiff.diffusion.unet import UNet
    from geodiff.splits import split_tiles
    from geodiff.tile_dataset import Augment, TileDataset

    check_training_args(epochs=epochs, train_steps=train_steps, batch_size=batch_size, lr=lr, max_nodata=max_nodata,
                        seed=seed, max_seconds=max_seconds, val_fraction=val_fraction)
    if "steps" in train_options:
        raise GeodiffError("fit counts optimizer steps as train_steps=... (and sampling its network evaluations "
                           "as sample_steps=...)")
    unknown = set(train_options) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise GeodiffError(f"unknown training option(s) {sorted(unknown)}")
    managed = set(train_options) & {"train_steps", "epochs", "batch_size", "lr", "max_seconds", "prediction", "learn_sigma", "noise",
                                    "seed", "progress", "num_workers", "val_fraction"}
    if managed:
        raise GeodiffError(f"{sorted(managed)} are arguments of fit itself, not training options")
    scaler = Scaler.from_config(scaler) if isinstance(scaler, dict) else Scaler(scaler) if isinstance(scaler, str) \
        else scaler
    augment = Augment(**augment) if isinstance(augment, dict) else augment
    if train_options.get("checkpoint_dir"):
        check_destination(train_options["checkpoint_dir"], parents=True)  # before the tiles are read
    if isinstance(scenes, TileDataset):
        dataset = scenes
    else:
        dataset = TileDataset.from_scenes(
            scenes, tile, overlap=overlap, max_nodata=max_nodata, patch=patch, scales=scales, scaler=scaler,
            fill=fill, augment=augment, labels=labels, label_column=label_column, label_rule=label_rule,
            band_files=band_files, progress=progress)
    if conditional and not dataset.classes:
        raise GeodiffError("conditional=True needs labels: labels='attrs', 'json' or a GeoDataFrame of polygons")
    if sum((upsample is not None, condition is not None, bool(scale_condition))) > 1:
        raise GeodiffError("a model is conditioned on one image: low-resolution tiles (upsample), paired scenes "
                           "(condition) or the tiles' scale (scale_condition)")
    if upsample is not None:
        dataset = dataset.with_low_res(upsample)
    if condition is not None:
        dataset = dataset.with_condition(condition)
    if scale_condition:
        dataset = dataset.with_scale_condition()
    # A dataset built beforehand brings its own tiling, scaling and augmentation.
    cut = dataset.tiling
    fit_config = FitConfig(
        cut.tile, epochs, train_steps, cut.overlap, cut.max_nodata, None if cut.patch is None else tuple(cut.patch),
        tuple(cut.scales), max_tiles, dataset.fill, dataset.scaler.to_config(),
        asdict(dataset.augment) if dataset.augment.active else None, val_fraction, split, conditional, upsample,
        bool(scale_condition), preset, network,
        schedule,
        timesteps, learn_sigma, prediction, noise, batch_size, lr, max_seconds, seed, dict(train_options))
    # The split is this fit's: the caller's dataset (and its index) stay as they were.
    split_of = split_tiles(dataset.index, val_fraction, split, seed=seed, max_tiles=max_tiles)
    train = dataset.subset(split_of == "train")
    val = dataset.subset(split_of == "val") if val_fraction else None
    channels, (th, tw) = train._loc.shape[1], train.tile

    y_train = y_val = None
    multi_label = conditional and _is_multi_label(dataset)
    if conditional:
        y_train = _class_targets(train, dataset.classes, multi_label)
        y_val = None if val is None else _class_targets(val, dataset.classes, multi_label)
        train_options = {"class_dropout": 0.1, **train_options}
    extra = {"num_classes": len(dataset.classes)} if conditional else {}
    if upsample is not None or condition is not None or scale_condition:
        extra["cond_channels"] = channels
    net = UNet.from_preset(preset, channels, learn_sigma=learn_sigma,
                           **{"seed": init_seed(seed), **extra, **(network or {})})
    if th % net.divisor or tw % net.divisor:
        raise TilingError(f"tile {th}x{tw} is not divisible by {net.divisor} as the {preset!r} network needs; "
                          f"use a tile size that is a multiple of {net.divisor}")
    config = TrainConfig(epochs=None if train_steps else epochs, train_steps=train_steps,
                         batch_size=min(batch_size, len(train)),
                         lr=lr, max_seconds=max_seconds, prediction=prediction, learn_sigma=learn_sigma,
                         noise=noise, seed=seed, progress=progress, num_workers=num_workers, **train_options)
    trainer = Trainer(net, NoiseSchedule(schedule, timesteps), config, device=device)
    if resume and config.checkpoint_dir and (Path(config.checkpoint_dir) / STATE_FILE).is_file():
        trainer.load(config.checkpoint_dir)
    start = time.monotonic()
    history = trainer.fit(train, labels=y_train, val_data=val, val_labels=y_val)
    losses = [r["loss"] for r in history if "loss" in r]
    coefficients = train.coefficients()
    summary = {
        "tiles": len(train),
        "tile_origins": {"row": coefficients.row.tolist(), "col": coefficients.col.tolist()},
        "scenes": _scenes_summary(dataset, split_of),
        "skipped_scenes": [{"id": i, "why": why} for i, why in dataset.skipped],
        "split": {"by": _split_kind(dataset, split) if val_fraction else None, "val_fraction": val_fraction,
                  "val_tiles": 0 if val is None else len(val)},
        "epochs": epochs if not train_steps else None,
        "train_steps": trainer.step,
        "batch_size": config.batch_size,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "seconds": round(time.monotonic() - start, 2),
        "device": str(trainer.device),
        "source": _source(scenes, dataset),
        "train_config": config.to_dict(),
        "fit_config": fit_config.to_dict(),
        "classes": list(dataset.classes) if conditional else None,
        "multi_label": multi_label,
        "upsample": upsample,
        "conditioning": "upsample" if upsample else "paired" if condition is not None else None,
        "pixel_size": _pixel_size(dataset) if upsample else None,
        "scale_condition": dataset.scale_condition.to_config() if scale_condition else None,
    }
    crs = _single_crs(dataset)
    return DiffusionModel(
        network=trainer.ema_model().eval(),
        schedule=trainer.schedule,
        scaler=dataset.scaler,
        coefficients=coefficients,
        tile=(int(th), int(tw)),
        bands=coefficients.bands,
        units=dataset.units,
        crs=crs,
        prediction=prediction,
        noise=config.noise.to_config(),
        summary=summary,
        versions={**versions(), "geodiff": __version__},
    )


def _class_targets(dataset, classes: list[str], multi_label: bool):
    """Each tile's class as an index into ``classes``, or its classes as a multi-hot row; a tile
    without a label gets the null class (index ``len(classes)``, an all-zero row)."""
    import torch

    if multi_label:
        return dataset.labels()
    return torch.tensor([classes.index(labels[0]) if labels else len(classes) for labels in dataset.index["labels"]],
                        dtype=torch.long)


def _is_multi_label(dataset) -> bool:
    """Whether any tile carries several classes (BigEarthNet's land cover)."""
    return any(len(labels or ()) > 1 for labels in dataset.index["labels"])


def _scenes_summary(dataset, split_of: np.ndarray) -> list[dict]:
    counts = dataset.index.assign(split=split_of).groupby("scene")["split"].value_counts().unstack(fill_value=0)
    out = []
    for scene_id, member in dataset.members.items():
        if scene_id not in counts.index:
            continue
        row = counts.loc[scene_id]
        out.append({"id": scene_id, "sources": list(member.sources),
                    **{f"{k}_tiles": int(row.get(k, 0)) for k in ("train", "val")}})
    return out


def _split_kind(dataset, split: str) -> str:
    return ("scene" if dataset.index["scene"].nunique() > 1 else "block") if split == "auto" else split


def _source(scenes, dataset) -> str:
    if isinstance(scenes, xr.DataArray):
        return str(scenes.encoding.get("source", ""))
    sources = [s for m in dataset.members.values() for s in m.sources]
    return sources[0] if len(sources) == 1 else ""


def _pixel_size(dataset) -> list[float] | None:
    """``(dy, dx)`` of the scenes' pixels in their CRS units, from the tile footprints, when they
    share one (None for pixel grids or mixed resolutions). Footprints are axis-aligned for
    north-up grids, which is what an upsampling model's grid check needs."""
    index = dataset.index
    if index["crs"].isna().any():
        return None
    bounds = index["footprint"].bounds.to_numpy()
    th, tw = dataset.tile
    sizes = np.unique(np.round(np.stack([(bounds[:, 3] - bounds[:, 1]) / th, (bounds[:, 2] - bounds[:, 0]) / tw], 1)
                               / index["factor"].to_numpy()[:, None], 9), axis=0)
    return [float(v) for v in sizes[0]] if len(sizes) == 1 else None


def _single_crs(dataset) -> str | None:
    """The scenes' CRS as WKT when they share one (a collection across UTM zones has none)."""
    crss = set(dataset.index["crs"])
    if len(crss) != 1 or None in crss:
        return None
    from rasterio.crs import CRS

    return CRS.from_user_input(crss.pop()).to_wkt()
