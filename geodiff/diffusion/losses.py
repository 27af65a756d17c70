"""Training objectives: simple (eps / x0 / v regression) and hybrid (with the variational bound).

Formulas follow Ho et al. (2020) (L_simple, eq. 14) and Nichol & Dhariwal (2021) (learned-range
variance, eq. 15; hybrid loss L_simple + lambda L_vlb, eq. 16, with a stop-gradient on the mean
in L_vlb so that the bound trains only the variance). Differences from improved DDPM's code:

- t = 0 uses a continuous Gaussian decoder, -log N(x_0; mu_theta, Sigma_theta), because
  geodiff's data are floats (radar backscatter, phase, deformation), not 8-bit images; the
  8-bit discretised likelihood would reward bins that do not exist. Its value can be negative.
- KL terms are in nats per dimension by default (``vlb_bits=True`` gives bits, as improved DDPM).
- With spatially correlated forward noise (``noise=NoiseSpec(...)``), the forward and posterior
  covariances are beta-scaled copies of the noise covariance S instead of I. The KL and decoder
  terms here keep the white-noise form (squared mean errors unweighted by S^-1): S^-1 on a
  cropped circulant field has no cheap FFT form, and since the VLB trains only the variance
  (stop-grad on the mean) the choice only reweights how strongly mean errors pull the variance
  up. L_simple is unaffected: its targets (eps, x0, v) are exact with correlated noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .noise import draw_noise
from .schedule import NoiseSchedule

__all__ = ["gaussian_nll", "mean_flat", "min_snr_weight", "normal_kl", "training_losses"]


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch."""
    return x.mean(dim=tuple(range(1, x.ndim)))


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) per element, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def gaussian_nll(x, mean, logvar) -> torch.Tensor:
    """-log N(x; mean, exp(logvar)) per element, in nats (continuous decoder for float data)."""
    return 0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def min_snr_weight(schedule: NoiseSchedule, t: torch.Tensor, gamma: float, prediction: str) -> torch.Tensor:
    """Min-SNR-gamma loss weight (Hang et al. (2023), *Efficient Diffusion Training via Min-SNR
    Weighting Strategy*, eq. 9 and sec. 3.4): min(SNR, gamma) expressed for each target,
    i.e. min(SNR, g) / SNR for eps, min(SNR, g) for x0 and min(SNR, g) / (SNR + 1) for v."""
    snr = schedule.snr(t)
    clipped = snr.clamp(max=gamma)
    if prediction == "eps":
        return clipped / snr
    if prediction == "x0":
        return clipped
    if prediction == "v":
        return clipped / (snr + 1)
    raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")


def vlb_terms(schedule: NoiseSchedule, x0, x_t, t, prediction_out, variance_range, prediction: str) -> torch.Tensor:
    """Per-example L_t in nats/dim: KL(q(x_{t-1}|x_t,x_0) || p_theta(x_{t-1}|x_t)) for t > 0
    (improved DDPM eq. 5) and the Gaussian decoder NLL -log p_theta(x_0|x_1) at t = 0."""
    x0_pred = schedule.predict_x0(x_t, t, prediction_out, prediction)
    model_mean, _, _ = schedule.q_posterior_mean_variance(x0_pred, x_t, t)
    model_log_var = schedule.learned_log_variance(variance_range, t)
    true_mean, _, true_log_var = schedule.q_posterior_mean_variance(x0, x_t, t)
    kl = mean_flat(normal_kl(true_mean, true_log_var, model_mean, model_log_var))
    nll = mean_flat(gaussian_nll(x0, model_mean, model_log_var))
    return torch.where(t == 0, nll, kl)


def training_losses(model_fn: Callable, schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, *,
                    prediction: str = "eps", learn_sigma: bool = False, loss: str = "hybrid",
                    vlb_weight: float = 0.001, min_snr_gamma: float | None = None, noise=None,
                    generator: torch.Generator | None = None, vlb_bits: bool = False) -> dict[str, torch.Tensor]:
    """Per-example training losses of ``model_fn`` at timesteps ``t`` (LongTensor (B,)).

    ``noise``: None (white), a NoiseSpec (drawn with ``generator``) or the noise tensor itself.
    Returns ``{"loss", "mse", "vlb"}`` (vlb only with ``learn_sigma``), each of shape (B,):

    - mse: mean squared error of the ``prediction`` target (eps, x0 or v);
    - vlb: L_t of the variational bound (nats/dim, or bits with ``vlb_bits``), computed with the
      predicted mean detached, so its gradient reaches only the learned variance;
    - loss: w(t) mse (w = min-SNR-gamma weight, or 1), plus with a learned variance
      ``vlb_weight * T * vlb``: lambda L_vlb with L_vlb = T E_t[L_t] estimated from this t, which
      is improved DDPM's hybrid loss (its code's vb * T / 1000 with lambda = 0.001).

    The caller multiplies ``loss`` by importance weights when t is not drawn uniformly.
    """
    if loss not in ("hybrid", "mse"):
        raise ValueError(f"loss must be 'hybrid' or 'mse', got {loss!r}")
    if learn_sigma and loss == "mse":
        raise ValueError("a learned variance is trained only by the VLB term: use loss='hybrid' with learn_sigma=True")
    if not isinstance(noise, torch.Tensor):
        noise = draw_noise(noise, x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise has shape {tuple(noise.shape)}, x0 has {tuple(x0.shape)}")
    x_t = schedule.q_sample(x0, t, noise)
    out = model_fn(x_t, t).to(x0.dtype)
    channels = x0.shape[1]
    terms: dict[str, torch.Tensor] = {}
    if learn_sigma:
        if out.shape[1] != 2 * channels:
            raise ValueError(f"learn_sigma=True needs a model with {2 * channels} output channels, got {out.shape[1]}")
        out, variance_range = out[:, :channels], out[:, channels:]
        vlb = vlb_terms(schedule, x0, x_t, t, out.detach(), variance_range, prediction)
        terms["vlb"] = vlb / math.log(2.0) if vlb_bits else vlb
    elif out.shape != x0.shape:
        raise ValueError(f"model output shape {tuple(out.shape)} does not match x0 {tuple(x0.shape)}")
    terms["mse"] = mean_flat((schedule.target(x0, noise, t, prediction) - out) ** 2)
    weighted = terms["mse"]
    if min_snr_gamma is not None:
        weighted = weighted * min_snr_weight(schedule, t, min_snr_gamma, prediction).to(weighted.dtype)
    if learn_sigma:
        weighted = weighted + vlb_weight * schedule.timesteps * terms["vlb"]
    terms["loss"] = weighted
    return terms
