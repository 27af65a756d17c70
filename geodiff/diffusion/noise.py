"""Forward-process noise: white, or a stationary spatially correlated Gaussian random field.

InSAR noise (atmosphere, decorrelation) is spatially correlated, and a diffusion model trained
with white forward noise must learn all of that structure from scratch; correlated forward noise
(as in Popescu et al., Bristol) moves the model's effort to what remains. ``draw_noise`` is used
identically by the losses (training) and the samplers (``noise=`` argument), so both sides see
the same field.

Every correlated field has zero mean and unit variance at each pixel, and is drawn by FFT on the
device, on tiles of any shape, by circulant embedding (Dietrich, Newsam (1997), *Fast and exact
simulation of stationary Gaussian processes through circulant embedding of the covariance
matrix*; Wood, Chan (1994)): the covariance is laid on a periodic grid at least twice the tile in
each direction, its eigenvalues are the FFT of that grid, and a tile-sized crop of the periodic
field has exactly the requested stationary covariance whenever every eigenvalue is >= 0. Each
complex draw gives two independent fields (real and imaginary parts).

Models (r = lag in pixels, f = spatial frequency in cycles per pixel):

- ``NoiseSpec("white")``: independent N(0, 1) pixels (``torch.randn``).
- ``NoiseSpec("exponential", length=L)``: correlation exp(-r / L). Negative eigenvalues of the
  embedding (rare once the grid exceeds the tile by several L) are set to 0 and the variance is
  renormalised to 1, the standard approximate fallback. The periodic grid grows (2 to 8 times
  the tile) until the embedding is exact, which it is for L up to about a quarter of the tile.
- ``NoiseSpec("power", exponent=beta, length=L)``: a power-law spectrum
  P(f) ∝ (1 + (2 pi L f)^2)^(-beta/2) with outer scale L (von Karman), i.e. a Matérn field with
  smoothness nu = beta/2 - 1 and scale L (beta = 3 is the exponential model, beta = 8/3 the
  Kolmogorov turbulence exponent of InSAR atmospheres). With ``length=None`` the spectrum is the
  pure power law f^-beta with the mean removed on the periodic grid (outer scale = that grid).
  The spectrum is set on the periodic grid (folded over its aliases, so that lags are sampled
  from the continuous model), so the covariance is the periodic version of the Matérn model:
  exact up to wrap-around, small when L is well below the grid (at least twice the tile).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.fft import next_fast_len

from geodiff.errors import EmbeddingError
from geodiff.geostats.fields import circulant_eigenvalues

__all__ = ["NoiseSpec", "as_noise_spec", "draw_noise"]

KINDS = ("white", "exponential", "power")


@dataclass(frozen=True)
class NoiseSpec:
    """Which forward noise to draw: ``kind`` "white", "exponential" or "power".

    ``length``: correlation length in pixels (exponential: required; power: outer scale,
    None for the pure power law). ``exponent``: the power-law exponent beta (power only, > 0;
    with an outer scale beta > 2 keeps the variance finite per unit area).
    """

    kind: str = "white"
    length: float | None = None
    exponent: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"noise kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "exponential" and (self.length is None or not self.length > 0):
            raise ValueError("exponential noise needs a correlation length > 0 in pixels, e.g. NoiseSpec('exponential', length=4.0)")
        if self.kind == "power" and (self.exponent is None or not self.exponent > 0):
            raise ValueError("power-law noise needs exponent > 0, e.g. NoiseSpec('power', exponent=8/3, length=16.0)")
        if self.kind == "power" and self.length is not None and not self.length > 0:
            raise ValueError("the outer scale (length) of power-law noise must be > 0 pixels or None")
        if self.kind == "white" and (self.length is not None or self.exponent is not None):
            raise ValueError("white noise takes no length or exponent")

    def to_config(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_config(cls, config: dict) -> NoiseSpec:
        return cls(**config)


def as_noise_spec(spec) -> NoiseSpec:
    """None, a kind name, a config dict or a NoiseSpec, as a NoiseSpec."""
    if spec is None:
        return NoiseSpec()
    if isinstance(spec, NoiseSpec):
        return spec
    if isinstance(spec, str):
        return NoiseSpec(spec)
    if isinstance(spec, dict):
        return NoiseSpec.from_config(spec)
    raise TypeError(f"expected a NoiseSpec, a kind name or a config dict, got {type(spec).__name__}")


def _exponential_eigenvalues(height: int, width: int, length: float) -> np.ndarray:
    """Eigenvalues of the circulant embedding of exp(-r/L) on the smallest grid, among 2, 3, 4,
    6 and 8 times the tile, where they are all >= 0 (exact simulation); if none is, the largest
    grid with its negative eigenvalues set to 0."""
    def covariance(r):
        return np.exp(-r / length)

    for factor in (2, 3, 4, 6, 8):
        # real=True: the smallest 2^a 3^b 5^c size, which every FFT backend handles fastest
        grid = (next_fast_len(factor * height, real=True), next_fast_len(factor * width, real=True))
        try:
            return circulant_eigenvalues(covariance, grid)
        except EmbeddingError:
            continue
    return circulant_eigenvalues(covariance, grid, clip=True)


def _power_eigenvalues(height: int, width: int, exponent: float, length: float | None,
                       aliases: int = 4) -> np.ndarray:
    """The power-law spectrum on a periodic grid twice the tile (always >= 0), folded over the
    aliases f + k, |k_i| <= ``aliases``, so that the field's covariance at integer lags is the
    continuous model's (the lattice spectrum is the sum of the continuous one over its aliases)."""
    M, N = next_fast_len(2 * height, real=True), next_fast_len(2 * width, real=True)
    fi = np.fft.fftfreq(M)[:, None]
    fj = np.fft.fftfreq(N)[None, :]
    lam = np.zeros((M, N))
    for ky in range(-aliases, aliases + 1):
        for kx in range(-aliases, aliases + 1):
            f2 = (fi + ky) ** 2 + (fj + kx) ** 2
            if length is None:  # pure power law; its infinite mean (f = 0) is removed below
                lam += np.maximum(f2, 1e-300) ** (-exponent / 2)
            else:
                lam += (1.0 + (2 * math.pi * length) ** 2 * f2) ** (-exponent / 2)
    if length is None:
        lam[0, 0] = 0.0
    return lam


@lru_cache(maxsize=32)
def _amplitude(spec: NoiseSpec, height: int, width: int, device: str) -> torch.Tensor:
    """sqrt(lambda / (M N)) on the M x N periodic grid, float64, where lambda are the eigenvalues
    of the circulant covariance, scaled so that the variance per pixel, sum(lambda) / (M N), is 1."""
    if spec.kind == "exponential":
        lam = _exponential_eigenvalues(height, width, spec.length)
    else:
        lam = _power_eigenvalues(height, width, spec.exponent, spec.length)
    # The spectra are numpy (one implementation with geodiff.geostats); the draws are on the device.
    return torch.as_tensor(np.sqrt(lam / lam.sum()), device=torch.device(device))


def draw_noise(spec, shape, *, generator=None, device=None, dtype=None) -> torch.Tensor:
    """A draw of the forward noise ``spec`` of ``shape`` (..., H, W): unit variance per pixel.

    Fields are independent across all leading dimensions (batch, channels). With a generator the
    draw is reproducible on its device; ``device`` defaults to the generator's device. With a
    sequence of generators, one per entry of the first dimension, entry i is drawn from
    generator i alone: a sample's noise then does not depend on the batch it is drawn in.
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        return _draw_per_row(spec, shape, list(generator), device, dtype)
    spec = as_noise_spec(spec)
    if device is None and generator is not None:
        device = generator.device
    device = torch.device("cpu") if device is None else torch.device(device)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    shape = tuple(int(s) for s in shape)
    if spec.kind == "white":
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if len(shape) < 2:
        raise ValueError(f"correlated noise needs a shape ending in (H, W), got {shape}")
    H, W = shape[-2:]
    amp = _amplitude(spec, H, W, str(device))
    work = torch.float64 if dtype == torch.float64 else torch.float32
    n_fields = math.prod(shape[:-2])
    n_draws = (n_fields + 1) // 2
    z = torch.randn((n_draws, 2) + amp.shape, generator=generator, device=device, dtype=work)
    field = torch.fft.fft2(torch.complex(z[:, 0], z[:, 1]) * amp.to(work))
    both = torch.cat([field.real, field.imag], 0)[:n_fields, :H, :W]
    return both.reshape(shape).to(dtype).contiguous()


def _draw_per_row(spec, shape, generators: list, device, dtype) -> torch.Tensor:
    shape = tuple(int(s) for s in shape)
    if not shape or len(generators) != shape[0]:
        raise ValueError(f"{len(generators)} generators for noise of shape {shape}: give one per entry "
                         "of the first dimension")
    return torch.stack([draw_noise(spec, shape[1:], generator=g, device=device, dtype=dtype) for g in generators])
