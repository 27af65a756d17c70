"""NoiseSchedule: named schedules, closed forms of the forward process, respacing, config."""

from __future__ import annotations

import json
import math

import pytest
import torch

from geodiff.diffusion import NoiseSchedule


@pytest.fixture(params=["linear", "cosine", "sigmoid"])
def schedule(request):
    return NoiseSchedule(request.param, timesteps=200)


def test_named_schedules_from_their_definitions():
    lin = NoiseSchedule("linear", timesteps=250)  # DDPM's 1e-4..0.02 over 1000 steps, scaled by 1000/T
    assert lin.betas[0].item() == pytest.approx(4e-4) and lin.betas[-1].item() == pytest.approx(0.08)
    cos = NoiseSchedule("cosine", timesteps=1000)
    f = [math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(1001)]
    for t in (0, 10, 500, 900):  # betas below the 0.999 cap: abar_t = f(t+1) / f(0)
        assert cos.alphas_cumprod[t].item() == pytest.approx(f[t + 1] / f[0], rel=1e-12)
    assert cos.betas.max().item() == pytest.approx(0.999)
    sig = NoiseSchedule("sigmoid", timesteps=1000)
    def s(z):
        return 1 / (1 + math.exp(-z))
    assert sig.alphas_cumprod[499].item() == pytest.approx((s(3) - s(0)) / (s(3) - s(-3)), rel=1e-9)
    for sched in (lin, cos, sig):
        assert sched.betas.dtype == torch.float64
        assert bool((sched.alphas_cumprod[1:] < sched.alphas_cumprod[:-1]).all())
        assert 0 < sched.alphas_cumprod[-1] < 1e-3


def test_posterior_matches_bayes_rule(schedule):
    """q(x_{t-1} | x_t, x_0) from Bayes' rule on the scalar chain: prior N(sqrt(abar_{t-1}) x0,
    1 - abar_{t-1}), likelihood x_t | x_{t-1} ~ N(sqrt(alpha_t) x_{t-1}, beta_t)."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(1, schedule.timesteps)
    x0 = torch.randn(len(t), 1, generator=g, dtype=torch.float64) * 2
    xt = torch.randn(len(t), 1, generator=g, dtype=torch.float64) * 2
    mean, var, log_var = schedule.q_posterior_mean_variance(x0, xt, t)
    abar_prev = torch.cumprod(1 - schedule.betas, 0)[t - 1, None]
    beta, alpha = schedule.betas[t, None], 1 - schedule.betas[t, None]
    precision = 1 / (1 - abar_prev) + alpha / beta
    bayes_mean = (abar_prev.sqrt() * x0 / (1 - abar_prev) + alpha.sqrt() * xt / beta) / precision
    torch.testing.assert_close(mean, bayes_mean, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(var, 1 / precision, rtol=1e-9, atol=0)
    torch.testing.assert_close(log_var, torch.log(1 / precision), rtol=1e-9, atol=1e-12)
    # at t = 0 the posterior is the point mass on x0; its log variance is clipped to t = 1's
    mean0, var0, log_var0 = schedule.q_posterior_mean_variance(x0[:1], xt[:1], torch.tensor([0]))
    torch.testing.assert_close(mean0, x0[:1])
    assert var0.item() == 0 and log_var0.item() == pytest.approx(math.log(schedule.posterior_variance[1].item()))


def test_learned_range_endpoints(schedule):
    t = torch.tensor([0, 1, 57, schedule.timesteps - 1])
    ones = torch.ones(4, 2, 3, 3, dtype=torch.float64)
    low = schedule.learned_log_variance(-ones, t)[:, 0, 0, 0]
    high = schedule.learned_log_variance(ones, t)[:, 0, 0, 0]
    mid = schedule.learned_log_variance(0 * ones, t)[:, 0, 0, 0]
    torch.testing.assert_close(low, schedule.posterior_log_variance_clipped[t])
    torch.testing.assert_close(high, torch.log(schedule.betas[t]))
    torch.testing.assert_close(mid, (low + high) / 2)
    assert bool((low <= high + 1e-12).all())  # beta~_t <= beta_t


def test_q_sample_moments_by_monte_carlo():
    sched = NoiseSchedule("cosine", timesteps=100)
    g = torch.Generator().manual_seed(1)
    n = 20000
    x0 = torch.tensor([-1.5, 0.3, 2.0], dtype=torch.float64).reshape(1, 3, 1, 1).expand(n, 3, 1, 1)
    for step in (0, 30, 99):
        t = torch.full((n,), step)
        xt = sched.q_sample(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
        abar = sched.alphas_cumprod[step]
        var = 1 - abar
        se_mean = (var / n).sqrt()
        assert ((xt.mean(0) - abar.sqrt() * x0[0]).abs() < 5 * se_mean).all()
        assert ((xt.var(0) - var).abs() < 5 * var * math.sqrt(2 / n)).all()


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_parameterisations_round_trip(schedule, prediction):
    g = torch.Generator().manual_seed(2)
    x0 = 3 * torch.randn(5, 2, 4, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 3, 50, 120, schedule.timesteps - 2])
    xt = schedule.q_sample(x0, t, eps)
    target = schedule.target(x0, eps, t, prediction)
    torch.testing.assert_close(schedule.predict_x0(xt, t, target, prediction), x0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(schedule.predict_eps(xt, t, target, prediction), eps, rtol=1e-6, atol=1e-6)
    # one timestep for the whole batch, as an int (samplers)
    t1 = torch.full((5,), 42)
    xt1 = schedule.q_sample(x0, t1, eps)
    torch.testing.assert_close(schedule.predict_x0(xt1, 42, schedule.target(x0, eps, t1, prediction), prediction), x0)


def test_v_is_the_salimans_ho_velocity():
    sched = NoiseSchedule("linear", timesteps=100)
    x0, eps, t = torch.tensor([[2.0]], dtype=torch.float64), torch.tensor([[-1.0]], dtype=torch.float64), torch.tensor([4])
    a, s = sched.alphas_cumprod[4].sqrt(), (1 - sched.alphas_cumprod[4]).sqrt()
    assert sched.target(x0, eps, t, "v").item() == pytest.approx((a * -1.0 - s * 2.0).item())


def test_respace_keeps_alphas_cumprod(schedule):
    kept = [0, 3, 4, 50, 120, schedule.timesteps - 1]
    new, tmap = schedule.respace(kept)
    assert tmap.tolist() == kept and tmap.dtype == torch.long
    torch.testing.assert_close(new.alphas_cumprod, schedule.alphas_cumprod[kept], rtol=1e-9, atol=0)
    assert new.timesteps == len(kept)
    same, _tmap_all = schedule.respace(range(schedule.timesteps))
    torch.testing.assert_close(same.betas, schedule.betas, rtol=1e-10, atol=1e-15)
    _new_str, tmap_str = schedule.respace("ddim20")
    assert tmap_str.tolist() == list(range(0, 200, 10))
    with pytest.raises(ValueError):
        schedule.respace([schedule.timesteps])


def test_config_round_trips_through_json():
    for sched in (NoiseSchedule("sigmoid", 37), NoiseSchedule.from_betas(torch.linspace(1e-3, 0.3, 11))):
        back = NoiseSchedule.from_config(json.loads(json.dumps(sched.to_config())))
        assert back.timesteps == sched.timesteps and back.name == sched.name
        torch.testing.assert_close(back.betas, sched.betas, rtol=0, atol=0)
    assert NoiseSchedule("cosine", 1000).to_config() == {"schedule": "cosine", "timesteps": 1000}


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule("quadratic")
    with pytest.raises(ValueError, match="betas >= 1"):
        NoiseSchedule("linear", 20)
    with pytest.raises(ValueError, match="positive int"):
        NoiseSchedule("cosine", 0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        NoiseSchedule.from_betas([0.1, 0.0])
    with pytest.raises(ValueError, match="NoiseSchedule config"):
        NoiseSchedule.from_config({"schedule": "nope"})
