"""Timestep samplers: uniform, and improved DDPM's loss-second-moment importance sampling."""

from __future__ import annotations

import json

import pytest
import torch

from geodiff.diffusion import LossSecondMomentDraw, UniformDraw, create_timestep_draw

T = 20


def full_history(sampler, table):
    """Feed every timestep ``history`` losses drawn around table[t] (so E[L_t^2] is known)."""
    for k in range(sampler.history):
        sampler.update(torch.arange(T), table * (1 + 0.1 * (-1) ** k))


def test_uniform_sampler():
    s = UniformDraw(T)
    t, w = s.sample(40000, generator=torch.Generator().manual_seed(0))
    assert t.dtype == torch.long and w.dtype == torch.float32 and torch.equal(w, torch.ones(40000))
    counts = torch.bincount(t, minlength=T).double()
    assert ((counts - 2000).abs() < 5 * 2000**0.5).all()
    t2, _ = s.sample(40000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, t2)


def test_uniform_until_every_history_is_full():
    s = LossSecondMomentDraw(T, history=3)
    table = torch.arange(1, T + 1, dtype=torch.float64)
    for k in range(3):
        assert torch.equal(s.weights(), torch.ones(T, dtype=torch.float64))
        s.update(torch.arange(T - 1 if k == 2 else T), table[: T - 1 if k == 2 else T])
    assert not s.warmed_up()  # the last timestep has only 2 losses
    s.update(torch.tensor([T - 1]), torch.tensor([float(T)]))
    assert s.warmed_up() and not torch.allclose(s.weights(), torch.ones(T, dtype=torch.float64))


def test_weights_are_sqrt_second_moment_mixed_with_uniform():
    s = LossSecondMomentDraw(T, history=10, uniform_prob=0.001)
    table = torch.linspace(0.1, 3.0, T, dtype=torch.float64)
    full_history(s, table)
    rms = table * (1 + 0.1**2) ** 0.5  # sqrt(E[L^2]) of L = table (1 +- 0.1)
    expected = 0.999 * rms / rms.sum() + 0.001 / T
    torch.testing.assert_close(s.weights(), expected)
    assert s.weights().sum().item() == pytest.approx(1.0)


def test_importance_weights_make_the_estimator_unbiased():
    s = LossSecondMomentDraw(T, uniform_prob=0.05)
    table = torch.linspace(0.1, 3.0, T, dtype=torch.float64) ** 2
    full_history(s, table)
    p = s.weights() / s.weights().sum()
    w_of_t = 1 / (T * p)
    assert (p * w_of_t * table).sum().item() == pytest.approx(table.mean().item(), rel=1e-12)  # exactly
    t, w = s.sample(200000, generator=torch.Generator().manual_seed(1))
    est = (w.double() * table[t]).mean()
    se = (w.double() * table[t]).std() / 200000**0.5
    assert abs(est - table.mean()) < 5 * se
    assert abs(torch.bincount(t, minlength=T)[-1] / 200000 - p[-1]) < 0.01  # draws follow p


def test_history_keeps_the_last_losses_in_order():
    s = LossSecondMomentDraw(T, history=3)
    for value in (1.0, 2.0, 3.0, 4.0, 5.0):
        s.update(torch.tensor([4]), torch.tensor([value]))
    assert s.loss_history[4].tolist() == [3.0, 4.0, 5.0] and int(s.loss_counts[4]) == 3
    s.update(torch.tensor([7, 7]), torch.tensor([1.0, 2.0]))  # repeats in one batch, in order
    assert s.loss_history[7, :2].tolist() == [1.0, 2.0] and int(s.loss_counts[7]) == 2


def test_state_dict_round_trip():
    s = LossSecondMomentDraw(T, history=4, uniform_prob=0.01)
    full_history(s, torch.linspace(1, 2, T, dtype=torch.float64))
    state = s.state_dict()
    plain = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    assert json.loads(json.dumps(plain)) == plain
    assert all(isinstance(v, torch.Tensor) for k, v in state.items() if k not in plain)
    fresh = create_timestep_draw("loss-second-moment", T, history=4)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.weights(), s.weights())
    a = s.sample(16, generator=torch.Generator().manual_seed(2))
    b = fresh.sample(16, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="timesteps"):
        LossSecondMomentDraw(T + 1, history=4).load_state_dict(state)
    u = create_timestep_draw("uniform", T)
    u.load_state_dict(u.state_dict())


def test_create_timestep_draw_names():
    assert isinstance(create_timestep_draw("uniform", 5), UniformDraw)
    assert isinstance(create_timestep_draw("loss-second-moment", 5), LossSecondMomentDraw)
    with pytest.raises(ValueError, match="unknown timestep draw"):
        create_timestep_draw("importance", 5)
