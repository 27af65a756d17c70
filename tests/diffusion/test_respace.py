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
    assert space_timesteps(100, "trailing", steps=None)[-1] == 99
    assert space_timesteps(100, [99, 5, 5, 0]) == [0, 5, 99]
    with pytest.raises(ValueError, match="subset"):
        space_timesteps(100, [100])
    with pytest.raises(ValueError, match="between 1 and 100"):
        space_timesteps(100, "trailing", 101)
    with pytest.raises(ValueError, match="unknown spacing"):
        space_timesteps(100, "quadratic")
