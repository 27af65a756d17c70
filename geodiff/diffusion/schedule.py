"""Noise schedules of the Gaussian forward process, as data.

A :class:`NoiseSchedule` holds the float64 tensors of one discrete schedule of ``T`` steps and the
closed-form formulas of the forward process q and its posterior, named as in

- Ho, Jain, Abbeel (2020), *Denoising Diffusion Probabilistic Models* (DDPM), and
- Nichol, Dhariwal (2021), *Improved Denoising Diffusion Probabilistic Models* (improved DDPM).

Samplers (``samplers.py``) and losses (``losses.py``) read these tensors; the schedule knows
nothing of solvers. Tensors stay float64 and are cast to the data's dtype and device at use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .respace import space_timesteps

__all__ = ["SCHEDULES", "NoiseSchedule", "make_betas"]

SCHEDULES = ("linear", "cosine", "sigmoid")


def _betas_from_alpha_bar(alpha_bar, timesteps: int, max_beta: float) -> torch.Tensor:
    """beta_t = min(1 - abar(t+1)/abar(t), max_beta) for a continuous abar on [0, 1] (improved DDPM eq. 17)."""
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    abar = alpha_bar(t)
    return (1.0 - abar[1:] / abar[:-1]).clamp(min=0.0, max=max_beta)


def make_betas(name: str, timesteps: int) -> torch.Tensor:
    """The float64 betas of a named schedule of ``timesteps`` steps.

    - ``"linear"``: DDPM's 1e-4 .. 0.02 over 1000 steps, both ends scaled by 1000/T so that any T
      gives the same total noise (improved DDPM, ``get_named_beta_schedule``).
    - ``"cosine"``: abar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2), s = 0.008, beta <= 0.999
      (improved DDPM, eq. 17).
    - ``"sigmoid"``: abar(t) = (sigmoid(3) - sigmoid(6 t/T - 3)) / (sigmoid(3) - sigmoid(-3)), i.e. a
      sigmoid in log-SNR between start -3 and end 3 with tau = 1 (Jabri, Fleet, Chen (2022),
      *Scalable Adaptive Computation for Iterative Generation*, Algorithm 3), beta <= 0.999.
    """
    if not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be a positive int, got {timesteps!r}")
    if name == "linear":
        scale = 1000.0 / timesteps
        if scale * 0.02 >= 1:
            raise ValueError(f"the linear schedule scaled to {timesteps} steps has betas >= 1; use T >= 21 or another schedule")
        return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    if name == "cosine":
        s = 0.008
        return _betas_from_alpha_bar(
            lambda t: torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2, timesteps, 0.999
        )
    if name == "sigmoid":
        start, end, tau = -3.0, 3.0, 1.0
        v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
        v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))
        return _betas_from_alpha_bar(
            lambda t: (v_end - torch.sigmoid((t * (end - start) + start) / tau)) / (v_end - v_start),
            timesteps,
            0.999,
        )
    raise ValueError(f"unknown noise schedule {name!r}; choose one of {SCHEDULES} or NoiseSchedule.from_betas")


def _broadcast(values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor | float:
    """values[t] cast to like's dtype and device, shaped (B, 1, 1, ...) to broadcast over like;
    a plain float when t is an int (one timestep for the whole batch, as in sampling)."""
    if isinstance(t, int):
        return float(values[t])
    out = values.to(t.device)[t].to(like.dtype)
    return out.reshape(out.shape + (1,) * (like.ndim - out.ndim))


class NoiseSchedule:
    """A discrete variance schedule beta_1..beta_T and the forward process it defines.

    ``NoiseSchedule("cosine", timesteps=1000)`` builds a named schedule (see :func:`make_betas`);
    ``NoiseSchedule.from_betas(betas)`` takes any betas in (0, 1). Index ``t`` runs over 0..T-1
    (paper step t+1). All attributes below are float64 tensors of length T.

    Methods take ``t`` as a LongTensor (B,) of per-example timesteps, or as an int when the whole
    batch shares one timestep (samplers): coefficients are then plain floats.
    """

    def __init__(self, name: str = "cosine", timesteps: int = 1000):
        self._init(make_betas(name, timesteps), name)

    @classmethod
    def from_betas(cls, betas: Sequence[float] | torch.Tensor) -> NoiseSchedule:
        """A schedule from explicit betas (each in (0, 1])."""
        self = cls.__new__(cls)
        self._init(torch.as_tensor(betas, dtype=torch.float64).detach().cpu().clone(), "custom")
        return self

    def _init(self, betas: torch.Tensor, name: str) -> None:
        if betas.ndim != 1 or betas.numel() < 1:
            raise ValueError(f"betas must be a non-empty 1-D sequence, got shape {tuple(betas.shape)}")
        if not bool(((betas > 0) & (betas <= 1)).all()):
            raise ValueError("every beta must lie in (0, 1]")
        self.name = name
        self.timesteps = int(betas.numel())
        self.betas = betas
        # alpha_t = 1 - beta_t, abar_t = prod_{s<=t} alpha_s (DDPM sec. 2)
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        # q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)   (DDPM eq. 4)
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - self.alphas_cumprod).sqrt()
        # q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I)   (DDPM eqs. 6-7)
        # beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # beta~_0 = 0, so its log is clipped to beta~_1 (improved DDPM code, used by the learned range)
        first = self.posterior_variance[1:2] if self.timesteps > 1 else self.betas[:1]
        self.posterior_log_variance_clipped = torch.log(torch.cat([first, self.posterior_variance[1:]]))
        # mu~_t = coef1 x_0 + coef2 x_t with coef1 = sqrt(abar_{t-1}) beta_t / (1 - abar_t),
        # coef2 = sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t)
        self.posterior_mean_coef1 = betas * self.alphas_cumprod_prev.sqrt() / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * self.alphas.sqrt() / (1.0 - self.alphas_cumprod)

    # ------------------------------------------------------------------ description and config
    def __len__(self) -> int:
        return self.timesteps

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.name!r}, timesteps={self.timesteps})"

    def to_config(self) -> dict:
        """A JSON-serialisable description; :meth:`from_config` rebuilds the same schedule."""
        if self.name in SCHEDULES:
            return {"schedule": self.name, "timesteps": self.timesteps}
        return {"schedule": "custom", "timesteps": self.timesteps, "betas": self.betas.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> NoiseSchedule:
        name = config.get("schedule")
        if name == "custom":
            return cls.from_betas(config["betas"])
        if name in SCHEDULES:
            return cls(name, int(config["timesteps"]))
        raise ValueError(f"not a NoiseSchedule config: {config!r}")

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio abar_t / (1 - abar_t) at timesteps t (float64)."""
        abar = self.alphas_cumprod.to(t.device)[t]
        return abar / (1.0 - abar)

    # ------------------------------------------------------------------ forward process
    def q_mean_variance(self, x0: torch.Tensor, t: torch.Tensor):
        """Mean and variance of q(x_t | x_0) (DDPM eq. 4)."""
        mean = _broadcast(self.sqrt_alphas_cumprod, t, x0) * x0
        var = _broadcast(1.0 - self.alphas_cumprod, t, x0)
        return mean, var

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, a draw of q(x_t | x_0) (DDPM eq. 4)."""
        if noise is None:
            noise = torch.randn_like(x0)
        return _broadcast(self.sqrt_alphas_cumprod, t, x0) * x0 + _broadcast(
            self.sqrt_one_minus_alphas_cumprod, t, x0
        ) * noise

    def q_posterior_mean_variance(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """Mean, variance and clipped log variance of q(x_{t-1} | x_t, x_0) (DDPM eqs. 6-7)."""
        mean = _broadcast(self.posterior_mean_coef1, t, x_t) * x0 + _broadcast(self.posterior_mean_coef2, t, x_t) * x_t
        var = _broadcast(self.posterior_variance, t, x_t)
        log_var = _broadcast(self.posterior_log_variance_clipped, t, x_t)
        return mean, var, log_var

    def learned_log_variance(self, variance_range: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log Sigma_theta = frac log beta_t + (1 - frac) log beta~_t with frac = (r + 1) / 2.

        The learned-range interpolation of improved DDPM (eq. 15, its v; ``variance_range`` here,
        apart from the v-prediction): r = -1 gives the posterior variance beta~_t (clipped at
        t = 0), r = 1 gives beta_t.
        """
        max_log = _broadcast(torch.log(self.betas), t, variance_range)
        min_log = _broadcast(self.posterior_log_variance_clipped, t, variance_range)
        frac = (variance_range + 1) / 2
        return frac * max_log + (1 - frac) * min_log

    # ------------------------------------------------------------------ parameterisations
    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor, prediction: str) -> torch.Tensor:
        """x_0 from a model output that predicts ``prediction`` ("eps", "x0" or "v").

        eps: x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)   (DDPM eq. 15)
        v:   x_0 = sqrt(abar) x_t - sqrt(1 - abar) v          (Salimans, Ho (2022), sec. 4)
        """
        a = _broadcast(self.sqrt_alphas_cumprod, t, x_t)
        s = _broadcast(self.sqrt_one_minus_alphas_cumprod, t, x_t)
        if prediction == "eps":
            return (x_t - s * output) / a
        if prediction == "x0":
            return output
        if prediction == "v":
            return a * x_t - s * output
        raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor, prediction: str) -> torch.Tensor:
        """eps from a model output that predicts ``prediction`` ("eps", "x0" or "v").

        x0: eps = (x_t - sqrt(abar) x_0) / sqrt(1 - abar)
        v:  eps = sqrt(1 - abar) x_t + sqrt(abar) v
        """
        a = _broadcast(self.sqrt_alphas_cumprod, t, x_t)
        s = _broadcast(self.sqrt_one_minus_alphas_cumprod, t, x_t)
        if prediction == "eps":
            return output
        if prediction == "x0":
            return (x_t - a * output) / s
        if prediction == "v":
            return s * x_t + a * output
        raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, prediction: str) -> torch.Tensor:
        """The regression target of ``prediction``: eps, x_0, or v = sqrt(abar) eps - sqrt(1 - abar) x_0."""
        if prediction == "eps":
            return noise
        if prediction == "x0":
            return x0
        if prediction == "v":
            return _broadcast(self.sqrt_alphas_cumprod, t, x0) * noise - _broadcast(
                self.sqrt_one_minus_alphas_cumprod, t, x0
            ) * x0
        raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")

    # ------------------------------------------------------------------ respacing
    def respace(self, timesteps) -> tuple[NoiseSchedule, torch.Tensor]:
        """The schedule that visits only ``timesteps`` (a subset of 0..T-1), and the map to them.

        New betas are rebuilt so that the respaced abar equals the original abar at every kept
        timestep: beta'_i = 1 - abar_{t_i} / abar_{t_{i-1}} (improved DDPM, sec. 4 / ``respace.py``).
        ``timesteps`` may be any iterable of ints or a spacing accepted by
        :func:`geodiff.diffusion.respace.space_timesteps`. Returns the new schedule and a LongTensor
        ``timestep_map`` with ``timestep_map[i]`` = original timestep of new index i.
        """
        kept = torch.as_tensor(space_timesteps(self.timesteps, timesteps), dtype=torch.long)
        abar = self.alphas_cumprod[kept]
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        new = NoiseSchedule.from_betas(1.0 - abar / abar_prev)
        return new, kept
