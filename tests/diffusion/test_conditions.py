"""Known pixels, SDEdit starts and network conditioning through every sampler."""

from __future__ import annotations

import math

import pytest
import torch

from geodiff.diffusion import NoiseSchedule, sample
from geodiff.diffusion.conditions import Conditions
from geodiff.diffusion.respace import sampled_timesteps
from geodiff.diffusion.samplers import SAMPLERS, resampling_walk

SCHED = NoiseSchedule("sigmoid", timesteps=1000)
SHAPE = (3, 2, 8, 10)


def smooth_model(x, t):
    """A v-prediction that mixes neighbouring pixels, so the unknown pixels see the known ones."""
    a = SCHED.alphas_cumprod[t].to(x.dtype).reshape(-1, 1, 1, 1)
    blur = (x + torch.roll(x, 1, -1) + torch.roll(x, -1, -1) + torch.roll(x, 1, -2)) / 4
    return a.sqrt() * torch.tanh(blur) - (1 - a).sqrt() * x * 0.3


def _known():
    g = torch.Generator().manual_seed(1)
    known = torch.tanh(torch.randn(SHAPE, generator=g, dtype=torch.float64))
    mask = torch.zeros(1, 1, 8, 10, dtype=torch.bool)
    mask[..., :, :4] = True
    return known, mask


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_known_pixels_are_kept_and_the_rest_generated(sampler):
    known, mask = _known()
    steps = 250 if sampler == "ddpm" else 10
    out = sample(smooth_model, SCHED, SHAPE, sampler, sample_steps=steps, prediction="v", seed=0, dtype=torch.float64,
                 conditions=Conditions(known=known, mask=mask))
    free = sample(smooth_model, SCHED, SHAPE, sampler, sample_steps=steps, prediction="v", seed=0, dtype=torch.float64)
    torch.testing.assert_close(out[..., :4], known[..., :4], atol=1e-9, rtol=0)
    assert (out[..., 4:] - known[..., 4:]).abs().mean() > 0.1
    assert (out[..., 4:] - free[..., 4:]).abs().max() > 1e-3  # the context reached the unknown pixels


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++", "unipc"])
def test_known_pixels_follow_their_forward_process(sampler):
    """On a known pixel the state is sqrt(abar_t) known + sqrt(1 - abar_t) z at every step, z the
    start noise there: q(x_t | x_0 = known)."""
    known, mask = _known()
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    states = []
    sample(smooth_model, SCHED, SHAPE, sampler, sample_steps=12, prediction="v", x_T=x_T, dtype=torch.float64,
           conditions=Conditions(known=known, mask=mask), callback=lambda info: states.append((info["t"], info["x"])))
    assert len(states) == 12
    for t, x in states:
        a = float(SCHED.alphas_cumprod[t])
        expected = math.sqrt(a) * known + math.sqrt(1 - a) * x_T
        torch.testing.assert_close(x[..., :4], expected[..., :4], atol=1e-9, rtol=0)


def counting_model(calls: list):
    """:func:`smooth_model`, appending the trained timestep of every call to ``calls``."""

    def counting(x, t):
        calls.append(int(t[0]))
        return smooth_model(x, t)

    return counting


def test_start_edits_known_values_from_a_partial_noise_level():
    known, _ = _known()
    calls = []
    counting = counting_model(calls)
    change = {}
    for start in (600, 30):
        calls.clear()
        out = sample(counting, SCHED, SHAPE, "ddim", sample_steps=25, prediction="v", seed=0, dtype=torch.float64,
                     conditions=Conditions(known=known, start=start))
        kept = [t for t in sampled_timesteps(SCHED.alphas_cumprod.tolist(), "trailing", 25) if t <= start] or [start]
        assert calls == kept[::-1]
        change[start] = float((out - known).abs().mean())
    assert change[30] < change[600] / 3  # a light edit stays closer to its input


def test_labels_and_image_reach_the_network():
    seen = {}

    def model_fn(x, t, y=None, cond=None):
        seen["y"], seen["cond"] = y, cond
        return torch.zeros_like(x)

    labels, low = torch.tensor([0, 2, 1]), torch.zeros(3, 1, 4, 5)
    sample(model_fn, SCHED, SHAPE, "ddim", sample_steps=2, conditions=Conditions(labels=labels, image=low))
    assert seen["y"] is labels and seen["cond"] is low


def test_bad_conditions_are_clear_errors():
    known, mask = _known()
    for conditions, match in [
        (Conditions(mask=mask), "needs the known values"),
        (Conditions(known=known), "need a mask"),
        (Conditions(known=known[:1], mask=mask), "known has shape"),
        (Conditions(known=known, mask=torch.ones(2, 1, 8, 10, dtype=torch.bool)), "does not broadcast"),
        (Conditions(known=known.masked_fill(mask, float("nan")), start=100), "every pixel"),
        (Conditions(known=known, start=1000), "trained timestep"),
        (Conditions(known=known, mask=mask, noisy_start=True), "needs start"),
        (Conditions(labels=torch.tensor([1])), "labels has 1 entries"),
    ]:
        with pytest.raises(ValueError, match=match):
            sample(smooth_model, SCHED, SHAPE, "ddim", sample_steps=2, prediction="v", dtype=torch.float64,
                   conditions=conditions)


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++", "heun"])
def test_a_recorded_trajectory_replays_exactly(sampler):
    """Replaying every state of a run (weight 1 everywhere) makes another seed's run see exactly
    the recorded inputs and end on the recorded sample; weight 0 changes nothing."""
    kw = {"sample_steps": 6, "prediction": "v", "dtype": torch.float64}
    trace = []
    first = sample(smooth_model, SCHED, SHAPE, sampler, seed=1, record=trace, **kw)
    seen = []
    replay = Conditions(known=first, mask=torch.ones(1, 1, 8, 10, dtype=torch.bool), states=trace)
    again = sample(lambda x, t: seen.append(x) or smooth_model(x, t), SCHED, SHAPE, sampler, seed=2,
                   conditions=replay, **kw)
    torch.testing.assert_close(again, first, atol=1e-12, rtol=0)
    assert len(seen) == len(trace) and all(torch.equal(a, b) for a, b in zip(seen, trace))
    ignored = Conditions(states=trace, state_weight=torch.zeros(8, 10, dtype=torch.float64))
    torch.testing.assert_close(sample(smooth_model, SCHED, SHAPE, sampler, seed=2, conditions=ignored, **kw),
                               sample(smooth_model, SCHED, SHAPE, sampler, seed=2, **kw))
    with pytest.raises(ValueError, match="network calls"):
        sample(smooth_model, SCHED, SHAPE, sampler, seed=2, conditions=Conditions(states=trace[:2]), **kw)


# ---------------------------------------------------------------- RePaint's resampling jumps


def test_resampling_walk_repeats_every_stretch():
    """Each stretch of ``length`` steps is walked ``count`` times; the state level (index) is
    continuous through the jumps and the walk ends with the last step onto the data."""
    for steps, length, count in ((25, 5, 3), (10, 3, 2), (7, 7, 4), (12, 5, 1)):
        moves = resampling_walk(steps, (length, count))
        level, visits = steps - 1, {}
        for move in moves:
            if isinstance(move, tuple):
                low, high = move
                assert low == level and high == low + length
                level = high
            else:
                assert move == level
                visits[move] = visits.get(move, 0) + 1
                level -= 1
        assert level == -1 and moves[-1] == 0
        # Jumps start every `length` steps from the top; below the last jump point nothing repeats.
        last_jump = (steps - 1) % length
        assert visits == {i: count if i > last_jump else 1 for i in range(steps)}, (steps, length, count)
    assert resampling_walk(4) == [3, 2, 1, 0]


def test_resampling_harmonises_known_pixels_with_gaussian_data():
    """With the optimal denoiser of Gaussian data, replacing known pixels alone gives the other
    pixels a biased law; RePaint's resampling brings it to the exact conditional Gaussian
    N(mu_u + S_uk S_kk^-1 (k - mu_k), S_uu - S_uk S_kk^-1 S_ku)."""
    from tests.diffusion.test_samplers import SCHED, SHAPE, D, gaussian_problem, optimal_eps

    mu, cov = gaussian_problem()
    mask = torch.zeros(SHAPE, dtype=torch.bool)
    mask[0] = True
    k, u = mask.reshape(-1), ~mask.reshape(-1)
    value = mu + torch.linalg.cholesky(cov) @ torch.randn(D, generator=torch.Generator().manual_seed(5),
                                                          dtype=torch.float64)
    cond_mu = mu[u] + cov[u][:, k] @ torch.linalg.solve(cov[k][:, k], value[k] - mu[k])
    cond_cov = cov[u][:, u] - cov[u][:, k] @ torch.linalg.solve(cov[k][:, k], cov[k][:, u])
    n = 2000
    conditions = Conditions(known=value.reshape(SHAPE).expand(n, *SHAPE), mask=mask)
    errors = {}
    for resampling in (None, (10, 10)):
        x = sample(optimal_eps(SCHED, mu, cov), SCHED, (n, *SHAPE), "ddpm", sample_steps=100, seed=1,
                   dtype=torch.float64, conditions=conditions, resampling=resampling)
        torch.testing.assert_close(x[:, 0], value.reshape(SHAPE)[0].expand(n, *SHAPE[1:]), atol=1e-9, rtol=0)
        free = x.reshape(n, D)[:, u]
        bias = float(((free.mean(0) - cond_mu).abs() / cond_cov.diagonal().sqrt()).max())
        spread = float((torch.cov(free.T) - cond_cov).abs().max() / cond_cov.abs().max())
        errors[resampling] = bias, spread
    (bias, spread), (bias_r, spread_r) = errors[None], errors[(10, 10)]
    assert bias > 0.3 and spread > 0.15, errors  # replacement alone: off by a third of a std or more
    assert bias_r < bias / 2.5 and spread_r < spread / 3, errors


def test_the_harmonic_projection_brings_a_smooth_gaussian_field_near_its_conditional_law():
    """A Gaussian field whose precision is the grid's Laplacian (a discrete Brownian sheet, as
    smooth as an unwrapped interferogram), with the exact denoiser and the default solver, a hole
    in four fields: replacement alone leaves the hole's pixels biased (a third of a conditional
    standard deviation on average) and over-dispersed; carrying each estimate's mismatch on the
    known pixels into the hole (geodiff.consistency.harmonic_projection) brings their mean near
    the exact conditional mean and their error near that of exact conditional samples."""
    import numpy as np

    from geodiff.consistency import harmonic_projection
    from tests.diffusion.test_samplers import optimal_eps

    h, w, n = 8, 10, 1000
    index = torch.arange(h * w).reshape(h, w)
    lap = torch.zeros(h * w, h * w, dtype=torch.float64)
    for a, b in ((index[:, :-1], index[:, 1:]), (index[:-1], index[1:])):
        lap[a.reshape(-1), b.reshape(-1)] = lap[b.reshape(-1), a.reshape(-1)] = -1.0
    lap -= torch.diag(lap.sum(1))
    cov = torch.linalg.inv(lap + 0.02 * torch.eye(h * w, dtype=torch.float64))
    cov = cov * (0.5 / cov.diagonal().max())
    mu = torch.zeros(h * w, dtype=torch.float64)
    mask = torch.ones(1, 1, h, w, dtype=torch.bool)
    mask[..., 2:6, 3:8] = False
    k, u = mask.reshape(-1), ~mask.reshape(-1)
    cond_sd = (cov[u][:, u] - cov[u][:, k] @ torch.linalg.solve(cov[k][:, k], cov[k][:, u])).diagonal().sqrt()
    bias, excess = {True: [], False: []}, {True: [], False: []}
    for seed in range(3, 7):
        value = torch.linalg.cholesky(cov) @ torch.randn(h * w, generator=torch.Generator().manual_seed(seed),
                                                         dtype=torch.float64)
        cond_mu = cov[u][:, k] @ torch.linalg.solve(cov[k][:, k], value[k])
        exact_rmse = float(((cond_mu - value[u]) ** 2 + cond_sd**2).mean().sqrt())
        known = value.reshape(1, 1, h, w).expand(n, 1, h, w)
        for project in (None, harmonic_projection(known.numpy(), np.broadcast_to(mask.numpy(), known.shape))):
            x = sample(optimal_eps(SCHED, mu, cov), SCHED, (n, 1, h, w), "dpmsolver++", sample_steps=25, seed=1,
                       dtype=torch.float64, conditions=Conditions(known=known, mask=mask, project=project))
            free = x.reshape(n, -1)[:, u]
            bias[project is None].append(float(((free.mean(0) - cond_mu).abs() / cond_sd).mean()))
            excess[project is None].append(float(((free - value[u]) ** 2).mean().sqrt()) / exact_rmse)
    (plain, harmonic), (plain_error, harmonic_error) = (np.mean(bias[True]), np.mean(bias[False])), \
        (np.mean(excess[True]), np.mean(excess[False]))
    assert plain > 0.25 and harmonic < plain / 2, bias
    assert plain_error > 1.08 and abs(harmonic_error - 1) < 0.1, excess


def test_a_noisy_start_samples_the_posterior_of_a_noisy_observation():
    """An observation y = x_0 + r n (n white) with r^2 = (1 - abar) / abar is, scaled by
    sqrt(abar), a draw of x_t: started there with no fresh noise, DDPM with the optimal denoiser
    samples p(x_0 | y) = N(C (S^-1 mu + y / r^2), C), C = (S^-1 + I / r^2)^-1. Adding fresh noise
    on top, as SDEdit does, takes the samples towards the prior."""
    from tests.diffusion.test_samplers import SCHED, SHAPE, D, gaussian_problem, optimal_eps

    mu, cov = gaussian_problem()
    g = torch.Generator().manual_seed(5)
    x0 = mu + torch.linalg.cholesky(cov) @ torch.randn(D, generator=g, dtype=torch.float64)
    start = max(t for t in sampled_timesteps(SCHED.alphas_cumprod.tolist(), "trailing", 250) if t <= 300)
    abar = float(SCHED.alphas_cumprod[start])
    r2 = (1 - abar) / abar
    y = x0 + math.sqrt(r2) * torch.randn(D, generator=g, dtype=torch.float64)
    inverse = torch.linalg.inv(cov)
    post_cov = torch.linalg.inv(inverse + torch.eye(D, dtype=torch.float64) / r2)
    post_mu = post_cov @ (inverse @ mu + y / r2)
    n = 2000
    errors = {}
    for noisy in (True, False):
        x = sample(optimal_eps(SCHED, mu, cov), SCHED, (n, *SHAPE), "ddpm", sample_steps=250, seed=1,
                   dtype=torch.float64, conditions=Conditions(known=y.reshape(SHAPE).expand(n, *SHAPE), start=start,
                                                              noisy_start=noisy)).reshape(n, D)
        errors[noisy] = (float(((x.mean(0) - post_mu).abs() / post_cov.diagonal().sqrt()).max()),
                         float((torch.cov(x.T) - post_cov).abs().max() / post_cov.abs().max()))
    assert errors[True][0] < 0.15 and errors[True][1] < 0.12, errors  # sampling error of 2,000 draws
    assert errors[False][1] > 3 * errors[True][1], errors


def test_resampling_is_for_one_step_samplers_and_counted():
    from geodiff.diffusion.samplers import network_evaluations

    known, mask = _known()
    calls = []
    sample(counting_model(calls), SCHED, SHAPE, "ddim", sample_steps=10, prediction="v", seed=0, dtype=torch.float64,
           conditions=Conditions(known=known, mask=mask), resampling=(3, 2))
    kept = sampled_timesteps(SCHED.alphas_cumprod.tolist(), "trailing", 10)
    assert len(calls) == network_evaluations("ddim", SCHED.alphas_cumprod[kept].tolist(), (3, 2)) == 10 + 3 * 3
    assert calls[:4] == [kept[9], kept[8], kept[7], kept[9]]  # three steps down, then back up to the top
    for sampler, resampling in (("dpmsolver++", (3, 2)), ("ddim", (0, 2)), ("ddim", (3,)), ("ddim", 3)):
        with pytest.raises(ValueError, match="resampling"):
            sample(smooth_model, SCHED, SHAPE, sampler, sample_steps=10, prediction="v", resampling=resampling)
