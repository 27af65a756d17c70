"""Known pixels, SDEdit starts and network conditioning through every sampler."""

from __future__ import annotations

import math

import pytest
import torch

from geodiff.diffusion import NoiseSchedule, sample
from geodiff.diffusion.conditions import Conditions
from geodiff.diffusion.respace import sampled_timesteps
from geodiff.diffusion.samplers import SAMPLERS

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


def test_start_edits_known_values_from_a_partial_noise_level():
    known, _ = _known()
    calls = []

    def counting(x, t):
        calls.append(int(t[0]))
        return smooth_model(x, t)

    change = {}
    for start in (600, 30):
        calls.clear()
        out = sample(counting, SCHED, SHAPE, "ddim", sample_steps=25, prediction="v", seed=0, dtype=torch.float64,
                     conditions=Conditions(known=known, start=start))
        kept = [t for t in sampled_timesteps(SCHED.alphas_cumprod.tolist(), "trailing", 25) if t <= start] or [start]
        assert calls == kept[::-1]
        change[start] = float((out - known).abs().mean())
    assert change[30] < change[600] / 3  # a light edit stays closer to its input


def test_labels_and_low_res_reach_the_network():
    seen = {}

    def model_fn(x, t, y=None, cond=None):
        seen["y"], seen["cond"] = y, cond
        return torch.zeros_like(x)

    labels, low = torch.tensor([0, 2, 1]), torch.zeros(3, 1, 4, 5)
    sample(model_fn, SCHED, SHAPE, "ddim", sample_steps=2, conditions=Conditions(labels=labels, low_res=low))
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
