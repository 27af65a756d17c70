"""Training losses: targets, VLB terms against torch.distributions, the stop-gradient of the
hybrid loss, min-SNR-gamma weights, and noise handling."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from geodiff.diffusion import NoiseSchedule, NoiseSpec, draw_noise, training_losses
from geodiff.diffusion.losses import gaussian_nll, min_snr_weight, normal_kl

SCHED = NoiseSchedule("cosine", timesteps=100)
T_ALL = torch.tensor([0, 1, 2, 37, 98, 99])


def data(seed=0, batch=6):
    g = torch.Generator().manual_seed(seed)
    x0 = 2 * torch.randn(batch, 2, 5, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    return x0, noise


def oracle(x0, noise, prediction, v=None):
    """A model that returns the exact target (and a fixed learned-range value v)."""
    def model_fn(x_t, t):
        out = SCHED.target(x0, noise, t, prediction)
        return out if v is None else torch.cat([out, torch.full_like(out, v)], 1)
    return model_fn


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_mse_of_each_target(prediction):
    x0, noise = data()
    exact = training_losses(oracle(x0, noise, prediction), SCHED, x0, T_ALL, prediction=prediction, noise=noise)
    assert set(exact) == {"loss", "mse"} and exact["mse"].shape == (6,)
    assert exact["mse"].abs().max() < 1e-20 and torch.equal(exact["loss"], exact["mse"])
    zero = training_losses(lambda x, t: torch.zeros_like(x), SCHED, x0, T_ALL, prediction=prediction, noise=noise)
    # the targets written out (Ho et al. 2020 eq. 14; Salimans & Ho 2022 sec. 4 for v)
    abar = SCHED.alphas_cumprod[T_ALL].reshape(-1, 1, 1, 1)
    target = {"eps": noise, "x0": x0, "v": abar.sqrt() * noise - (1 - abar).sqrt() * x0}[prediction]
    torch.testing.assert_close(zero["mse"], (target**2).mean(dim=(1, 2, 3)))


def test_kl_and_decoder_terms_against_torch_distributions():
    g = torch.Generator().manual_seed(1)
    m1, m2, l1, l2, x = (torch.randn(50, generator=g, dtype=torch.float64) for _ in range(5))
    ref = kl_divergence(Normal(m1, (0.5 * l1).exp()), Normal(m2, (0.5 * l2).exp()))
    torch.testing.assert_close(normal_kl(m1, l1, m2, l2), ref)
    torch.testing.assert_close(gaussian_nll(x, m1, l1), -Normal(m1, (0.5 * l1).exp()).log_prob(x))


def test_vlb_terms_by_hand():
    """A perfect mean with v = -1 (the true posterior variance) has KL 0 at every t > 0; at t = 0
    the term is the continuous Gaussian NLL of x0 under N(x0_hat, beta~_1)-clipped variance."""
    x0, noise = data(2)
    out = training_losses(oracle(x0, noise, "eps", v=-1.0), SCHED, x0, T_ALL, learn_sigma=True, noise=noise)
    assert out["vlb"][1:].abs().max() < 1e-9
    log_var0 = SCHED.posterior_log_variance_clipped[0]
    assert out["vlb"][0].item() == pytest.approx(0.5 * (math.log(2 * math.pi) + log_var0.item()), rel=1e-9)
    # v = +1 at t > 0: KL between N(mu, beta~) and N(mu, beta), per dimension
    out = training_losses(oracle(x0, noise, "eps", v=1.0), SCHED, x0, T_ALL, learn_sigma=True, noise=noise)
    t = T_ALL[1:]
    ref = kl_divergence(Normal(0.0, SCHED.posterior_variance[t].sqrt()), Normal(0.0, SCHED.betas[t].sqrt()))
    torch.testing.assert_close(out["vlb"][1:], ref)
    bits = training_losses(oracle(x0, noise, "eps", v=1.0), SCHED, x0, T_ALL, learn_sigma=True, noise=noise,
                           vlb_bits=True)
    torch.testing.assert_close(bits["vlb"], out["vlb"] / math.log(2))


def test_hybrid_loss_gradient_reaches_only_the_variance_through_the_vlb():
    x0, noise = data(3)
    out_param = torch.randn(6, 4, 5, 3, dtype=torch.float64, requires_grad=True)
    def model_fn(x, t):
        return out_param
    terms = training_losses(model_fn, SCHED, x0, T_ALL, learn_sigma=True, noise=noise)
    torch.testing.assert_close(terms["loss"], terms["mse"] + 0.001 * SCHED.timesteps * terms["vlb"])
    (grad_vlb,) = torch.autograd.grad(terms["vlb"].sum(), out_param, retain_graph=True)
    assert grad_vlb[:, :2].abs().max() == 0 and grad_vlb[:, 2:].abs().max() > 0
    (grad_loss,) = torch.autograd.grad(terms["loss"].sum(), out_param, retain_graph=True)
    (grad_mse,) = torch.autograd.grad(terms["mse"].sum(), out_param)
    torch.testing.assert_close(grad_loss[:, :2], grad_mse[:, :2])


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_min_snr_gamma_is_min_snr_times_the_x0_error(prediction):
    """Hang et al. (2023): whatever the target, the weighted loss equals min(SNR, gamma) times the
    squared error of the implied x0 estimate."""
    x0, noise = data(4)
    g = torch.Generator().manual_seed(5)
    raw = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    terms = training_losses(lambda x, t: raw, SCHED, x0, T_ALL, prediction=prediction, noise=noise, min_snr_gamma=5.0)
    x_t = SCHED.q_sample(x0, T_ALL, noise)
    x0_err = ((SCHED.predict_x0(x_t, T_ALL, raw, prediction) - x0) ** 2).mean(dim=(1, 2, 3))
    snr = SCHED.alphas_cumprod[T_ALL] / (1 - SCHED.alphas_cumprod[T_ALL])
    torch.testing.assert_close(terms["loss"], snr.clamp(max=5.0) * x0_err)
    assert min_snr_weight(SCHED, torch.tensor([99]), 5.0, "eps").item() == pytest.approx(1.0)


def test_noise_spec_is_drawn_with_the_generator():
    x0, _ = data(6)
    spec = NoiseSpec("exponential", length=2.0)
    def model_fn(x, t):
        return x * 0.5
    a = training_losses(model_fn, SCHED, x0, T_ALL, noise=spec, generator=torch.Generator().manual_seed(7))
    drawn = draw_noise(spec, x0.shape, generator=torch.Generator().manual_seed(7), dtype=x0.dtype)
    b = training_losses(model_fn, SCHED, x0, T_ALL, noise=drawn)
    torch.testing.assert_close(a["loss"], b["loss"])
    c = training_losses(model_fn, SCHED, x0, T_ALL, generator=torch.Generator().manual_seed(7))
    d = training_losses(model_fn, SCHED, x0, T_ALL, noise=torch.randn(x0.shape, generator=torch.Generator().manual_seed(7),
                                                                        dtype=x0.dtype))
    torch.testing.assert_close(c["loss"], d["loss"])


def test_bad_arguments_give_clear_errors():
    x0, noise = data()
    def same(x, t):
        return x
    with pytest.raises(ValueError, match="output channels"):
        training_losses(same, SCHED, x0, T_ALL, learn_sigma=True)
    with pytest.raises(ValueError, match="hybrid"):
        training_losses(same, SCHED, x0, T_ALL, learn_sigma=True, loss="mse")
    with pytest.raises(ValueError, match="loss must be"):
        training_losses(same, SCHED, x0, T_ALL, loss="l1")
    with pytest.raises(ValueError, match="noise has shape"):
        training_losses(same, SCHED, x0, T_ALL, noise=noise[:1])
    with pytest.raises(ValueError, match="does not match"):
        training_losses(lambda x, t: x[:, :1], SCHED, x0, T_ALL)
