"""Samplers against diffusers (an independent implementation) and against Gaussian data, whose
optimal denoiser is known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from geodiff.diffusion import NoiseSchedule, NoiseSpec, sample
from geodiff.diffusion.samplers import SAMPLERS

SCHED = NoiseSchedule("cosine", timesteps=1000)
LINEAR = NoiseSchedule("linear", timesteps=1000)


def toy_model(schedule: NoiseSchedule, prediction: str):
    """A fixed nonlinear function of (x, t) that mixes channels and pixels, roughly the size of a
    real model's output, so that samples stay O(1) with |x| > 1."""
    abar = schedule.alphas_cumprod

    def model_fn(x, t):
        a = abar[t].to(x.dtype).reshape(-1, 1, 1, 1)
        mix = torch.tanh(torch.roll(x, 1, dims=1) - 0.5 * torch.roll(x, 1, dims=-1))
        if prediction == "eps":  # near the optimal eps of N(0, 1.5 I) data, plus a bounded x0 part
            return (1 - a).sqrt() * x / (0.5 * a + 1) + 0.3 * a.sqrt() * (1 - a) * mix
        if prediction == "x0":
            return 2.0 * torch.tanh(0.8 * x) + 0.3 * mix * (1 + a)
        return a.sqrt() * x * 0.5 - (1 - a).sqrt() * (1.5 * torch.tanh(x) + 0.3 * mix)

    return model_fn


def _diffusers_loop(scheduler, model_fn, x, step_kwargs):
    for t in scheduler.timesteps:
        out = model_fn(x, torch.full((x.shape[0],), int(t), dtype=torch.long))
        x = scheduler.step(out, t, x, **step_kwargs).prev_sample
    return x


PRED_TYPES = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
@pytest.mark.parametrize("steps", [10, 25])
def test_ddim_matches_diffusers(prediction, steps):
    diffusers = pytest.importorskip("diffusers")
    model_fn = toy_model(SCHED, prediction)
    x_T = 1.5 * torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = sample(model_fn, SCHED, x_T.shape, "ddim", sample_steps=steps, timestep_spacing="trailing", prediction=prediction,
                  eta=0.0, x_T=x_T, dtype=torch.float64)
    scheduler = diffusers.DDIMScheduler(
        num_train_timesteps=SCHED.timesteps, trained_betas=SCHED.betas.numpy(), timestep_spacing="trailing",
        set_alpha_to_one=True, steps_offset=0, prediction_type=PRED_TYPES[prediction], clip_sample=False,
    )
    # diffusers keeps abar in float32 (relative error ~1e-6 after 1000 products); give it ours
    scheduler.alphas_cumprod = SCHED.alphas_cumprod.clone()
    scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    scheduler.set_timesteps(steps)
    ref = _diffusers_loop(scheduler, model_fn, x_T.clone(), {"eta": 0.0})
    assert ref.abs().max() > 1.0
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


# diffusers' DPM-Solver runs in float32 whatever the input dtype; with eps prediction its first
# step divides by sqrt(abar_{T-1}), 5e-5 for the cosine schedule, which turns float32 rounding
# into ~1e-3 differences. The eps case therefore runs on the linear schedule (sqrt(abar) = 6e-3).
@pytest.mark.parametrize("schedule,prediction", [(LINEAR, "eps"), (LINEAR, "v"), (SCHED, "v"), (SCHED, "x0")],
                         ids=["linear-eps", "linear-v", "cosine-v", "cosine-x0"])
@pytest.mark.parametrize("order,steps", [(2, 10), (2, 20), (3, 20)])
def test_dpmsolver_matches_diffusers(schedule, prediction, order, steps):
    diffusers = pytest.importorskip("diffusers")
    model_fn = toy_model(schedule, prediction)
    x_T = 1.5 * torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    name = "dpmsolver++" if order == 2 else "dpmsolver++3m"
    ours = sample(model_fn, schedule, x_T.shape, name, sample_steps=steps, timestep_spacing="trailing", prediction=prediction,
                  x_T=x_T, dtype=torch.float64)
    scheduler = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=schedule.timesteps, trained_betas=schedule.betas.numpy(), solver_order=order,
        algorithm_type="dpmsolver++", lower_order_final=True, final_sigmas_type="zero",
        timestep_spacing="trailing", prediction_type=PRED_TYPES[prediction],
    )
    scheduler.set_timesteps(steps)
    ref = _diffusers_loop(scheduler, model_fn, x_T.clone(), {})
    assert ref.abs().max() > 1.0
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- Gaussian data, optimal denoiser
SHAPE = (2, 2, 3)  # channels, height, width
D = math.prod(SHAPE)
N_SAMPLES = 6000


def gaussian_problem(seed=0):
    """mu and a non-diagonal Sigma of the size of data scaled to [-1, 1] (eigenvalues 0.1 to 1.6)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(D, D, generator=g, dtype=torch.float64)
    sigma = 0.5 * A @ A.T / D + 0.1 * torch.eye(D, dtype=torch.float64)
    mu = 1.5 * torch.randn(D, generator=g, dtype=torch.float64)
    return mu, sigma


def optimal_eps(schedule, mu, sigma, noise_cov=None):
    """eps*(x_t, t) = E[eps | x_t] = sqrt(1 - abar) S_n (abar Sigma + (1 - abar) S_n)^-1 (x_t - sqrt(abar) mu)
    for x_0 ~ N(mu, Sigma) and forward noise eps ~ N(0, S_n) (S_n = I for white noise)."""
    d = mu.numel()
    noise_cov = torch.eye(d, dtype=torch.float64) if noise_cov is None else noise_cov
    abar = schedule.alphas_cumprod[:, None, None]
    gains = (1 - abar).sqrt() * noise_cov @ torch.linalg.inv(abar * sigma + (1 - abar) * noise_cov)

    def model_fn(x, t):
        assert (t == t[0]).all() and t.dtype == torch.long
        k = int(t[0])
        flat = x.reshape(x.shape[0], d).to(torch.float64) - schedule.sqrt_alphas_cumprod[k] * mu
        return (flat @ gains[k].T).reshape(x.shape).to(x.dtype)

    return model_fn


def assert_moments(x, mu, sigma, n_sigma=5.0):
    """Sample mean and covariance within n_sigma standard errors of mu and Sigma."""
    n = x.shape[0]
    flat = x.reshape(n, D).to(torch.float64)
    se_mean = (torch.diag(sigma) / n).sqrt()
    se_cov = ((torch.diag(sigma)[:, None] * torch.diag(sigma)[None, :] + sigma**2) / n).sqrt()
    z_mean = ((flat.mean(0) - mu).abs() / se_mean).max()
    z_cov = ((torch.cov(flat.T) - sigma).abs() / se_cov).max()
    assert z_mean < n_sigma and z_cov < n_sigma, (z_mean, z_cov)


@pytest.mark.parametrize(
    "sampler,steps,kwargs",
    [("ddpm", 1000, {}), ("ddpm", 1000, {"variance": "large"}), ("ddim", 50, {}),
     ("dpmsolver++", 20, {}), ("dpmsolver++3m", 20, {})],
    ids=["ddpm", "ddpm-large", "ddim", "dpmsolver++", "dpmsolver++3m"],
)
def test_samplers_reproduce_gaussian_data(sampler, steps, kwargs):
    mu, sigma = gaussian_problem()
    x = sample(optimal_eps(SCHED, mu, sigma), SCHED, (N_SAMPLES,) + SHAPE, sampler, sample_steps=steps, seed=1,
               dtype=torch.float64, **kwargs)
    assert_moments(x, mu, sigma)


@pytest.mark.parametrize("steps", [1000, 20])
def test_ddim_eta_one_is_ddpm(steps):
    """Song et al. (2021) sec. 4.1: eta = 1 is the DDPM ancestral step with the posterior variance
    (same draws from the same seed), also on a respaced schedule."""
    model_fn = toy_model(SCHED, "eps")
    kw = {"sample_steps": steps, "seed": 5, "dtype": torch.float64}
    ddim = sample(model_fn, SCHED, (3, 2, 4, 5), "ddim", eta=1.0, **kw)
    ddpm = sample(model_fn, SCHED, (3, 2, 4, 5), "ddpm", **kw)
    torch.testing.assert_close(ddim, ddpm, atol=1e-9, rtol=1e-9)


def _affine_moments(sampler, steps, schedule, mu, sigma):
    """A deterministic sampler fed the optimal eps is an affine map x_T -> A x_T + b, so the law of
    its output is exactly N(b, A A^T): read b and A from D + 1 runs (no sampling error)."""
    x_T = torch.cat([torch.zeros(1, D), torch.eye(D)]).to(torch.float64).reshape((D + 1,) + SHAPE)
    out = sample(optimal_eps(schedule, mu, sigma), schedule, x_T.shape, sampler, sample_steps=steps, x_T=x_T,
                 dtype=torch.float64).reshape(D + 1, D)
    A = (out[1:] - out[0]).T
    return out[0], A @ A.T


@pytest.mark.parametrize("sampler,steps,tol", [("ddim", 50, 0.06), ("dpmsolver++", 20, 0.02), ("dpmsolver++3m", 20, 0.03), ("heun", 10, 0.03),
                                              ("unipc", 20, 0.02)])
def test_deterministic_samplers_exact_law_and_convergence(sampler, steps, tol):
    """The exact output law: mean to 1e-3, covariance within the solver's discretisation error
    (relative to Sigma's largest eigenvalue), which shrinks as steps grow (DDIM first order)."""
    mu, sigma = gaussian_problem()
    scale = torch.linalg.eigvalsh(sigma)[-1]
    mean, cov = _affine_moments(sampler, steps, SCHED, mu, sigma)
    assert (mean - mu).abs().max() < 1e-3
    err = (cov - sigma).abs().max() / scale
    assert err < tol
    _, cov_fine = _affine_moments(sampler, 4 * steps, SCHED, mu, sigma)
    err_fine = (cov_fine - sigma).abs().max() / scale
    assert err_fine < err / 3 and err_fine < 0.015


def exponential_covariance(length):
    """Covariance of independent-per-channel unit-variance fields with correlation exp(-r/L)."""
    yy, xx = torch.meshgrid(torch.arange(SHAPE[1]), torch.arange(SHAPE[2]), indexing="ij")
    pts = torch.stack([yy.flatten(), xx.flatten()], 1).to(torch.float64)
    block = torch.exp(-torch.cdist(pts, pts) / length)
    return torch.block_diag(*[block] * SHAPE[0])


@pytest.mark.parametrize("sampler,steps", [("ddpm", 250), ("ddim", 50), ("dpmsolver++", 20)])
def test_correlated_noise_sampling_reproduces_gaussian_data(sampler, steps):
    """With forward noise N(0, S_n) every covariance of the process is a combination of Sigma and
    S_n, the optimal eps is known, and the samplers drawing the same noise recover the data."""
    mu, sigma = gaussian_problem(1)
    noise = NoiseSpec("exponential", length=2.0)
    model_fn = optimal_eps(SCHED, mu, sigma, exponential_covariance(2.0))
    x = sample(model_fn, SCHED, (N_SAMPLES,) + SHAPE, sampler, sample_steps=steps, seed=2, noise=noise, dtype=torch.float64)
    assert_moments(x, mu, sigma)


# ---------------------------------------------------------------- API behaviour
def test_seed_and_x_T_make_sampling_reproducible():
    model_fn = toy_model(SCHED, "eps")
    shape = (2, 3, 4, 6)
    a = sample(model_fn, SCHED, shape, "ddpm", sample_steps=20, seed=7)
    assert torch.equal(a, sample(model_fn, SCHED, shape, "ddpm", sample_steps=20, seed=7))
    assert not torch.equal(a, sample(model_fn, SCHED, shape, "ddpm", sample_steps=20, seed=8))
    x_T = torch.randn(shape)
    b = sample(model_fn, SCHED, shape, "ddim", sample_steps=10, x_T=x_T, seed=1)
    assert torch.equal(b, sample(model_fn, SCHED, shape, "ddim", sample_steps=10, x_T=x_T, seed=2))
    assert a.dtype == torch.float32 and a.shape == shape


def test_learned_variance_endpoints_are_the_fixed_variances():
    """v = -1 gives the posterior variance ("small"), v = +1 gives beta_t ("large")."""
    eps_fn = toy_model(SCHED, "eps")

    def learned(value):
        return lambda x, t: torch.cat([eps_fn(x, t), torch.full_like(x, value)], 1)

    kw = {"sample_steps": 25, "seed": 3, "dtype": torch.float64}
    shape = (2, 2, 3, 5)
    small = sample(eps_fn, SCHED, shape, "ddpm", variance="small", **kw)
    large = sample(eps_fn, SCHED, shape, "ddpm", variance="large", **kw)
    torch.testing.assert_close(sample(learned(-1.0), SCHED, shape, "ddpm", **kw), small)
    torch.testing.assert_close(sample(learned(1.0), SCHED, shape, "ddpm", learn_sigma=True, **kw), large)
    assert not torch.allclose(small, large)
    # DDIM and DPM-Solver++ ignore the variance channels
    torch.testing.assert_close(sample(learned(0.3), SCHED, shape, "ddim", **kw), sample(eps_fn, SCHED, shape, "ddim", **kw))


def test_spacing_strings_call_the_model_at_trained_timesteps():
    seen = []
    eps_fn = toy_model(SCHED, "eps")

    def model_fn(x, t):
        seen.append(int(t[0]))
        return eps_fn(x, t)

    sample(model_fn, SCHED, (1, 1, 2, 2), "ddim", timestep_spacing="ddim10")
    assert seen == list(range(900, -1, -100))
    seen.clear()
    sample(model_fn, SCHED, (1, 1, 2, 2), "dpmsolver++", timestep_spacing=[999, 500, 10])
    assert seen == [999, 500, 10]
    seen.clear()
    sample(model_fn, SCHED, (1, 1, 2, 2), "ddpm", sample_steps=4, timestep_spacing="trailing", progress=True)
    assert seen == [999, 749, 499, 249]


def test_clip_bounds_every_x0_estimate_and_callback_sees_each_step():
    model_fn = toy_model(SCHED, "x0")
    steps = []
    out = sample(model_fn, SCHED, (2, 2, 3, 3), "ddim", sample_steps=8, prediction="x0", clip=(0.0, 1.0),
                 callback=steps.append, dtype=torch.float64)
    assert [s["step"] for s in steps] == list(range(8)) and steps[0]["t"] == 999
    assert all(0 <= s["x0"].min() and s["x0"].max() <= 1 for s in steps)
    assert 0 <= out.min() and out.max() <= 1  # eta = 0: the last step returns the clipped x0
    unclipped = sample(model_fn, SCHED, (2, 2, 3, 3), "ddim", sample_steps=8, prediction="x0", dtype=torch.float64)
    assert unclipped.max() > 1


def test_bad_arguments_give_clear_errors():
    model_fn = toy_model(SCHED, "eps")
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(model_fn, SCHED, (1, 1, 2, 2), "euler")
    with pytest.raises(ValueError, match="x_T has shape"):
        sample(model_fn, SCHED, (1, 1, 2, 2), x_T=torch.zeros(1, 1, 2, 3))
    with pytest.raises(ValueError, match="prediction"):
        sample(model_fn, SCHED, (1, 1, 2, 2), prediction="score")
    with pytest.raises(ValueError, match="output shape"):
        sample(lambda x, t: x[:, :1], SCHED, (1, 2, 2, 2))
    assert set(SAMPLERS) == {"ddpm", "ddim", "dpmsolver++", "dpmsolver++3m", "unipc", "heun"}


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_per_sample_seeds_make_each_sample_independent_of_its_batch(sampler):
    """With one seed per sample, start noise and every stochastic step follow the sample, not the batch."""
    model_fn = toy_model(SCHED, "eps")
    kwargs = {"sample_steps": 8, "eta": 1.0, "dtype": torch.float64}
    batch = sample(model_fn, SCHED, (3, 1, 6, 5), sampler, seed=[11, 12, 13], **kwargs)
    alone = sample(model_fn, SCHED, (1, 1, 6, 5), sampler, seed=[12], **kwargs)
    torch.testing.assert_close(batch[1:2], alone)
    assert not torch.allclose(batch[0], batch[1])
    with pytest.raises(ValueError, match="one seed per sample"):
        sample(model_fn, SCHED, (2, 1, 6, 5), sampler, seed=[1, 2, 3], **kwargs)


@pytest.mark.parametrize("schedule,prediction", [(LINEAR, "eps"), (SCHED, "v"), (SCHED, "x0")],
                         ids=["linear-eps", "cosine-v", "cosine-x0"])
@pytest.mark.parametrize("steps", [5, 10, 20])
def test_unipc_matches_diffusers(schedule, prediction, steps):
    diffusers = pytest.importorskip("diffusers")
    model_fn = toy_model(schedule, prediction)
    x_T = 1.5 * torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ours = sample(model_fn, schedule, x_T.shape, "unipc", sample_steps=steps, timestep_spacing="trailing",
                  prediction=prediction, x_T=x_T, dtype=torch.float64)
    scheduler = diffusers.UniPCMultistepScheduler(
        num_train_timesteps=schedule.timesteps, trained_betas=schedule.betas.numpy(), solver_order=2,
        solver_type="bh2", predict_x0=True, lower_order_final=True, final_sigmas_type="zero",
        timestep_spacing="trailing", prediction_type=PRED_TYPES[prediction],
    )
    scheduler.set_timesteps(steps)
    ref = _diffusers_loop(scheduler, model_fn, x_T.clone(), {})
    assert ref.abs().max() > 1.0
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    dpm = sample(model_fn, schedule, x_T.shape, "dpmsolver++", sample_steps=steps, prediction=prediction, x_T=x_T,
                 dtype=torch.float64)
    assert (ours - dpm).abs().max() > 1e-4  # the corrector changes the path


@pytest.mark.parametrize("schedule,prediction", [(LINEAR, "eps"), (SCHED, "v"), (SCHED, "x0")],
                         ids=["linear-eps", "cosine-v", "cosine-x0"])
@pytest.mark.parametrize("steps", [4, 10])
def test_heun_matches_diffusers(schedule, prediction, steps):
    """diffusers' HeunDiscreteScheduler on the same timesteps, all at or below SIGMA_MAX (where
    ours takes Heun steps too): it steps y = x sqrt(1 + sigma^2) and calls the model on x."""
    diffusers = pytest.importorskip("diffusers")
    from geodiff.diffusion.respace import noise_level_timesteps
    from geodiff.diffusion.samplers import network_evaluations

    model_fn = toy_model(schedule, prediction)
    kept = noise_level_timesteps(schedule.alphas_cumprod.tolist(), "karras", steps + 1)[:-1]  # below T-1
    calls = []
    x_T = 1.5 * torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    ours = sample(lambda x, t: calls.append(int(t[0])) or model_fn(x, t), schedule, x_T.shape, "heun",
                  timestep_spacing=kept, prediction=prediction, x_T=x_T, dtype=torch.float64)
    assert len(calls) == network_evaluations("heun", schedule.alphas_cumprod[kept].tolist()) == 2 * steps - 1
    scheduler = diffusers.HeunDiscreteScheduler(
        num_train_timesteps=schedule.timesteps, trained_betas=schedule.betas.numpy(),
        prediction_type=PRED_TYPES[prediction],
    )
    scheduler.alphas_cumprod = schedule.alphas_cumprod.clone()
    scheduler.set_timesteps(timesteps=kept[::-1])
    # diffusers rounds sigmas to float32, which the large early steps y + dt * slope amplify
    abar = schedule.alphas_cumprod[kept[::-1]]
    sig = ((1 - abar) / abar).sqrt()
    scheduler.sigmas = torch.cat([sig[:1], sig[1:].repeat_interleave(2), torch.zeros(1, dtype=torch.float64)])
    y = x_T * math.sqrt(1 + float(sig[0]) ** 2)
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(y, t)
        y = scheduler.step(model_fn(x, torch.full((2,), int(t), dtype=torch.long)), t, y).prev_sample
    assert y.abs().max() > 1.0
    torch.testing.assert_close(ours, y, atol=1e-6, rtol=0)


def test_heun_is_second_order():
    """On Gaussian data, on EDM's (karras) noise levels, the error of the output covariance falls
    ~4x per doubling of the steps (Heun, second order) where DDIM's, first order, falls ~2x."""
    mu, sigma = gaussian_problem()
    scale = torch.linalg.eigvalsh(sigma)[-1]

    def error(sampler, steps):
        x_T = torch.cat([torch.zeros(1, D), torch.eye(D)]).to(torch.float64).reshape((D + 1,) + SHAPE)
        out = sample(optimal_eps(SCHED, mu, sigma), SCHED, x_T.shape, sampler, sample_steps=steps, x_T=x_T,
                     timestep_spacing="karras", dtype=torch.float64).reshape(D + 1, D)
        A = (out[1:] - out[0]).T
        return float((A @ A.T - sigma).abs().max() / scale)

    heun = [error("heun", n) for n in (8, 16, 32)]
    ddim = [error("ddim", n) for n in (8, 16, 32)]
    assert heun[0] / heun[1] > 3.5 and heun[1] / heun[2] > 3.5, heun
    assert ddim[0] / ddim[1] < 2.5 and ddim[1] / ddim[2] < 2.5, ddim
    assert heun[2] < ddim[2] / 4
