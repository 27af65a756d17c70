"""The torch diffusion engine of geodiff: schedules, forward noise, losses, samplers.

Free of xarray: it works on tensors (B, C, H, W). The public entry points are
:class:`NoiseSchedule` and :func:`sample`.
"""

from .noise import NoiseSpec, draw_noise
from .respace import space_timesteps
from .samplers import SAMPLERS, sample
from .schedule import NoiseSchedule

__all__ = ["NoiseSchedule", "NoiseSpec", "SAMPLERS", "draw_noise", "sample", "space_timesteps"]
