"""The result of fitting: a diffusion model that knows its data, samples tiles and saves itself.

One class and its persistence (about 400 lines, half docstrings and argument checks): sampling
scenes is in :mod:`geodiff.sampling`, the engine in :mod:`geodiff.diffusion`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from geodiff import recipe
from geodiff._version import __version__
from geodiff.errors import CheckpointError, GeodiffError
from geodiff.scaling import Coefficients, ScaleCondition, Scaler
from geodiff.units import label

MODEL_FORMAT = 1
_WEIGHTS, _CONFIG = "model.safetensors", "model.json"


@dataclass
class DiffusionModel:
    """A trained diffusion model of radar tiles, with everything needed to sample physical data.

    Build one with ``da.diffusion.fit(...)`` (or :func:`geodiff.training.fit`), reload one
    with :func:`load_model`.

    Attributes
    ----------
    network
        The denoising UNet holding the EMA weights, in eval mode.
    schedule
        The :class:`~geodiff.diffusion.NoiseSchedule` it was trained on.
    scaler, coefficients
        Normalisation and the per-tile coefficients of the training tiles; generated tiles are
        rescaled with coefficients drawn from these (or measured on a scene).
    tile
        Tile ``(height, width)`` in pixels.
    bands
        Band (channel) names, ``None`` for single-band data.
    units
        Physical units of the data: one string, or one per band when bands differ
        (see :mod:`geodiff.units`).
    crs
        WKT of the training scene's CRS (``None`` if it had none).
    prediction, noise
        The network's target (``"eps"``, ``"x0"``, ``"v"``) and forward-noise spec.
    summary
        Training summary: tiles, epochs, train_steps, losses, seconds, scenes, split, data source.
    model_id
        SHA-256 (16 hex digits) of the weights and of every setting that shapes a sample
        (:meth:`description`), computed at construction.
    """

    network: Any
    schedule: Any
    scaler: Scaler
    coefficients: Coefficients
    tile: tuple[int, int]
    bands: list[str] | None = None
    units: str | list[str] | None = None
    crs: str | None = None
    prediction: str = "eps"
    noise: dict = field(default_factory=lambda: {"kind": "white"})
    summary: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    model_id: str = field(init=False)

    def __post_init__(self):
        from geodiff.diffusion.checkpoint import content_id

        # Two models with one id sample alike, so the id covers the weights and the description
        # (an edited model.json changes it). Hashed once here: provenance, repr and dask tokens
        # all read it.
        self.model_id = content_id(self.network.state_dict(), self.description())

    def description(self) -> dict:
        """Everything besides the weights that defines how this model samples, as JSON-ready data."""
        return {
            "network": self.network.config,
            "schedule": self.schedule.to_config(),
            "scaler": self.scaler.to_config(),
            "coefficients": self.coefficients.to_dict(),
            "tile": list(self.tile),
            "bands": self.bands,
            "units": self.units,
            "crs": self.crs,
            "prediction": self.prediction,
            "noise": self.noise,
        }

    @property
    def channels(self) -> int:
        return len(self.bands) if self.bands else 1

    @property
    def fit_config(self) -> dict | None:
        """The keyword arguments of the :func:`geodiff.fit` call that trained this model (None for
        a model built otherwise): ``geodiff.fit(scenes, **model.fit_config)`` trains it again."""
        return self.summary.get("fit_config")

    def __repr__(self) -> str:
        n_params = sum(p.numel() for p in self.network.parameters())
        bands = ", ".join(self.bands) if self.bands else "1 band"
        s = self.summary
        loss = s.get("final_loss")
        lines = [
            f"DiffusionModel {self.model_id}",
            f"  data      : {bands}, units {label(self.units)}, tile {self.tile[0]}x{self.tile[1]} px",
            f"  network   : UNet, {n_params / 1e6:.2f} M parameters, predicts {self.prediction}"
            + (", learned variance" if getattr(self.network, "learn_sigma", False) else ""),
            (f"  schedule  : {self.schedule.to_config()['schedule']}, "
             f"{self.schedule.timesteps} steps, {self.noise.get('kind', 'white')} noise"),
            (f"  scaling   : {self.scaler.method}{' (dB)' if self.scaler.db else ''}, "
             f"{'per tile' if self.scaler.per_tile else 'global'}, {len(self.coefficients)} coefficient sets"),
            f"  trained on: {s.get('tiles', '?')} tiles"
            + (f" of {len(s['scenes'])} scenes" if len(s.get("scenes") or ()) > 1 else "")
            + (f" ({s['split']['val_tiles']} held out by {s['split']['by']})" if (s.get("split") or {}).get("by") else "")
            + f", {s.get('train_steps', '?')} steps"
            + (f", final loss {loss:.4g}" if isinstance(loss, (int, float)) else ""),
        ]
        return "\n".join(lines)

    def _check_compatible(self, scene: xr.DataArray) -> None:
        bands = [str(b) for b in scene["band"].values] if "band" in scene.dims else None
        n = len(bands) if bands else 1
        if n != self.channels:
            raise GeodiffError(f"the model was trained on {self.channels} band(s) {self.bands or ''}, "
                               f"the scene has {n}; select matching bands")
        units = scene.attrs.get("units")
        if units and self.units and units != self.units:
            raise GeodiffError(f"the model was trained on data in {label(self.units)}, the scene is in {label(units)}; "
                               "convert the scene or train a model on these units")

    @property
    def clip_range(self) -> tuple[float, float] | None:
        """Where every x_0 estimate is clamped while sampling: the normalised data's range.

        Min-max and fixed scaling put every training pixel inside ``feature_range``; clamping
        the estimates there (improved DDPM's ``clip_denoised``) stops the first steps, where
        sqrt(alpha_bar) is tiny, from amplifying the network's error into huge values.
        Robust and standard scaling are unbounded, so they are not clamped. A conditioned
        model's tiles are scaled with their condition's coefficients (an upsampling model's
        low-resolution version, a denoiser's noisy scene), so they reach past the range, as do
        the scene pixels its fused windows see in the scene's interpolated space: a conditioned
        model's estimates are clamped to four times its half-width. An unconditioned model's
        are clamped to the range itself, in fused windows too.
        """
        if self.scaler.method not in ("minmax", "fixed"):
            return None
        low, high = self.scaler.feature_range
        if self.conditioning is not None:
            center, half = (low + high) / 2, (high - low) / 2
            return center - 4 * half, center + 4 * half
        return low, high

    @property
    def conditioning(self) -> str | None:
        """What the network is conditioned on besides labels: ``"upsample"`` (a coarse scene),
        ``"paired"`` (a paired scene, e.g. a noisy interferogram), or None."""
        return self.summary.get("conditioning")

    @property
    def scale_condition(self) -> ScaleCondition | None:
        """How a scale-conditioned model (``fit(..., scale_condition=True)``) sees the scale its
        samples are put back with; None for other models."""
        config = self.summary.get("scale_condition")
        return None if config is None else ScaleCondition.from_config(config)

    def with_scale(self, conditions, scale: np.ndarray):
        """``conditions`` (or none) with the conditioning image of ``scale`` (``(n, bands)`` per
        sample, or ``(n, bands, H, W)`` per pixel, the scaler's space) for a scale-conditioned
        model; ``conditions`` as they are for other models."""
        condition = self.scale_condition
        if condition is None:
            return conditions
        import torch

        from geodiff.diffusion.conditions import Conditions

        # A per-sample scale stays a 1 x 1 image: the network resizes it to the tile.
        return replace(conditions or Conditions(), image=torch.from_numpy(condition.image(scale)))

    @property
    def cond_residual(self) -> bool:
        """Whether the network generates the residual from its resized conditioning image
        (``TrainConfig.cond_residual``); :meth:`generate` adds the image back."""
        return bool(self.summary.get("train_config", {}).get("cond_residual"))

    @property
    def upsample_factor(self) -> int | None:
        """The factor a super-resolution model (``fit(..., upsample=f)``) upsamples by; None for
        other models."""
        return self.summary.get("upsample")

    def check_sampling(self, n: int, *, sampler: str, sample_steps: int, batch_size: int, seed: int,
                       timestep_spacing: str = recipe.TIMESTEP_SPACING, shape=None,
                       stride=None, resampling=None) -> tuple[tuple[int, int], tuple[int, int]]:
        """Refuse sampling arguments this model cannot run, before any work is done.

        Shared by :meth:`generate`, :meth:`sample_tiles` and :func:`geodiff.sampling.sample_scene`,
        so a lazy scene fails when it is requested, not when it is computed. Returns the canvas
        shape and the window stride, defaults filled in (the tile; half a tile).

        Raises
        ------
        geodiff.errors.GeodiffError
            ``n`` or ``batch_size`` is not a positive integer, ``sample_steps`` is outside
            1..``schedule.timesteps``, ``seed`` is not an integer >= 0, ``sampler`` or
            ``timestep_spacing`` is unknown, ``shape`` is smaller than a tile, ``stride`` is
            not between 1 pixel and a tile, or ``resampling`` is not a pair of positive
            integers for "ddpm" or "ddim".
        """
        from geodiff.diffusion.samplers import check_resampling
        from geodiff.names import SAMPLERS, TIMESTEP_SPACINGS

        if sampler not in SAMPLERS:
            raise GeodiffError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        try:
            check_resampling(sampler, resampling)
        except ValueError as e:
            raise GeodiffError(str(e)) from None
        if timestep_spacing not in TIMESTEP_SPACINGS:
            raise GeodiffError(f"unknown timestep spacing {timestep_spacing!r}; choose one of "
                               f"{', '.join(TIMESTEP_SPACINGS)}")
        timesteps = self.schedule.timesteps
        for name, value, low, high, what in (
            ("n", n, 1, None, "a positive number of samples"),
            ("sample_steps", sample_steps, 1, timesteps, f"between 1 and the model's {timesteps} timesteps"),
            ("batch_size", batch_size, 1, None, "a positive number of samples per network call"),
            ("seed", seed, 0, None, "an integer >= 0"),
        ):
            if not _is_int(value) or value < low or (high is not None and value > high):
                raise GeodiffError(f"{name} must be {what}, got {value!r}")
        th, tw = self.tile
        shape = self.tile if shape is None else tuple(int(v) for v in shape)
        stride = (max(th // 2, 1), max(tw // 2, 1)) if stride is None else _pair(stride)
        if len(shape) != 2 or shape[0] < th or shape[1] < tw:
            raise GeodiffError(f"a canvas of {shape} pixels is smaller than the model's {th}x{tw} tile")
        if not (1 <= stride[0] <= th and 1 <= stride[1] <= tw):
            raise GeodiffError(f"the window stride {stride} must lie between 1 pixel and the {th}x{tw} tile: "
                               "a larger stride leaves pixels no window covers")
        return shape, stride

    def generate(self, n: int, *, sampler: str = recipe.SAMPLER, sample_steps: int = recipe.SAMPLE_STEPS, seed: int = 0,
                 batch_size: int = 16, device=None, progress: bool = False, x_T=None, clip="auto",
                 timestep_spacing: str = recipe.TIMESTEP_SPACING, shape: tuple[int, int] | None = None,
                 stride: tuple[int, int] | None = None, conditions=None, record: list | None = None,
                 resampling: tuple[int, int] | None = None) -> np.ndarray:
        """``n`` normalised tiles ``(n, C, H, W)`` straight from the network (float32 numpy).

        Sample i draws its start noise and the noise of every stochastic step from its own
        generator, seeded from ``(seed, i)``: results do not depend on ``batch_size`` or on
        ``n`` (sample i of n = 5 is sample i of n = 3) beyond float rounding. With ``x_T`` (a
        tensor of start noise) ``seed`` only drives the stochastic steps. ``clip="auto"`` clamps
        x_0 estimates to :attr:`clip_range`; pass a number, a pair or ``None`` to choose.
        ``progress`` shows one bar over the sampler steps of all batches. ``timestep_spacing``
        picks the trained timesteps the sampler visits (see :mod:`geodiff.diffusion.respace`).

        ``shape`` (pixels, at least the tile) samples canvases larger than a tile as one
        coherent sample each: windows of the tile's size every ``stride`` pixels (default half
        a tile) are fused at every step (:mod:`geodiff.diffusion.windows`); ``batch_size`` then
        counts windows per network call. ``conditions``
        (:class:`~geodiff.diffusion.conditions.Conditions`, tensors of ``n`` rows) holds known
        pixels to keep, a start timestep, labels, the states of a recorded trajectory; ``record``
        (a list) receives the network's input at every call (all samples then go through one
        sampler run). ``resampling=(length, count)`` repeats every stretch of
        ``length`` steps ``count`` times (RePaint's resampling for known pixels, "ddpm" and
        "ddim": :func:`~geodiff.diffusion.samplers.resampling_walk`).
        """
        from tqdm.auto import tqdm

        from geodiff.diffusion import NoiseSpec, sample
        from geodiff.diffusion.conditions import Conditions
        from geodiff.diffusion.device import pick_device
        from geodiff.diffusion.respace import sampled_timesteps
        from geodiff.diffusion.samplers import walked_steps
        from geodiff.diffusion.windows import fused

        shape, stride = self.check_sampling(n, sampler=sampler, sample_steps=sample_steps, batch_size=batch_size, seed=seed,
                                            timestep_spacing=timestep_spacing, shape=shape, stride=stride,
                                            resampling=resampling)
        device = pick_device(device)
        network = self.network.to(device)
        clip = self.clip_range if clip == "auto" else clip
        conditions = conditions or Conditions()
        if self.scale_condition is not None and conditions.image is None:
            raise GeodiffError("a scale-conditioned model samples for the scale its tiles are put back with: "
                               "use sample_tiles or sample_scene, or pass conditions=model.with_scale(None, scale)")
        label_map = conditions.labels is not None and conditions.labels.ndim == 3
        if shape == self.tile and not label_map and record is None:
            model_fn, group = network, batch_size
        else:  # all canvases at once (one trajectory to record): the network's batches are their windows
            model_fn, group = fused(network, self.tile, stride, batch_size=batch_size), n
        starts = range(0, n, group)
        kept = sampled_timesteps(self.schedule.alphas_cumprod.tolist(), timestep_spacing, sample_steps)
        calls = walked_steps(len(kept), resampling)
        out = []
        with tqdm(total=len(starts) * calls, desc="sampling", unit="step", disable=not progress) as bar:
            for start in starts:
                size = min(group, n - start)
                chunk_x_T = None if x_T is None else x_T[start:start + size].to(device)
                x = sample(model_fn, self.schedule, (size, self.channels, *shape), sampler=sampler,
                           sample_steps=sample_steps, timestep_spacing=timestep_spacing, prediction=self.prediction, x_T=chunk_x_T,
                           seed=sample_seeds(seed, start, size), clip=clip, noise=NoiseSpec.from_config(self.noise),
                           device=device, callback=lambda info: bar.update(1),
                           conditions=conditions.rows(start, start + size, n), record=record,
                           resampling=resampling)
                low = conditions.rows(start, start + size, n).image
                if self.cond_residual and low is not None:
                    from geodiff.diffusion.unet import resized

                    x = x + resized(low.to(x.device, x.dtype), x.shape[-2:])
                out.append(x.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def sample_tiles(self, n: int, *, sampler: str = recipe.SAMPLER, sample_steps: int = recipe.SAMPLE_STEPS, seed=0,
                     batch_size: int = 16, like: xr.DataArray | None = None, device=None, progress: bool = True,
                     renormalise: bool = False, timestep_spacing: str = recipe.TIMESTEP_SPACING,
                     labels=None, guidance: float = 0.0) -> xr.DataArray:
        """``n`` synthetic tiles in physical units, ``(sample, [band,] y, x)``.

        A class-conditional model (``fit(..., conditional=True)``) samples the ``labels`` asked
        for: one class name (or index into :attr:`classes`) for all, or one per sample; a
        multi-label model takes a set of names in place of a name (a tuple or set for all samples;
        lists inside the list of per-sample entries). ``guidance``
        is the classifier-free guidance weight (0: plain conditional; > 0 calls the network
        twice a step). Without labels such a model samples unconditionally. The ``label``
        coordinate names each sample's classes (joined by ``|``), and its coefficients are drawn
        from training tiles of those classes.

        Each tile is rescaled with a coefficient set drawn from the training tiles' empirical
        joint distribution (Tuel et al. 2023). ``renormalise`` first stretches each generated
        tile back onto the normalised range by its own statistics (:meth:`Scaler.renormalise`),
        their post-hoc fix for generated tiles with too little variance. ``like`` is a template
        tile whose coordinates and CRS the samples take; without it they get pixel coordinates.
        """
        if renormalise:
            self.scaler.check_renormalisable()  # before the network runs, not after
        self.check_sampling(n, sampler=sampler, sample_steps=sample_steps, batch_size=batch_size, seed=seed,
                            timestep_spacing=timestep_spacing)  # before the coefficients are drawn with seed
        conditions, label_sets = self.label_conditions(labels, guidance, n)
        # One draw of n in a row: coefficient set i is the same whatever n is.
        drawn = self.coefficients.draw(n, seed=seed, labels=label_sets)
        conditions = self.with_scale(conditions, drawn.scale)
        z = self.generate(n, sampler=sampler, sample_steps=sample_steps, seed=seed, batch_size=batch_size,
                          device=device, progress=progress, timestep_spacing=timestep_spacing, conditions=conditions)
        if renormalise:
            z = self.scaler.renormalise(z)
        dims = ("sample", "band", "y", "x") if self.bands else ("sample", "y", "x")
        values = z if self.bands else z[:, 0]
        coords = {"sample": np.arange(n), "y": np.arange(self.tile[0]), "x": np.arange(self.tile[1])}
        if self.bands:
            coords["band"] = self.bands
        da = xr.DataArray(values, dims=dims, coords=coords)
        physical = self.scaler.inverse(da, drawn, units=self.units)
        if like is not None:
            if (like.sizes["y"], like.sizes["x"]) != self.tile:
                raise GeodiffError(f"template tile is {like.sizes['y']}x{like.sizes['x']}, the model's tile is "
                                   f"{self.tile[0]}x{self.tile[1]}")
            physical = physical.assign_coords(y=like["y"].values, x=like["x"].values)
            if like.rio.crs is not None:
                physical = physical.rio.write_crs(like.rio.crs).rio.write_transform(like.rio.transform())
        physical.attrs.update(self.provenance(sampler=sampler, sample_steps=sample_steps, seed=seed, coefficients="draw",
                                              timestep_spacing=timestep_spacing, renormalised=int(renormalise)))
        physical.attrs["coefficients"] = drawn.to_dict()
        if label_sets is not None:
            physical = physical.assign_coords(label=("sample", ["|".join(names) for names in label_sets]))
            physical.attrs["guidance"] = float(guidance)
        return physical

    @property
    def classes(self) -> list[str] | None:
        """The class vocabulary of a class-conditional model (label ``i`` is ``classes[i]``)."""
        return self.summary.get("classes")

    @property
    def multi_label(self) -> bool:
        """Whether the model is conditioned on sets of classes (multi-hot) rather than one class."""
        return bool(self.summary.get("multi_label"))

    def label_index(self, name) -> int:
        """Index into :attr:`classes` of a class name (or of an index already)."""
        if isinstance(name, str) and name in self.classes:
            return self.classes.index(name)
        if _is_int(name) and 0 <= name < len(self.classes):
            return int(name)
        raise GeodiffError(f"unknown class {name!r}; the model's classes are {self.classes}")

    def label_conditions(self, labels, guidance: float, n: int):
        """``(Conditions, label sets)`` for sampling ``labels`` (one sorted list of names per
        sample), or ``(None, None)`` without them."""
        from geodiff.diffusion.conditions import Conditions

        if labels is None:
            if guidance:
                raise GeodiffError("guidance needs labels to guide towards")
            return None, None
        check_guidance(self, guidance)
        one = isinstance(labels, (str, Integral)) or (self.multi_label and _is_label_set(labels))
        asked = [labels] * n if one else list(labels)
        if len(asked) != n:
            raise GeodiffError(f"{len(asked)} labels for {n} samples; give one, or one per sample")
        sets = []
        for entry in asked:
            names = [entry] if isinstance(entry, (str, Integral)) else list(entry)
            if len(names) != 1 and not self.multi_label:
                raise GeodiffError(f"this model takes one class per sample, got {entry!r}")
            sets.append(sorted(self.classes[self.label_index(name)] for name in names))
        import torch

        if self.multi_label:
            from geodiff.labels import multi_hot

            y = torch.from_numpy(np.stack([multi_hot(names, self.classes) for names in sets]))
        else:
            y = torch.tensor([self.classes.index(names[0]) for names in sets], dtype=torch.long)
        return Conditions(labels=y, guidance=float(guidance), null_label=len(self.classes)), sets

    def sample_scene(self, n: int, *, like: xr.DataArray | xr.Dataset, coefficients: str = "draw",
                     **options) -> xr.DataArray:
        """``n`` synthetic scenes on the grid of ``like``, any grid the user gives.

        ``like`` gives the CRS, transform, shape and coordinates, and its NaN pixels the nodata
        mask (``mask=False`` samples everywhere); a Dataset's variables are the bands. Its values
        are otherwise unused with the default ``coefficients="draw"`` (a smooth random field of
        coefficients drawn from the training tiles); ``"location"`` takes their local range.
        Every other option is :func:`geodiff.sampling.sample_scene`'s.
        """
        from geodiff.io import open_scene
        from geodiff.sampling import sample_scene

        if isinstance(like, xr.Dataset):
            like = open_scene(like, chunks="auto" if like.chunks else None)
        return sample_scene(like, n, self, coefficients=coefficients, **options)

    def upsample(self, coarse, n: int = 1, *, like=None, factor: int | None = None, coarse_options: dict | None = None,
                 **options) -> xr.DataArray:
        """A super-resolution model's fine versions of a coarse scene, on a grid
        :attr:`upsample_factor` times finer (transform and CRS exact, the nodata mask repeated).

        ``coarse`` is a ``([band,] y, x)`` DataArray whose pixels are the factor times the
        model's training pixels; ``n`` fine samples of it come back lazily, sampled with fused
        windows block by block like any scene (:mod:`geodiff.upsampling`). Or, in one call of
        the two-stage pipeline, ``coarse`` is a model: it samples ``n`` scenes on the grid of
        ``like`` (with ``coarse_options``) and each is upsampled. ``factor``, when given, must
        be the model's. ``consistent=False`` drops the projection that keeps the coarse scene
        as the fine one's block means. ``strength`` (in (0, 1]) starts the sampler from the
        bicubic interpolation of the coarse scene at that fraction of the trained timesteps
        (SDEdit, with DDPM unless ``sampler`` says otherwise) instead of from pure noise:
        bicubic's PSNR with some of the detail it lacks. On held-out real scenes 0.05 (one of
        25 steps: one x_0 estimate) beat bicubic by 0.05-0.15 dB at three of four
        product/factor pairs and tied at the fourth, with a 1.26-1.40x truer short-lag
        variogram; higher strengths add texture and lose PSNR, and pure noise has the truest
        texture (docs/benchmarks.md). Every other option is :func:`geodiff.sampling.sample_scene`'s
        (``seed``, ``sample_steps``, ``stride``, ``block``, ...).

        Raises
        ------
        geodiff.errors.GeodiffError
            Before any work: not an upsampling model, another factor, a coarse scene of other
            bands, units or pixel size, or smaller than one fine tile.
        """
        from geodiff.upsampling import two_stage, upsample

        if isinstance(coarse, DiffusionModel):
            return two_stage(coarse, self, n, like=like, coarse_options=coarse_options, factor=factor, **options)
        if like is not None or coarse_options is not None:
            raise GeodiffError("like and coarse_options are for the two-stage pipeline, upsample(coarse_model, n, like=...)")
        return upsample(self, coarse, n, factor=factor, **options)

    def provenance(self, **call) -> dict:
        """Attributes that say where a sample came from."""
        return {
            "units": self.units or "",
            "normalisation": self.scaler.method + (" dB" if self.scaler.db else ""),
            "model_id": self.model_id,
            "geodiff_version": __version__,
            **{k: v for k, v in call.items() if v is not None},
        }

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write ``model.safetensors`` (EMA weights) and ``model.json`` into the folder ``path``.

        An existing folder is replaced only if it is a geodiff model folder, or with
        ``overwrite=True``; a failed save leaves it as it was.
        """
        from geodiff.diffusion.checkpoint import save_tensors_atomic, write_json_atomic
        from geodiff.files import atomic_directory

        path = Path(path)
        config = {
            "format": "geodiff-model",
            "format_version": MODEL_FORMAT,
            "model_id": self.model_id,
            **self.description(),
            "summary": self.summary,
            "versions": self.versions,
        }
        with atomic_directory(path, overwrite=overwrite) as tmp:
            save_tensors_atomic({k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()},
                                tmp / _WEIGHTS)
            write_json_atomic(config, tmp / _CONFIG)
        return path


def check_guidance(model: DiffusionModel, guidance) -> None:
    """Refuse labels for an unconditional model and a guidance weight that is not >= 0."""
    if not model.classes:
        raise GeodiffError("labels need a class-conditional model: fit(..., labels=..., conditional=True)")
    if not (isinstance(guidance, Real) and not isinstance(guidance, bool) and math.isfinite(guidance) and guidance >= 0):
        raise GeodiffError(f"guidance must be a weight >= 0, got {guidance!r}")


def _is_label_set(value) -> bool:
    """A collection of class names for one sample (not a sequence of per-sample entries)."""
    return isinstance(value, (tuple, set, frozenset))


def sample_seeds(seed: int, start: int, count: int) -> list[int]:
    """Seeds of samples ``start .. start + count - 1`` of a run seeded ``seed``: sample i's seed
    depends on ``(seed, i)`` only (64-bit, from numpy's SeedSequence)."""
    return [int(np.random.SeedSequence([int(seed), i]).generate_state(1, np.uint64)[0])
            for i in range(start, start + count)]


def _pair(value) -> tuple[int, int]:
    """``(rows, cols)`` from an int or a pair of ints."""
    pair = (value, value) if _is_int(value) else tuple(value)
    if len(pair) != 2 or not all(_is_int(v) for v in pair):
        raise GeodiffError(f"expected an integer or a pair of integers, got {value!r}")
    return int(pair[0]), int(pair[1])


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def load_model(path, device=None) -> DiffusionModel:
    """Load a model saved with :meth:`DiffusionModel.save` (safetensors and JSON only; nothing is unpickled).

    Raises
    ------
    geodiff.errors.CheckpointError
        The folder is not a geodiff model, is corrupt, or comes from a newer format.
    """
    import torch

    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.checkpoint import load_tensors, read_json
    from geodiff.diffusion.device import pick_device
    from geodiff.diffusion.unet import UNet
    from geodiff.files import check_format

    path = Path(path)
    device = pick_device(device)  # before the file is read: a missing GPU is not a corrupt model
    if not (path / _CONFIG).is_file() or not (path / _WEIGHTS).is_file():
        raise CheckpointError(f"{path} is not a geodiff model folder (needs {_CONFIG} and {_WEIGHTS})")
    config = read_json(path / _CONFIG)
    check_format(config, path / _CONFIG, "geodiff-model", MODEL_FORMAT, "model description")
    try:
        network = UNet.from_config(config["network"])
        network.load_state_dict(load_tensors(path / _WEIGHTS)[0])
        # Channels-last weights sample 15-20 % faster on CPU and are the layout GPUs prefer.
        network = network.eval().to(device, memory_format=torch.channels_last)
        model = DiffusionModel(
            network=network,
            schedule=NoiseSchedule.from_config(config["schedule"]),
            scaler=Scaler.from_config(config["scaler"]),
            coefficients=Coefficients.from_dict(config["coefficients"]),
            tile=tuple(config["tile"]), bands=config["bands"], units=config["units"], crs=config["crs"],
            prediction=config["prediction"], noise=config["noise"], summary=config["summary"],
            versions=config["versions"],
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} does not describe a usable model ({err}); it is corrupt or foreign") from err
    if model.model_id != config.get("model_id"):
        raise CheckpointError(f"{path}: the weights and description do not match the recorded model id; "
                              f"{_CONFIG} was edited, or the files are corrupt or mixed from two models. "
                              "Save the model again from the code that trained it")
    return model


def summary_json(model: DiffusionModel) -> str:
    """The training summary as indented JSON (for ``geodiff info``)."""
    return json.dumps(model.summary, indent=2, default=str)
