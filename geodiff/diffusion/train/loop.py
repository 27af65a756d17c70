"""The training loop of a denoising diffusion model: AdamW, warm-up, clipping, EMA, AMP, exact resume.

Every random draw comes from the streams of :mod:`.rng`, and dropout runs on a forked global RNG
whose state the trainer owns; saving and resuming therefore continues a run bit for bit on the
same device. Data comes through :mod:`.batches` (a tensor or any map-style Dataset); records,
the time budget, the bar, previews and checkpoints are the hooks of :mod:`.hooks`; checkpoint
state is in :mod:`.state`. What remains here (about 400 lines, half of them docstrings) is the
one class whose methods share a run's state: set-up, the model call, a step, validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodiff.errors import GeodiffError
from geodiff.files import check_destination

from ..checkpoint import load_checkpoint
from ..device import pick_device
from ..ema import EMA
from ..losses import training_losses
from ..noise import draw_noise
from ..schedule import NoiseSchedule
from ..timestep_draw import create_timestep_draw
from ..unet import resized
from . import batches as feeding
from . import distributed, state
from .config import TrainConfig
from .hooks import Agreement, Checkpoints, History, Hook, Previews, ProgressBar, Step, TimeBudget
from .precision import autocast_dtype, gpu_only
from .rng import (
    DATA,
    NOISE,
    VALIDATION,
    forked_devices,
    global_state,
    initial_dropout_state,
    set_global_state,
    stream_seed,
)


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
        None picks CUDA, then MPS, then CPU (under torchrun, the rank's own GPU).

    Under torchrun (a ``torch.distributed`` process group initialised, e.g. by
    :func:`~geodiff.diffusion.train.distributed.init_from_env`) the model is wrapped in
    DistributedDataParallel and ``config.batch_size`` is the global batch, shared by the ranks
    (see :mod:`.distributed`); rank 0 alone shows the bar, previews and writes checkpoints.

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
        self.group = group = distributed.current()
        if device is None and group.world > 1 and torch.cuda.is_available():
            device = torch.device("cuda", group.local_rank)
        self.device = pick_device(device)
        if config.batch_size % group.world:
            raise GeodiffError(f"the global batch of {config.batch_size} tiles does not split over "
                               f"{group.world} processes; give a batch size that is a multiple of {group.world}")
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
        self.amp_dtype = autocast_dtype(config.amp, self.device)
        self.channels_last = gpu_only("channels_last", config.channels_last, True, self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        parallel = self.model
        if group.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            parallel = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.forward_model = (
            torch.compile(parallel)
            if gpu_only("compile", config.compile, False, self.device)
            else parallel
        )

        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.ema = EMA(self.model, decay=config.ema_decay, warmup=config.ema_warmup)
        self.timestep_draw = create_timestep_draw(config.timestep_draw, len(schedule))
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self._gen_data = torch.Generator().manual_seed(stream_seed(config.seed, DATA))
        self._gen_noise = torch.Generator(self.device).manual_seed(stream_seed(config.seed, NOISE))
        self._dropout_rng = initial_dropout_state(config.seed, self.device)

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

    def total_steps(self, n_train: int, train_steps: int | None = None) -> int:
        """Optimizer steps a run over ``n_train`` tiles lasts."""
        train_steps = self.config.train_steps if train_steps is None else train_steps
        if train_steps is not None:
            return int(train_steps)
        if self.config.epochs is None:
            raise GeodiffError(
                "give the length of training: TrainConfig(train_steps=...) or epochs=..., or fit(train_steps=...)"
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
        train_steps: int | None = None,
        val_data=None,
        val_labels=None,
        val_cond=None,
        callback: Callable[[dict], Any] | None = None,
        preview_callback: Callable[[int, nn.Module], Any] | None = None,
        hooks: Sequence[Hook] = (),
    ) -> list[dict[str, Any]]:
        """Train until ``train_steps`` optimizer steps in total have been taken (a resumed trainer continues).

        Parameters
        ----------
        data : Tensor (N, C, H, W), Dataset or iterable of batches
            Training tiles, float, finite (typically scaled to [-1, 1]): a tensor, a map-style
            Dataset with ``__getitems__`` (batches drawn per step, see :mod:`.batches`; a batch
            may be a ``(tiles, cond)`` pair, the conditioning read with the tiles), or an
            iterable of batches such as a DataLoader, taken in its order (give ``train_steps``).
        labels : LongTensor (N,) or Tensor (N, classes), optional
            Class labels or multi-hot rows (the model needs ``num_classes``).
        cond : Tensor (N, C', h, w), optional
            Low-resolution conditioning images.
        train_steps : int, optional
            Total optimizer steps to reach; defaults to the config's train_steps or epochs.
        val_data, val_labels, val_cond : optional
            Validation tiles; otherwise ``config.val_fraction`` of ``data`` is held out.
        callback : callable, optional
            Called with each history record; returning True stops training. A record is also
            written at the step that exhausts ``config.max_seconds``.
        preview_callback : callable, optional
            Called as ``preview_callback(step, ema_model)`` every ``preview_every`` steps and at
            the end, e.g. to sample and plot a few tiles.
        hooks : sequence of Hook, optional
            More :class:`~geodiff.diffusion.train.hooks.Hook` objects, called at every step after
            the time budget and the history record and before the bar, previews and checkpoints
            (so a hook that stops the run still gets a final checkpoint).

        Returns
        -------
        list of dict
            The full history (also in ``self.history``).
        """
        cfg = self.config
        if cfg.checkpoint_dir:
            # Before any work: a run must not train for hours and then fail to save.
            check_destination(cfg.checkpoint_dir, parents=True)
        dtype = next(self.model.parameters()).dtype
        train = feeding.prepare(data, labels, cond, "data", dtype)
        val = feeding.prepare(val_data, val_labels, val_cond, "val_data", dtype)
        train, val = feeding.split(train, val, cfg.val_fraction, cfg.seed)
        total = self.total_steps(len(train[0]) if train_steps is None and cfg.train_steps is None else 0, train_steps)
        if train[1] is not None and cfg.class_dropout and getattr(self.model, "num_classes", None) is None:
            raise GeodiffError("class_dropout needs a model with num_classes (its null class)")
        run_hooks = self._hooks(val, callback, preview_callback, hooks)
        feed = feeding.batches(train[0], cfg.batch_size, cfg.grad_accum, cfg.seed, self.step, total,
                               workers=cfg.num_workers, pin_memory=self.device.type == "cuda", group=self.group)
        with torch.random.fork_rng(devices=forked_devices(self.device)):
            set_global_state(self._dropout_rng, self.device)
            try:
                for hook in run_hooks:
                    hook.start(self, total)
                while self.step < total:
                    event = Step(self.step + 1, total, self._train_step(train, feed))
                    for hook in run_hooks:
                        hook.after_step(self, event)
                    if event.stop:
                        break
            finally:
                self._dropout_rng = global_state(self.device)
                for hook in run_hooks:
                    hook.end(self)
                del feed  # stops DataLoader workers
        return self.history

    def _hooks(self, val, callback, preview_callback, extra: Sequence[Hook]) -> list[Hook]:
        """The run's hooks in order: the budget and the history decide whether this step is the
        last, the caller's hooks may stop it too, and the bar, previews and checkpoints act on
        that decision."""
        cfg = self.config
        budget, history = TimeBudget(cfg.max_seconds), History(val, callback)
        hooks: list[Hook] = [budget, history, *extra]
        if self.group.world > 1:
            hooks.append(Agreement(self.group))
        if not self.group.main:
            return hooks
        if cfg.progress:
            hooks.append(ProgressBar(history, budget))
        if preview_callback is not None:
            hooks.append(Previews(preview_callback, cfg.preview_every))
        if cfg.checkpoint_dir:
            hooks.append(Checkpoints(cfg.checkpoint_dir, cfg.checkpoint_every))
        return hooks

    def _learning_rate(self) -> float:
        warm = self.config.warmup_steps
        return self.config.lr * (min(1.0, (self.step + 1) / warm) if warm else 1.0)

    def _train_step(self, train, batches) -> dict[str, torch.Tensor]:
        cfg, (_, y_all, c_all), group = self.config, train, self.group
        dtype = next(self.model.parameters()).dtype
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, torch.Tensor] = {}
        for micro in range(cfg.grad_accum):
            idx, x0 = next(batches)
            x0, c_batch = x0 if isinstance(x0, tuple) else (x0, None)  # a Dataset's (tiles, cond)
            x0 = x0.to(self.device, dtype, non_blocking=True)
            whole = x0.shape[0] * group.world  # the global batch (an iterable's batches may be short)
            y = None if y_all is None else y_all[idx]
            if y is not None and cfg.class_dropout:
                drop = group.share(torch.rand(whole, generator=self._gen_data)) < cfg.class_dropout
                # The null class: index num_classes, or an all-zero multi-hot row.
                y = torch.where(drop[:, None], 0.0, y) if y.is_floating_point() else \
                    torch.where(drop, torch.full_like(y, self.model.num_classes), y)
            y = None if y is None else y.to(self.device)
            c = c_batch if c_all is None else c_all[idx]
            c = None if c is None else c.to(self.device, dtype, non_blocking=True)
            x0 = self._target(x0, c)
            # The global batch's draws, of which this rank keeps its share (see .distributed).
            t, weights = (group.share(v) for v in self.timestep_draw.sample(
                whole, device=self.device, generator=self._gen_noise
            ))
            noise = group.share(draw_noise(
                cfg.noise, (whole, *x0.shape[1:]), generator=self._gen_noise, device=self.device, dtype=x0.dtype
            ))
            # DDP averages gradients at the last micro-batch only.
            syncing = micro == cfg.grad_accum - 1 or group.world == 1
            with nullcontext() if syncing else self.forward_model.no_sync():
                losses = self._losses(x0, t, noise, y, c)
                ((losses["loss"] * weights).mean() / cfg.grad_accum).backward()
            self.timestep_draw.update(group.gather(t), group.gather(losses["loss"].detach()))
            for k in ("loss", "mse", "vlb"):
                if k in losses:
                    totals[k] = totals.get(k, 0.0) + group.mean(losses[k].detach().mean()) / cfg.grad_accum
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

    def _target(self, x0: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """What the network learns to generate: the tiles, or their residual from the resized
        conditioning image (``cond_residual``)."""
        if not self.config.cond_residual or cond is None:
            return x0
        return x0 - resized(cond, x0.shape[-2:])

    @torch.no_grad()
    def validation_loss(
        self, x, y=None, cond=None, *, batch_size: int | None = None
    ) -> dict[str, float]:
        """Mean loss and MSE over ``x`` with fixed timesteps and noise (same draws at every call)."""
        self.model.eval()
        g = torch.Generator(self.device).manual_seed(stream_seed(self.config.seed, VALIDATION))
        bs = batch_size or self.config.batch_size
        loss_sum, mse_sum = 0.0, 0.0
        for start in range(0, len(x), bs):
            sl = slice(start, min(start + bs, len(x)))
            x0 = feeding.rows(x, sl.start, sl.stop)
            x0, c_batch = x0 if isinstance(x0, tuple) else (x0, None if cond is None else cond[sl])
            dtype = next(self.model.parameters()).dtype
            x0 = self._target(x0.to(self.device, dtype), None if c_batch is None else c_batch.to(self.device, dtype))
            t = torch.randint(len(self.schedule), (x0.shape[0],), generator=g, device=self.device)
            noise = draw_noise(
                self.config.noise, x0.shape, generator=g, device=self.device, dtype=x0.dtype
            )
            losses = self._losses(
                x0,
                t,
                noise,
                None if y is None else y[sl].to(self.device),
                None if c_batch is None else c_batch.to(self.device, dtype),
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

    # -- checkpoints (see .state) --------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """JSON state of the trainer (tensors encoded by the checkpoint writer)."""
        return state.trainer_state(self)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a checkpoint directory (see :mod:`geodiff.diffusion.checkpoint`) atomically;
        ``overwrite`` replaces a directory geodiff did not write."""
        return state.save(self, path, overwrite=overwrite)

    def load(self, path: str | Path) -> Trainer:
        """Restore weights, EMA, optimizer, RNG streams, sampler state, step and history in place."""
        return state.restore(self, load_checkpoint(path, device=self.device))

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device | None = None,
        *,
        model_factory: Callable[[dict], nn.Module] | None = None,
        **overrides: Any,
    ) -> Trainer:
        """Rebuild a trainer from a checkpoint and restore its state, ready to ``fit`` on.

        ``model_factory(model_config)`` builds the network from the saved ``model.config``
        (:meth:`UNet.from_config <geodiff.diffusion.unet.UNet.from_config>` by default);
        ``overrides`` replace fields of the saved TrainConfig (e.g. ``progress=False``).
        """
        ck = load_checkpoint(path, device=pick_device(device))
        model, schedule, config = state.rebuild(ck, model_factory, overrides)
        return state.restore(cls(model, schedule, config, device=device), ck)
