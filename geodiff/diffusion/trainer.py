"""Training loop of a denoising diffusion model: AdamW, warm-up, clipping, EMA, AMP, exact resume.

Every random draw of training (batch indices, timesteps, forward noise, class dropout) comes from
generators seeded by ``TrainConfig.seed``, and dropout runs on a forked global RNG whose state the
trainer owns; saving and resuming therefore continues a run bit for bit on the same device. The
tiles of step ``k`` are drawn from a generator seeded by ``(seed, k)`` alone, so DataLoader
workers can read ahead and a resumed run reads the same tiles.

Training data is a tensor or any map-style Dataset with ``__getitems__`` (a batch of positions to
a ``(batch, C, H, W)`` tensor), e.g. :class:`geodiff.tile_dataset.TileDataset`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geodiff.errors import CheckpointError, GeodiffError
from geodiff.files import check_destination

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .device import pick_device
from .ema import EMA
from .losses import training_losses
from .noise import NoiseSpec, as_noise_spec, draw_noise
from .resample import create_resampler
from .schedule import NoiseSchedule

__all__ = ["TrainConfig", "Trainer", "init_seed"]

_BAR_EVERY = 10  # steps between progress-bar refreshes of loss and images/s
# Offsets that separate the streams derived from one seed.
_DATA_STREAM, _NOISE_STREAM, _DROPOUT_STREAM, _SPLIT_STREAM, _VAL_STREAM, _INIT_STREAM = range(6)
# Wall clock of the time budget; a name of its own so tests can drive it.
_clock = time.monotonic


def init_seed(seed: int) -> int:
    """Seed of the initial network weights of a run with ``TrainConfig(seed=seed)``, a stream
    apart from the trainer's own draws (pass it as ``UNet(..., seed=init_seed(seed))``)."""
    return seed * 8 + _INIT_STREAM


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (JSON-serialisable through :meth:`to_dict`).

    Parameters
    ----------
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay.
    warmup_steps : int
        Linear learning-rate warm-up from lr / warmup_steps to lr.
    grad_clip : float or None
        Maximum global gradient norm (None disables clipping).
    batch_size : int
        Tiles per micro-batch; an optimizer step sees ``batch_size * grad_accum`` tiles.
    steps, epochs : int / float, optional
        Length of training as total optimizer steps, or as passes over the training tiles
        (``epochs * N / (batch_size * grad_accum)`` steps); ``steps`` wins when both are given.
    max_seconds : float, optional
        Time budget of one :meth:`Trainer.fit` call in wall-clock seconds: training stops after
        the first step that ends past it, and the progress bar aims at the steps the budget
        allows rather than at the step cap.
    grad_accum : int
        Micro-batches whose gradients are summed before each optimizer step.
    ema_decay, ema_warmup : float, bool
        EMA of the weights (see :class:`geodiff.diffusion.ema.EMA`).
    prediction : {"eps", "x0", "v"}
        What the network predicts.
    learn_sigma : bool, optional
        Learned variance (improved DDPM); None takes the model's ``learn_sigma``.
    loss : {"hybrid", "mse"}, optional
        None means "hybrid" with learned variance, else "mse".
    vlb_weight : float
        lambda of the hybrid loss L_simple + lambda L_vlb (0.001 in improved DDPM).
    min_snr_gamma : float, optional
        Min-SNR-gamma loss weighting (Hang et al. 2023), e.g. 5.
    resampler : {"uniform", "loss-second-moment"}
        Timestep sampler (importance sampling of improved DDPM section 3.3).
    noise : NoiseSpec, str or dict
        Forward-process noise (white or spatially correlated).
    class_dropout : float
        Probability of replacing a class label with the null class (classifier-free guidance).
    amp : {"auto", "bf16", "fp32"}
        "auto" is bf16 autocast on CUDA and fp32 elsewhere.
    channels_last : bool, optional
        NHWC memory format; None is on for CUDA. Ignored with a warning on CPU.
    compile : bool
        ``torch.compile`` the model (GPU only; ignored with a warning on CPU).
    seed : int
        Seed of every random stream of training.
    val_fraction : float
        Fraction of the tiles held out for validation when no ``val_data`` is given.
    log_every : int
        Steps between history records (training loss averaged over them, validation loss).
    checkpoint_every : int
        Steps between checkpoints written to ``checkpoint_dir`` (0: only at the end, if a
        directory is set).
    checkpoint_dir : str, optional
        Where checkpoints go.
    preview_every : int
        Steps between calls of the preview callback (0: only at the end).
    progress : bool
        Show a tqdm bar with loss and images/s.
    num_workers : int
        DataLoader worker processes that read the batches of a Dataset ahead of the loop (0: read
        in the training process). Tensors are always indexed in place.
    """

    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    grad_clip: float | None = 1.0
    batch_size: int = 16
    steps: int | None = None
    epochs: float | None = None
    max_seconds: float | None = None
    grad_accum: int = 1
    ema_decay: float = 0.9999
    ema_warmup: bool = True
    prediction: str = "eps"
    learn_sigma: bool | None = None
    loss: str | None = None
    vlb_weight: float = 0.001
    min_snr_gamma: float | None = None
    resampler: str = "uniform"
    noise: Any = field(default_factory=NoiseSpec)
    class_dropout: float = 0.0
    amp: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    seed: int = 0
    val_fraction: float = 0.0
    log_every: int = 100
    checkpoint_every: int = 0
    checkpoint_dir: str | None = None
    preview_every: int = 0
    progress: bool = True
    num_workers: int = 0

    def __post_init__(self):
        self.noise = as_noise_spec(self.noise)
        checks = [
            (self.lr > 0, "lr must be > 0"),
            (
                self.batch_size >= 1 and self.grad_accum >= 1,
                "batch_size and grad_accum must be >= 1",
            ),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip must be > 0 or None"),
            (self.prediction in ("eps", "x0", "v"), "prediction must be 'eps', 'x0' or 'v'"),
            (self.loss in (None, "hybrid", "mse"), "loss must be 'hybrid', 'mse' or None"),
            (self.amp in ("auto", "bf16", "fp32"), "amp must be 'auto', 'bf16' or 'fp32'"),
            (0.0 <= self.val_fraction < 1.0, "val_fraction must lie in [0, 1)"),
            (0.0 <= self.class_dropout < 1.0, "class_dropout must lie in [0, 1)"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.steps is None or self.steps >= 1, "steps must be >= 1"),
            (self.epochs is None or self.epochs > 0, "epochs must be > 0"),
            (self.max_seconds is None or self.max_seconds > 0, "max_seconds must be > 0 or None"),
            (self.seed >= 0, "seed must be >= 0"),
            (self.num_workers >= 0, "num_workers must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise GeodiffError(f"TrainConfig: {message}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        out = asdict(self)
        out["noise"] = self.noise.to_config()
        return out

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(config) - names
        if unknown:
            raise GeodiffError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**config)


def _as_tensor(data, dtype=None) -> torch.Tensor | None:
    if data is None:
        return None
    t = torch.as_tensor(data)
    return t if dtype is None else t.to(dtype)


class Trainer:
    """Trains ``model`` on tiles with the diffusion objective of ``schedule``.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x, t)``, plus ``y=`` / ``cond=`` when labels / conditioning are given
        (e.g. :class:`geodiff.diffusion.unet.UNet`).
    schedule : NoiseSchedule
        The forward process.
    config : TrainConfig, optional
    device : str or torch.device, optional
        None picks CUDA, then MPS, then CPU.

    Attributes
    ----------
    step : int
        Optimizer steps taken.
    history : list of dict
        One record per ``log_every`` steps: step, loss, mse, vlb, lr, grad_norm, images_per_s and,
        with validation data, val_loss and val_mse.
    ema : EMA
        Averaged weights (sample with :meth:`ema_model`).
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: NoiseSchedule,
        config: TrainConfig | None = None,
        device: str | torch.device | None = None,
    ):
        self.config = config = config or TrainConfig()
        self.device = pick_device(device)
        self.schedule = schedule
        self.model = model.to(self.device)
        model_sigma = getattr(model, "learn_sigma", None)
        self.learn_sigma = bool(model_sigma if config.learn_sigma is None else config.learn_sigma)
        if model_sigma is not None and bool(model_sigma) != self.learn_sigma:
            raise GeodiffError(
                f"TrainConfig.learn_sigma={config.learn_sigma} but the model has "
                f"learn_sigma={model_sigma}; make them agree (or leave the config's None)"
            )
        self.loss = config.loss or ("hybrid" if self.learn_sigma else "mse")
        if self.loss == "hybrid" and not self.learn_sigma:
            raise GeodiffError(
                "the hybrid loss trains a learned variance: use loss='mse' or a model with learn_sigma=True"
            )
        self.amp_dtype = self._resolve_amp()
        self.channels_last = self._gpu_only("channels_last", config.channels_last, default=True)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.forward_model = (
            torch.compile(self.model)
            if self._gpu_only("compile", config.compile, default=False)
            else self.model
        )

        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.ema = EMA(self.model, decay=config.ema_decay, warmup=config.ema_warmup)
        self.resampler = create_resampler(config.resampler, len(schedule))
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self._gen_data = torch.Generator().manual_seed(config.seed * 8 + _DATA_STREAM)
        self._gen_noise = torch.Generator(self.device).manual_seed(config.seed * 8 + _NOISE_STREAM)
        self._dropout_rng = self._initial_dropout_state()

    # -- set-up helpers ------------------------------------------------------------------------

    def _resolve_amp(self) -> torch.dtype | None:
        amp = self.config.amp
        if amp == "bf16" and self.device.type != "cuda":
            warnings.warn(
                f"bf16 autocast is used on CUDA only; training in fp32 on {self.device.type}",
                stacklevel=3,
            )
        return torch.bfloat16 if self.device.type == "cuda" and amp in ("auto", "bf16") else None

    def _gpu_only(self, name: str, value: bool | None, default: bool) -> bool:
        on_gpu = self.device.type == "cuda"
        if value and not on_gpu:
            warnings.warn(
                f"{name}=True only helps on a GPU; ignored on {self.device.type}", stacklevel=3
            )
        return on_gpu and (default if value is None else bool(value))

    def _initial_dropout_state(self) -> dict[str, torch.Tensor]:
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(self.config.seed * 8 + _DROPOUT_STREAM)
            return self._global_rng_state()

    def _rng_devices(self) -> list:
        return [self.device] if self.device.type == "cuda" else []

    def _global_rng_state(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set_global_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(state["cpu"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    # -- the model call ------------------------------------------------------------------------

    def _model_fn(self, y: torch.Tensor | None, cond: torch.Tensor | None) -> Callable:
        kwargs = {k: v for k, v in (("y", y), ("cond", cond)) if v is not None}
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype
            else nullcontext()
        )

        def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                out = self.forward_model(x, t, **kwargs)
            return out.float()  # losses are computed in fp32/fp64 whatever the autocast

        return model_fn

    def _losses(self, x0, t, noise, y, cond) -> dict[str, torch.Tensor]:
        cfg = self.config
        return training_losses(
            self._model_fn(y, cond),
            self.schedule,
            x0,
            t,
            prediction=cfg.prediction,
            learn_sigma=self.learn_sigma,
            loss=self.loss,
            vlb_weight=cfg.vlb_weight,
            min_snr_gamma=cfg.min_snr_gamma,
            noise=noise,
        )

    # -- training ------------------------------------------------------------------------------

    def _prepare(self, data, labels, cond, name: str):
        if isinstance(data, torch.utils.data.Dataset):
            return self._prepare_dataset(data, labels, cond, name)
        x = _as_tensor(data)
        if x is None:
            return None
        if not x.is_floating_point() or x.ndim != 4:
            raise GeodiffError(
                f"{name} must be a float tensor (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
            )
        x = x.to(next(self.model.parameters()).dtype)
        if not torch.isfinite(x).all():
            raise GeodiffError(
                f"{name} contains NaN or inf; fill or drop nodata pixels before training"
            )
        y = _as_tensor(labels, torch.long)
        c = _as_tensor(cond, x.dtype)
        for other, what in ((y, "labels"), (c, "cond")):
            if other is not None and other.shape[0] != x.shape[0]:
                raise GeodiffError(f"{what} has {other.shape[0]} entries for {x.shape[0]} tiles")
        return x, y, c

    def _prepare_dataset(self, data, labels, cond, name: str):
        if not hasattr(data, "__getitems__"):
            raise GeodiffError(f"{name} is a Dataset without __getitems__ (positions -> a batch tensor)")
        if len(data) == 0:
            raise GeodiffError(f"{name} holds no tile")
        y, c = _as_tensor(labels, torch.long), _as_tensor(cond)
        for other, what in ((y, "labels"), (c, "cond")):
            if other is not None and other.shape[0] != len(data):
                raise GeodiffError(f"{what} has {other.shape[0]} entries for {len(data)} tiles")
        return data, y, c

    def _split(self, train, val):
        if val is not None or self.config.val_fraction == 0:
            return train, val
        if not isinstance(train[0], torch.Tensor):
            raise GeodiffError("val_fraction splits tensors; for a Dataset pass val_data (geodiff.fit "
                               "holds out whole scenes or spatial blocks)")
        n = len(train[0])
        n_val = round(n * self.config.val_fraction)
        if n_val == 0 or n_val == n:
            raise GeodiffError(
                f"val_fraction={self.config.val_fraction} of {n} tiles leaves an empty "
                "training or validation set; change val_fraction or pass val_data"
            )
        g = torch.Generator().manual_seed(self.config.seed * 8 + _SPLIT_STREAM)
        perm = torch.randperm(n, generator=g)
        pick = lambda idx: tuple(None if a is None else a[idx] for a in train)
        return pick(perm[n_val:]), pick(perm[:n_val])

    def total_steps(self, n_train: int, steps: int | None = None) -> int:
        """Optimizer steps a run over ``n_train`` tiles lasts."""
        steps = self.config.steps if steps is None else steps
        if steps is not None:
            return int(steps)
        if self.config.epochs is None:
            raise GeodiffError(
                "give the length of training: TrainConfig(steps=...) or epochs=..., or fit(steps=...)"
            )
        return math.ceil(
            self.config.epochs * n_train / (self.config.batch_size * self.config.grad_accum)
        )

    def fit(
        self,
        data,
        *,
        labels=None,
        cond=None,
        steps: int | None = None,
        val_data=None,
        val_labels=None,
        val_cond=None,
        callback: Callable[[dict], Any] | None = None,
        preview_callback: Callable[[int, nn.Module], Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Train until ``steps`` optimizer steps in total have been taken (a resumed trainer continues).

        Parameters
        ----------
        data : Tensor (N, C, H, W)
            Training tiles, float, finite (typically scaled to [-1, 1]).
        labels : LongTensor (N,), optional
            Class labels (the model needs ``num_classes``).
        cond : Tensor (N, C', h, w), optional
            Low-resolution conditioning images.
        steps : int, optional
            Total optimizer steps to reach; defaults to the config's steps or epochs.
        val_data, val_labels, val_cond : optional
            Validation tiles; otherwise ``config.val_fraction`` of ``data`` is held out.
        callback : callable, optional
            Called with each history record; returning True stops training. A record is also
            written at the step that exhausts ``config.max_seconds``.
        preview_callback : callable, optional
            Called as ``preview_callback(step, ema_model)`` every ``preview_every`` steps and at
            the end, e.g. to sample and plot a few tiles.

        Returns
        -------
        list of dict
            The full history (also in ``self.history``).
        """
        if self.config.checkpoint_dir:
            # Before any work: a run must not train for hours and then fail to save.
            check_destination(self.config.checkpoint_dir, parents=True)
        train = self._prepare(data, labels, cond, "data")
        val = self._prepare(val_data, val_labels, val_cond, "val_data")
        train, val = self._split(train, val)
        total = self.total_steps(len(train[0]), steps)
        if (
            train[1] is not None
            and self.config.class_dropout
            and getattr(self.model, "num_classes", None) is None
        ):
            raise GeodiffError("class_dropout needs a model with num_classes (its null class)")
        cfg = self.config
        bar = None
        if cfg.progress and self.step < total:
            from tqdm.auto import tqdm

            # Under a time budget the reachable step is unknown until the first step is timed.
            bar = tqdm(
                total=None if cfg.max_seconds else total,
                initial=self.step,
                desc="training",
                unit="step",
                dynamic_ncols=True,
            )
        sums: dict[str, torch.Tensor] = {}
        window_steps, window_start = 0, time.perf_counter()
        started, first_step = _clock(), self.step
        batches = self._batches(train[0], total)
        with torch.random.fork_rng(devices=self._rng_devices()):
            self._set_global_rng_state(self._dropout_rng)
            try:
                while self.step < total:
                    record = self._train_step(train, batches)
                    for k, v in record.items():
                        sums[k] = sums.get(k, 0.0) + v
                    window_steps += 1
                    spent = _clock() - started
                    out_of_time = cfg.max_seconds is not None and spent > cfg.max_seconds
                    stop = False
                    if self.step % cfg.log_every == 0 or self.step == total or out_of_time:
                        elapsed = time.perf_counter() - window_start
                        entry = {
                            "step": self.step,
                            **{k: float(v) / window_steps for k, v in sums.items()},
                            "lr": self.optimizer.param_groups[0]["lr"],
                            "images_per_s": window_steps
                            * cfg.batch_size
                            * cfg.grad_accum
                            / max(elapsed, 1e-9),
                        }
                        if val is not None:
                            entry.update(self.validation_loss(*val))
                        self.history.append(entry)
                        if bar is not None:
                            bar.set_postfix(
                                loss=f"{entry['loss']:.4g}", img_s=f"{entry['images_per_s']:.1f}"
                            )
                        stop = (bool(callback(entry)) if callback is not None else False) or out_of_time
                        sums, window_steps, window_start = {}, 0, time.perf_counter()
                    elif bar is not None and window_steps % _BAR_EVERY == 0:
                        # Between history records the bar shows the running window average.
                        rate = window_steps * cfg.batch_size * cfg.grad_accum
                        bar.set_postfix(
                            loss=f"{float(sums['loss']) / window_steps:.4g}",
                            img_s=f"{rate / max(time.perf_counter() - window_start, 1e-9):.1f}",
                        )
                    if bar is not None:
                        if stop:
                            bar.total = self.step
                        elif cfg.max_seconds is not None:
                            bar.total = self._reachable_steps(total, spent, self.step - first_step)
                        bar.update(1)
                    last = stop or self.step == total
                    if preview_callback is not None and (
                        last or (cfg.preview_every and self.step % cfg.preview_every == 0)
                    ):
                        preview_callback(self.step, self.ema_model())
                    if cfg.checkpoint_dir and (
                        last or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0)
                    ):
                        self._dropout_rng = self._global_rng_state()
                        self.save(cfg.checkpoint_dir)
                    if stop:
                        break
            finally:
                self._dropout_rng = self._global_rng_state()
                if bar is not None:
                    bar.close()
                del batches  # stops DataLoader workers
        return self.history

    def batch_items(self, n: int, step: int, micro: int = 0, data=None) -> list:
        """The tiles (positions into ``n``) of micro-batch ``micro`` of optimizer step ``step``,
        with ``data.draws``' augmentation when ``data`` has one: a function of the seed and the
        step alone."""
        cfg = self.config
        key = np.random.SeedSequence([cfg.seed, _DATA_STREAM, step, micro]).generate_state(2, np.uint32)
        g = torch.Generator().manual_seed(int(key[0]) << 32 | int(key[1]))
        positions = torch.randint(n, (cfg.batch_size,), generator=g).tolist()
        draws = getattr(data, "draws", None)
        return draws(positions, g) if draws is not None else positions

    def _batches(self, data, total: int):
        """``(positions, tiles)`` for every micro-batch from the current step to ``total``."""
        cfg = self.config
        plan = _StepBatches(self, data, self.step, total)
        fetch = _Fetch(data)
        if cfg.num_workers and not isinstance(data, torch.Tensor):
            loader = torch.utils.data.DataLoader(
                fetch, batch_sampler=plan, num_workers=cfg.num_workers, collate_fn=_identity,
                prefetch_factor=4, pin_memory=self.device.type == "cuda")
            return iter(loader)
        return (fetch.__getitems__(items) for items in plan)

    def _reachable_steps(self, total: int, spent: float, done: int) -> int:
        """The step cap, or the step the time budget ends on at the rate so far (``done`` steps
        in ``spent`` seconds): the bar's total, so that its ETA never exceeds the budget left."""
        left = max(self.config.max_seconds - spent, 0.0)
        return min(total, self.step + math.ceil(done / max(spent, 1e-9) * left))

    def _learning_rate(self) -> float:
        warm = self.config.warmup_steps
        return self.config.lr * (min(1.0, (self.step + 1) / warm) if warm else 1.0)

    def _train_step(self, train, batches) -> dict[str, torch.Tensor]:
        cfg, (_, y_all, c_all) = self.config, train
        dtype = next(self.model.parameters()).dtype
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, torch.Tensor] = {}
        for _ in range(cfg.grad_accum):
            idx, x0 = next(batches)
            x0 = x0.to(self.device, dtype, non_blocking=True)
            y = None if y_all is None else y_all[idx]
            if y is not None and cfg.class_dropout:
                drop = torch.rand(cfg.batch_size, generator=self._gen_data) < cfg.class_dropout
                y = torch.where(drop, torch.full_like(y, self.model.num_classes), y)
            y = None if y is None else y.to(self.device)
            c = None if c_all is None else c_all[idx].to(self.device, non_blocking=True)
            t, weights = self.resampler.sample(
                cfg.batch_size, device=self.device, generator=self._gen_noise
            )
            noise = draw_noise(
                cfg.noise, x0.shape, generator=self._gen_noise, device=self.device, dtype=x0.dtype
            )
            losses = self._losses(x0, t, noise, y, c)
            ((losses["loss"] * weights).mean() / cfg.grad_accum).backward()
            self.resampler.update(t, losses["loss"].detach())
            for k in ("loss", "mse", "vlb"):
                if k in losses:
                    totals[k] = totals.get(k, 0.0) + losses[k].detach().mean() / cfg.grad_accum
        if not torch.isfinite(totals["loss"]):
            raise GeodiffError(
                f"training loss became {float(totals['loss'])} at step {self.step}; lower lr, "
                "enable grad_clip or check the data scaling (tiles should lie in about [-1, 1])"
            )
        lr = self._learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        params = [p for p in self.model.parameters() if p.grad is not None]
        if cfg.grad_clip is not None:
            totals["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        return totals

    @torch.no_grad()
    def validation_loss(
        self, x, y=None, cond=None, *, batch_size: int | None = None
    ) -> dict[str, float]:
        """Mean loss and MSE over ``x`` with fixed timesteps and noise (same draws at every call)."""
        self.model.eval()
        g = torch.Generator(self.device).manual_seed(self.config.seed * 8 + _VAL_STREAM)
        bs = batch_size or self.config.batch_size
        loss_sum, mse_sum = 0.0, 0.0
        for start in range(0, len(x), bs):
            sl = slice(start, min(start + bs, len(x)))
            x0 = (x[sl] if isinstance(x, torch.Tensor) else x.__getitems__(list(range(sl.start, sl.stop))))
            x0 = x0.to(self.device, next(self.model.parameters()).dtype)
            t = torch.randint(len(self.schedule), (x0.shape[0],), generator=g, device=self.device)
            noise = draw_noise(
                self.config.noise, x0.shape, generator=g, device=self.device, dtype=x0.dtype
            )
            losses = self._losses(
                x0,
                t,
                noise,
                None if y is None else y[sl].to(self.device),
                None if cond is None else cond[sl].to(self.device),
            )
            loss_sum += float(losses["loss"].sum())
            mse_sum += float(losses["mse"].sum())
        self.model.train()
        return {"val_loss": loss_sum / len(x), "val_mse": mse_sum / len(x)}

    def ema_model(self) -> nn.Module:
        """A copy of the model holding the EMA weights, in eval mode, ready for sampling.

        Its weights are channels-last (NHWC): on CPU, oneDNN's inference convolutions run about
        15-20 % faster so (measured; in training the NHWC backward is slower, so the trained model
        stays NCHW there).
        """
        model = self.ema.averaged_model(self.model)
        return (
            model.to(memory_format=torch.channels_last)
            if self.device.type in ("cpu", "cuda")
            else model
        )

    # -- checkpoints ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """JSON state of the trainer (tensors encoded by the checkpoint writer)."""
        return {
            "kind": "trainer",
            "model_config": getattr(self.model, "config", None),
            "schedule": self.schedule.to_config(),
            "train_config": self.config.to_dict(),
            "step": self.step,
            "history": self.history,
            "rng": {
                "data": self._gen_data.get_state(),
                "noise": self._gen_noise.get_state(),
                "global": self._dropout_rng,
            },
            "resampler": self.resampler.state_dict(),
        }

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a checkpoint directory (see :mod:`geodiff.diffusion.checkpoint`) atomically;
        ``overwrite`` replaces a directory geodiff did not write."""
        return save_checkpoint(
            path,
            overwrite=overwrite,
            model=self.model.state_dict(),
            ema=self.ema.state_dict(),
            optimizer=self.optimizer.state_dict(),
            state=self.state(),
        )

    def load(self, path: str | Path) -> Trainer:
        """Restore weights, EMA, optimizer, RNG streams, sampler state, step and history in place."""
        return self._restore(load_checkpoint(path, device=self.device))

    def _restore(self, ck: Checkpoint) -> Trainer:
        path, st = ck.path, ck.state
        if st.get("kind") != "trainer" or ck.ema is None or ck.optimizer is None:
            raise CheckpointError(
                f"{path} is not a trainer checkpoint (no EMA or optimizer state); "
                "load its weights with load_state_dict instead"
            )
        mine = getattr(self.model, "config", None)
        if mine is not None and st.get("model_config") not in (None, mine):
            raise CheckpointError(
                f"{path} holds a model with config {st['model_config']}, not {mine}; "
                "build the trainer with Trainer.from_checkpoint(path)"
            )
        try:
            self.model.load_state_dict(ck.model)
            self.ema.load_state_dict(ck.ema)
            self.optimizer.load_state_dict(ck.optimizer)
            self._gen_data.set_state(st["rng"]["data"])
            self._gen_noise.set_state(st["rng"]["noise"].to("cpu"))
            self._dropout_rng = dict(st["rng"]["global"])
            self.resampler.load_state_dict(st["resampler"])
            self.step = int(st["step"])
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            raise CheckpointError(
                f"{path} does not match this trainer ({err}); the checkpoint is "
                "corrupt or from another model"
            ) from err
        self.history = list(st.get("history", []))
        return self

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device | None = None, **overrides: Any
    ) -> Trainer:
        """Rebuild a UNet trainer from a checkpoint and restore its state, ready to ``fit`` on.

        ``overrides`` replace fields of the saved TrainConfig (e.g. ``progress=False``).
        """
        from .unet import UNet

        ck = load_checkpoint(path, device=pick_device(device))
        try:
            model = UNet.from_config(ck.state["model_config"])
            schedule = NoiseSchedule.from_config(ck.state["schedule"])
            config = TrainConfig.from_dict({**ck.state["train_config"], **overrides})
        except (KeyError, TypeError, GeodiffError) as err:
            if isinstance(err, CheckpointError):
                raise
            raise CheckpointError(
                f"{path} lacks a usable model, schedule or training config ({err})"
            ) from err
        return cls(model, schedule, config, device=device)._restore(ck)


class _StepBatches:
    """The batch sampler of a run: the items of every micro-batch from ``start`` to ``total``."""

    def __init__(self, trainer: Trainer, data, start: int, total: int):
        self.trainer, self.data, self.start, self.total = trainer, data, start, total

    def __iter__(self):
        n, accum = len(self.data), self.trainer.config.grad_accum
        for step in range(self.start, self.total):
            for micro in range(accum):
                yield self.trainer.batch_items(n, step, micro, self.data)

    def __len__(self) -> int:
        return (self.total - self.start) * self.trainer.config.grad_accum


class _Fetch(torch.utils.data.Dataset):
    """Reads a batch and returns it with its positions."""

    def __init__(self, data):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, items) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.tensor([i if isinstance(i, int) else i[0] for i in items])
        if isinstance(self.data, torch.Tensor):
            return positions, self.data[positions]
        return positions, self.data.__getitems__(items)


def _identity(batch):
    return batch
