"""Forward noise fields: unit variance, and the empirical correlation of many draws matches the
requested model at several lags (exponential; power law against the Matérn closed form)."""

from __future__ import annotations

import json
import math

import pytest
import scipy.special
import torch

from geodiff.diffusion import NoiseSpec, draw_noise
from geodiff.diffusion.noise import as_noise_spec

SHAPE = (800, 24, 37)  # many fields on a non-square tile whose sides are not powers of two
LAGS = [(1, 0), (0, 1), (2, 0), (3, 4), (0, 6), (5, 12)]


def empirical_correlation(x: torch.Tensor, dy: int, dx: int) -> float:
    """Mean product of pixels dy, dx apart, over all pairs in the tile and all draws (the fields
    have unit variance and zero mean, so this estimates the correlation)."""
    H, W = x.shape[-2:]
    return (x[..., : H - dy, : W - dx] * x[..., dy:, dx:]).mean().item()


def matern(r: float, nu: float, scale: float) -> float:
    if r == 0:
        return 1.0
    z = r / scale
    return 2 ** (1 - nu) / math.gamma(nu) * z**nu * float(scipy.special.kv(nu, z))


def check_field(x: torch.Tensor, model, tol: float) -> None:
    assert abs(x.mean().item()) < 0.02
    assert abs(x.var().item() - 1) < 0.03
    per_pixel = x.reshape(-1, *x.shape[-2:]).var(0)  # unit variance at every pixel, corners included
    assert abs(per_pixel.mean().item() - 1) < 0.03 and (per_pixel - 1).abs().max() < 0.25
    for dy, dx in LAGS:
        r = math.hypot(dy, dx)
        assert abs(empirical_correlation(x, dy, dx) - model(r)) < tol, (r, empirical_correlation(x, dy, dx), model(r))


def test_white_noise_is_torch_randn():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    torch.testing.assert_close(draw_noise(None, (3, 4, 5), generator=g1), torch.randn(3, 4, 5, generator=g2))
    x = draw_noise("white", SHAPE, generator=g1)
    check_field(x, lambda r: 0.0, tol=0.01)


@pytest.mark.parametrize("length", [1.5, 4.0])
def test_exponential_field_matches_exp_minus_r_over_L(length):
    x = draw_noise(NoiseSpec("exponential", length=length), SHAPE, generator=torch.Generator().manual_seed(1),
                   dtype=torch.float64)
    assert x.shape == SHAPE and x.dtype == torch.float64
    # standard error of a lag correlation from 800 tiles with L up to 4: about 0.01
    check_field(x, lambda r: math.exp(-r / length), tol=0.03)


@pytest.mark.parametrize("exponent,length", [(3.0, 3.0), (4.0, 2.0)])
def test_power_law_field_is_the_matern_model(exponent, length):
    """P(f) ∝ (1 + (2 pi L f)^2)^(-beta/2) in 2-D is Matérn with nu = beta/2 - 1: beta = 3 is
    exp(-r/L), beta = 4 is (r/L) K_1(r/L)."""
    spec = NoiseSpec("power", exponent=exponent, length=length)
    x = draw_noise(spec, SHAPE, generator=torch.Generator().manual_seed(2))
    check_field(x, lambda r: matern(r, exponent / 2 - 1, length), tol=0.03)


def test_pure_power_law_has_unit_variance_and_long_range_correlation():
    x = draw_noise(NoiseSpec("power", exponent=8 / 3), (400, 32, 20), generator=torch.Generator().manual_seed(3))
    assert abs(x.var().item() - 1) < 0.05
    corr = [empirical_correlation(x, 0, d) for d in (1, 2, 4, 8)]
    assert corr == sorted(corr, reverse=True) and corr[-1] > 0.3


def test_leading_dimensions_are_independent_and_draws_reproducible():
    spec = NoiseSpec("exponential", length=3.0)
    x = draw_noise(spec, (300, 3, 10, 9), generator=torch.Generator().manual_seed(4))
    flat = x.permute(1, 0, 2, 3).reshape(3, -1)
    cross = torch.corrcoef(flat)
    assert (cross - torch.eye(3)).abs().max() < 0.05  # channels uncorrelated
    odd = draw_noise(spec, (5, 7, 11), generator=torch.Generator().manual_seed(9))  # odd field count
    again = draw_noise(spec, (5, 7, 11), generator=torch.Generator().manual_seed(9))
    assert odd.shape == (5, 7, 11) and torch.equal(odd, again)


def test_spec_config_and_validation():
    for spec in (NoiseSpec(), NoiseSpec("exponential", length=2.5), NoiseSpec("power", exponent=8 / 3, length=16.0)):
        assert NoiseSpec.from_config(json.loads(json.dumps(spec.to_config()))) == spec
    assert as_noise_spec(None) == NoiseSpec() and as_noise_spec("white") == NoiseSpec()
    assert as_noise_spec({"kind": "exponential", "length": 2}) == NoiseSpec("exponential", length=2)
    with pytest.raises(ValueError, match="correlation length"):
        NoiseSpec("exponential")
    with pytest.raises(ValueError, match="exponent"):
        NoiseSpec("power", length=3.0)
    with pytest.raises(ValueError, match="noise kind"):
        NoiseSpec("pink")
    with pytest.raises(ValueError, match="H, W"):
        draw_noise(NoiseSpec("exponential", length=1.0), (5,))


@pytest.mark.parametrize("spec", [NoiseSpec(), NoiseSpec("exponential", length=2.0)])
def test_one_generator_per_row_draws_each_row_alone(spec):
    """Row i of a per-row draw is what generator i draws for that row by itself, whatever the batch."""
    def gens(seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]
    batch = draw_noise(spec, (3, 2, 6, 5), generator=gens([7, 8, 9]))
    alone = draw_noise(spec, (2, 6, 5), generator=torch.Generator().manual_seed(8))
    assert torch.equal(batch[1], alone)
    assert torch.equal(draw_noise(spec, (2, 2, 6, 5), generator=gens([7, 8])), batch[:2])
    with pytest.raises(ValueError, match="one per entry"):
        draw_noise(spec, (3, 6, 5), generator=gens([1, 2]))
