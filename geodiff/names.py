"""The names geodiff accepts for its choices, in one torch-free place: the library validates
against them and the command line offers them, so the two cannot drift apart."""

from __future__ import annotations

#: Solvers of the reverse process (:func:`geodiff.diffusion.samplers.sample`).
SAMPLERS = ("ddpm", "ddim", "dpmsolver++", "dpmsolver++3m", "unipc", "heun")
#: Spacings set on noise levels rather than timesteps.
NOISE_LEVEL_SPACINGS = ("karras", "logsnr")
#: The named spacings of sampling timesteps (the samplers also take section strings and lists).
TIMESTEP_SPACINGS = ("trailing", "leading", "linspace", *NOISE_LEVEL_SPACINGS)
#: UNet sizes (:data:`geodiff.diffusion.unet.PRESETS`).
PRESETS = ("tiny", "small", "base")
#: How a synthetic scene is made (:func:`geodiff.sampling.sample_scene`).
SCENE_METHODS = ("fused", "tiles")
#: Where a synthetic scene's scaling coefficients come from.
COEFFICIENTS = ("location", "draw")
#: Semivariogram estimators (:func:`geodiff.geostats.semivariogram`).
ESTIMATORS = ("matheron", "cressie", "dowd")
