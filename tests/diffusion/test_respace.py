"""Timestep spacing: improved-diffusion section strings worked out by hand, and diffusers'
trailing / leading / linspace spacings."""

from __future__ import annotations

import pytest

from geodiff.diffusion.respace import section_timesteps, space_timesteps


def test_ddim_strings_use_the_integer_stride_giving_n_steps():
    assert space_timesteps(100, "ddim25") == list(range(0, 100, 4))
    assert space_timesteps(1000, "ddim10") == list(range(0, 1000, 100))
    # 1000 steps: stride 3 gives 334 steps, stride 4 gives 250
    assert len(space_timesteps(1000, "ddim250")) == 250 and space_timesteps(1000, "ddim250")[1] == 4
    with pytest.raises(ValueError, match="exactly 7"):
        space_timesteps(10, "ddim7")  # strides give 10, 5, 4, 3, 2, 2, 2, 2, 1 steps


def test_section_strings_by_hand():
    # T = 30, "2,3": two sections of 15; [0, 14] at stride 14, then 15 + [0, 7, 14]
    assert space_timesteps(30, "2,3") == [0, 14, 15, 22, 29]
    # T = 10, "3,2,1": sections of 4, 3, 3 (the first takes the remainder);
    # 0 + round([0, 1.5, 3]) = [0, 2, 3]; 4 + [0, 2]; 7 + [0]
    assert space_timesteps(10, "3,2,1") == [0, 2, 3, 4, 6, 7]
    # one section of 1000 with 250 steps: stride 999/249, from 0 to 999
    kept = space_timesteps(1000, "250")
    assert len(kept) == 250 and kept[0] == 0 and kept[-1] == 999 and kept[1] == 4
    assert section_timesteps(30, [2, 3]) == [0, 14, 15, 22, 29]
    with pytest.raises(ValueError, match="cannot take 20 steps"):
        space_timesteps(30, "20,5")


def test_named_spacings_by_hand():
    assert space_timesteps(1000, "trailing", 4) == [249, 499, 749, 999]
    assert space_timesteps(1000, "leading", 4) == [0, 250, 500, 750]
    assert space_timesteps(1000, "linspace", 5) == [0, 250, 500, 749, 999]  # 249.75, 499.5, 749.25
    assert space_timesteps(10, "trailing", 3) == [2, 6, 9]  # round(10 - i * 10/3) - 1: 10, 6.67, 3.33
    assert space_timesteps(10, "trailing", None) == list(range(10))


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("T,steps", [(1000, 50), (1000, 7), (1000, 1000), (333, 20), (50, 49)])
def test_named_spacings_match_diffusers(spacing, T, steps):
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing, steps_offset=0)
    scheduler.set_timesteps(steps)
    assert space_timesteps(T, spacing, steps) == sorted(set(scheduler.timesteps.tolist()))


def test_explicit_lists_and_errors():
    assert space_timesteps(100, "trailing", sample_steps=None)[-1] == 99
    assert space_timesteps(100, [99, 5, 5, 0]) == [0, 5, 99]
    with pytest.raises(ValueError, match="subset"):
        space_timesteps(100, [100])
    with pytest.raises(ValueError, match="between 1 and 100"):
        space_timesteps(100, "trailing", 101)
    with pytest.raises(ValueError, match="unknown spacing"):
        space_timesteps(100, "quadratic")


@pytest.mark.parametrize("name", ["cosine", "sigmoid", "linear"])
@pytest.mark.parametrize(("spacing", "option"), [("karras", "use_karras_sigmas"), ("logsnr", "use_lu_lambdas")])
@pytest.mark.parametrize("steps", [10, 25])
def test_noise_level_spacings_match_diffusers(name, spacing, option, steps):
    """diffusers' DPM-Solver++ Karras sigmas and Lu lambdas, uncapped: the same timesteps clear
    of where diffusers puts several steps on one timestep (it keeps such repeats; we move them
    to the next free timesteps below, which shifts the steps just under them)."""
    import math

    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.respace import noise_level_timesteps

    diffusers = pytest.importorskip("diffusers")
    schedule = NoiseSchedule(name, 1000)
    ref = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, trained_betas=schedule.betas.numpy(),
                                                **{option: True})
    ref.set_timesteps(steps)
    theirs = ref.timesteps.tolist()[::-1]
    ours = noise_level_timesteps(schedule.alphas_cumprod.tolist(), spacing, steps, sigma_max=math.inf)
    assert len(ours) == len(set(ours)) == steps and ours[0] == 0 and ours[-1] == 999
    repeated = {t for t in theirs if theirs.count(t) > 1}
    clear = [i for i, t in enumerate(theirs) if all(t < r - steps for r in repeated)]
    assert len(clear) >= steps // 3
    for i in clear:
        assert abs(ours[i] - theirs[i]) <= 1, (i, ours, theirs)


def test_noise_level_spacing_caps_the_top_noise_level():
    import math

    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.respace import SIGMA_MAX, noise_level_timesteps

    abar = NoiseSchedule("cosine", 1000).alphas_cumprod.tolist()
    kept = noise_level_timesteps(abar, "karras", 10)
    def sigma_at(abar, t):
        return math.sqrt((1 - abar[t]) / abar[t])

    sigma = [sigma_at(abar, t) for t in kept]
    assert kept[-1] == 999 and sigma[-1] > SIGMA_MAX  # the start noise's timestep
    # The next one is Karras' second noise level on [sigma_0, SIGMA_MAX] (eq. 5, rho = 7).
    s_max, s_min = SIGMA_MAX ** (1 / 7), sigma_at(abar, 0) ** (1 / 7)
    target = (s_max + (s_min - s_max) / 9) ** 7
    nearest = min(range(1000), key=lambda t: abs(math.log(sigma_at(abar, t) / target)))
    assert kept[-2] == nearest and sigma[-2] < SIGMA_MAX
    with pytest.raises(ValueError, match="noise-level spacing"):
        noise_level_timesteps(abar, "uniform", 10)
