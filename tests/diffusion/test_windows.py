"""Fused windows: the weighted average of per-window predictions, and samplers over a canvas."""

from __future__ import annotations

import pytest
import torch

from geodiff.diffusion import NoiseSchedule, sample
from geodiff.diffusion.windows import fused, window_starts, window_weights


def test_window_starts_cover_the_canvas():
    assert window_starts(32, 32, 16) == [0]
    assert window_starts(80, 32, 16) == [0, 16, 32, 48]
    assert window_starts(70, 32, 16) == [0, 16, 32, 38]
    for length, size, stride in [(100, 32, 16), (33, 32, 32), (64, 16, 5)]:
        starts = window_starts(length, size, stride)
        covered = torch.zeros(length, dtype=torch.bool)
        for s in starts:
            covered[s:s + size] = True
        assert covered.all() and starts[-1] + size == length
    with pytest.raises(ValueError, match="smaller than one window"):
        window_starts(20, 32, 16)
    with pytest.raises(ValueError, match="stride"):
        window_starts(64, 32, 33)


def test_weights_taper_but_stay_positive():
    w = window_weights(32, 32, dtype=torch.float64)
    assert w.min() > 0 and w.max() <= 1 and w[15:17, 15:17].min() > 0.99
    torch.testing.assert_close(w, w.T)


def test_a_pointwise_network_is_unchanged_by_fusion():
    def pointwise(x, t):
        return torch.tanh(x) * (1 + t.reshape(-1, 1, 1, 1) / 1000)

    x = torch.randn(2, 3, 50, 70, dtype=torch.float64)
    t = torch.tensor([10, 900])
    torch.testing.assert_close(fused(pointwise, (32, 32), (16, 16), batch_size=5)(x, t), pointwise(x, t))


def test_fusion_is_the_weighted_average_of_the_windows():
    """Each window predicts its own index: the canvas holds the weight-averaged indices."""
    calls = []

    def window_index(x, t, y=None):
        calls.append(y)
        base = len(calls) * 100
        return torch.arange(base, base + x.shape[0], dtype=x.dtype).reshape(-1, 1, 1, 1).expand_as(x).clone()

    x = torch.zeros(2, 1, 48, 40, dtype=torch.float64)
    out = fused(window_index, (32, 32), (16, 8), batch_size=3)(x, torch.tensor([5, 7]), y=torch.tensor([4, 9]))
    boxes = [(i, r, c) for i in range(2) for r in (0, 16) for c in (0, 8)]
    values = [100 * (1 + k // 3) + k % 3 for k in range(len(boxes))]
    w = window_weights(32, 32, dtype=torch.float64)
    num, den = torch.zeros(2, 1, 48, 40, dtype=torch.float64), torch.zeros(2, 1, 48, 40, dtype=torch.float64)
    for (i, r, c), v in zip(boxes, values):
        num[i, :, r:r + 32, c:c + 32] += w * v
        den[i, :, r:r + 32, c:c + 32] += w
    torch.testing.assert_close(out, num / den)
    assert torch.cat(calls).tolist() == [4, 4, 4, 4, 9, 9, 9, 9]  # each window has its canvas's label


def test_one_window_canvas_is_the_plain_sampler():
    schedule = NoiseSchedule("sigmoid", timesteps=1000)

    def model_fn(x, t):
        return torch.tanh(x + torch.roll(x, 1, -1))

    kw = {"sample_steps": 10, "prediction": "v", "seed": 3, "dtype": torch.float64}
    plain = sample(model_fn, schedule, (2, 1, 32, 32), "dpmsolver++", **kw)
    canvas = sample(fused(model_fn, (32, 32), (16, 16)), schedule, (2, 1, 32, 32), "dpmsolver++", **kw)
    torch.testing.assert_close(canvas, plain)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmsolver++", "unipc", "heun"])
def test_every_sampler_runs_on_a_canvas_with_learned_variance(sampler):
    """Both halves of a learned-variance network are fused: DDPM's steps take their noise scale
    from the fused v (its two ends, the small and the large variance, differ), the deterministic
    samplers ignore v."""
    schedule = NoiseSchedule("cosine", timesteps=100)

    def learned(v):
        def model_fn(x, t):
            return torch.cat([torch.tanh(x + torch.roll(x, 1, -2)), torch.full_like(x, v)], dim=1)
        return model_fn

    runs = [sample(fused(learned(v), (16, 16), (8, 8)), schedule, (2, 1, 40, 24), sampler, sample_steps=8, seed=0,
                   dtype=torch.float64, learn_sigma=True) for v in (-1.0, 1.0)]
    assert runs[0].shape == (2, 1, 40, 24) and torch.isfinite(runs[0]).all()
    if sampler == "ddpm":
        assert (runs[0] - runs[1]).abs().max() > 1e-3
    else:
        torch.testing.assert_close(runs[0], runs[1])


def test_a_label_map_gives_each_window_the_class_at_its_centre():
    def by_class(x, t, y):  # each window predicts its class everywhere
        return x * 0 + y.to(x.dtype).reshape(-1, 1, 1, 1)

    x, t = torch.zeros(1, 1, 32, 96, dtype=torch.float64), torch.tensor([5])
    fn = fused(by_class, (32, 32), (16, 16), batch_size=3)
    uniform = torch.full((1, 32, 96), 2)
    torch.testing.assert_close(fn(x, t, y=uniform), fn(x, t, y=torch.tensor([2])))
    halves = torch.zeros(1, 32, 96, dtype=torch.long)
    halves[..., 48:] = 1
    profile = fn(x, t, y=halves)[0, 0, 16]
    # Windows start at 0, 16, 32, 48, 64: centres 16, 32 are class 0; 48, 64, 80 class 1.
    assert profile[:16].eq(0).all() and profile[-16:].eq(1).all()
    steps = profile.diff()
    assert (steps >= 0).all() and steps.max() < 0.2  # a blend across the boundary, no step


def test_canvas_conditioning_is_cut_with_the_windows():
    def echo(x, t, cond):  # each window predicts its own part of the conditioning
        return cond * 1.0

    x, t = torch.zeros(2, 1, 40, 56, dtype=torch.float64), torch.tensor([3, 7])
    cond = torch.randn(2, 1, 40, 56, dtype=torch.float64)
    torch.testing.assert_close(fused(echo, (16, 16), (8, 8), batch_size=7)(x, t, cond=cond), cond)
    with pytest.raises(ValueError, match="canvas"):
        fused(echo, (16, 16), (8, 8))(x, t, cond=cond[..., :20, :28])
