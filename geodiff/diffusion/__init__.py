"""The torch diffusion engine of geodiff: schedules, forward noise, network, losses, trainer,
samplers.

Free of xarray: it works on tensors (B, C, H, W). The entry points are :class:`NoiseSchedule`,
:class:`UNet`, :class:`Trainer` and :func:`sample`.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .device import pick_device
from .ema import EMA
from .losses import training_losses
from .noise import NoiseSpec, draw_noise
from .respace import space_timesteps
from .samplers import SAMPLERS, sample
from .schedule import NoiseSchedule
from .timestep_draw import LossSecondMomentDraw, UniformDraw, create_timestep_draw
from .train import TrainConfig, Trainer
from .unet import UNet

__all__ = [
    "EMA",
    "SAMPLERS",
    "LossSecondMomentDraw",
    "NoiseSchedule",
    "NoiseSpec",
    "TrainConfig",
    "Trainer",
    "UNet",
    "UniformDraw",
    "create_timestep_draw",
    "draw_noise",
    "load_checkpoint",
    "pick_device",
    "sample",
    "save_checkpoint",
    "space_timesteps",
    "training_losses",
]
