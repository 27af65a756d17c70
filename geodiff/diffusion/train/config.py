"""The configuration of a training run: one dataclass, validated on construction, JSON round trip."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from geodiff.errors import GeodiffError

from ..noise import NoiseSpec, as_noise_spec


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
    train_steps, epochs : int / float, optional
        Length of training as total optimizer steps, or as passes over the training tiles
        (``epochs * N / (batch_size * grad_accum)`` steps); ``train_steps`` wins when both are given.
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
    timestep_draw : {"uniform", "loss-second-moment"}
        How timesteps are drawn (importance sampling of improved DDPM section 3.3).
    noise : NoiseSpec, str or dict
        Forward-process noise (white or spatially correlated).
    class_dropout : float
        Probability of replacing a class label with the null class (classifier-free guidance).
    cond_residual : bool
        With a conditioning image, learn the tile minus that image resized bilinearly to it
        (the residual of SRDiff, Li et al. 2022) instead of the tile itself: the network only
        learns what the conditioning does not hold. Samples then add the image back.
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
    train_steps: int | None = None
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
    timestep_draw: str = "uniform"
    noise: Any = field(default_factory=NoiseSpec)
    class_dropout: float = 0.0
    cond_residual: bool = False
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
            (self.train_steps is None or self.train_steps >= 1, "train_steps must be >= 1"),
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
