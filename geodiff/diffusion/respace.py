"""Which timesteps of a trained schedule a sampler visits.

Two families of spacing:

- diffusers-style ``"trailing"``, ``"leading"`` and ``"linspace"`` with a number of steps (as in
  Lin, Liu, Li, Yang (2024), *Common Diffusion Noise Schedules and Sample Steps are Flawed*,
  table 2): trailing starts at T-1 and is the one to use with few steps;
- improved-diffusion section strings: ``"250"`` (250 evenly strided steps), ``"10,15,20"`` (the
  range split into 3 equal sections holding 10, 15 and 20 evenly strided steps), ``"ddimN"``
  (the integer stride that gives exactly N steps starting at 0, as the DDIM paper does).

- noise-level spacings that need the trained schedule, :func:`noise_level_timesteps`:
  ``"karras"`` (Karras, Aittala, Aila, Laine (2022), *Elucidating the Design Space of
  Diffusion-Based Generative Models*, eq. 5, rho = 7) and ``"logsnr"`` (uniform in log-SNR, as
  DPM-Solver recommends for small images). Both run from T-1 down to timestep 0, so the last
  network evaluation sees an almost clean tile; "trailing" stops at T/steps - 1, which with 10
  steps is a noise level the last x_0 estimate still blurs.

An explicit iterable of ints is taken as is. :func:`space_timesteps` returns the sorted kept
timesteps; :meth:`NoiseSchedule.respace` rebuilds the betas over them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from geodiff.names import NOISE_LEVEL_SPACINGS, TIMESTEP_SPACINGS

__all__ = ["NOISE_LEVEL_SPACINGS", "TIMESTEP_SPACINGS", "noise_level_timesteps", "sampled_timesteps",
           "section_timesteps", "space_timesteps"]

#: Highest noise level a noise-level spacing aims at (EDM's sigma_max for data in [-1, 1]). The
#: last trained timesteps go far beyond it (abar_T ~ 1e-7 once betas are capped), where a tile is
#: pure noise and steps spent there are wasted.
SIGMA_MAX = 80.0


def section_timesteps(num_timesteps: int, sections: str | Iterable[int]) -> list[int]:
    """improved-diffusion's ``space_timesteps``: evenly strided steps per equal section.

    ``sections`` is a string ``"ddimN"``, ``"N"`` or ``"N1,N2,..."``, or a list of counts. The
    range 0..T-1 is cut into ``len(counts)`` sections (the first ``T % len`` one step longer);
    section i of size S keeps counts[i] steps at fractional stride (S - 1)/(counts[i] - 1),
    rounded, from its first index (stride 1 when counts[i] == 1).
    """
    if isinstance(sections, str):
        try:
            desired = int(sections.removeprefix("ddim")) if sections.startswith("ddim") else None
            counts = None if desired is not None else [int(c) for c in sections.split(",")]
        except ValueError:
            raise ValueError(
                f"unknown spacing {sections!r}: use 'trailing', 'leading', 'linspace', "
                "'ddimN', 'N' or 'N1,N2,...', or a list of timesteps"
            ) from None
        if desired is not None:
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == desired:
                    return list(range(0, num_timesteps, stride))
            raise ValueError(f"no integer stride gives exactly {desired} steps out of {num_timesteps}")
    else:
        counts = [int(c) for c in sections]
    size_per, extra = divmod(num_timesteps, len(counts))
    start, kept = 0, []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if not 1 <= count <= size:
            raise ValueError(f"cannot take {count} steps from a section of {size} timesteps")
        stride = 1 if count == 1 else (size - 1) / (count - 1)
        kept += [start + round(j * stride) for j in range(count)]
        start += size
    return sorted(set(kept))


def space_timesteps(num_timesteps: int, spacing="trailing", sample_steps: int | None = None) -> list[int]:
    """Sorted timesteps of 0..T-1 to visit.

    ``spacing`` is "trailing" (T-1 down in strides of T/sample_steps), "leading" (0 up in integer
    strides of T//sample_steps), "linspace" (sample_steps values evenly from 0 to T-1, rounded), an
    improved-diffusion string (see :func:`section_timesteps`; ``steps`` is then ignored) or an
    explicit iterable of timesteps.
    """
    T = int(num_timesteps)
    if isinstance(spacing, str) and spacing in ("trailing", "leading", "linspace"):
        n = T if sample_steps is None else int(sample_steps)
        if not 1 <= n <= T:
            raise ValueError(f"sample_steps must be between 1 and {T}, got {sample_steps}")
        if spacing == "trailing":
            delta = (T - T / n) - T  # numpy.arange's step, for bit-identical rounding at .5
            kept = [round(T + i * delta) - 1 for i in range(n)]
        elif spacing == "leading":
            ratio = T // n
            kept = [i * ratio for i in range(n)]
        else:
            step = (T - 1) / (n - 1) if n > 1 else 0.0
            kept = [round(i * step) for i in range(n)]
        return sorted(set(kept))
    if isinstance(spacing, str):
        return section_timesteps(T, spacing)
    kept = sorted({int(t) for t in spacing})
    if not kept or kept[0] < 0 or kept[-1] >= T:
        raise ValueError(f"explicit timesteps must be a non-empty subset of 0..{T - 1}")
    return kept


def noise_level_timesteps(alphas_cumprod: Sequence[float], spacing: str, sample_steps: int, rho: float = 7.0,
                          sigma_max: float = SIGMA_MAX) -> list[int]:
    """Sorted timesteps whose noise levels follow ``spacing`` from timestep T-1 down to 0.

    With the EDM noise level sigma_t = sqrt((1 - abar_t) / abar_t), ``"karras"`` targets
    sigma_i = (s_max^(1/rho) + i / (n - 1) (s_min^(1/rho) - s_max^(1/rho)))^rho (Karras et al.
    2022, eq. 5) and ``"logsnr"`` targets log-SNR = -2 log sigma evenly spaced, from
    s_max = min(sigma_{T-1}, sigma_max) to s_min = sigma_0; the first timestep is always T-1
    (where the start noise lives) and each other target is taken at the trained timestep nearest
    in log sigma. Where several targets fall on one
    timestep (many steps on a short schedule) the later ones move to the next free timestep
    below, so exactly ``steps`` distinct timesteps are returned.
    """
    if spacing not in NOISE_LEVEL_SPACINGS:
        raise ValueError(f"unknown noise-level spacing {spacing!r}; choose one of {NOISE_LEVEL_SPACINGS}")
    T = len(alphas_cumprod)
    n = int(sample_steps)
    if not 1 <= n <= T:
        raise ValueError(f"sample_steps must be between 1 and {T}, got {sample_steps}")
    log_sigma = [0.5 * (math.log1p(-a) - math.log(a)) for a in alphas_cumprod]  # increasing in t
    hi, lo = min(log_sigma[-1], math.log(sigma_max)), log_sigma[0]
    fractions = [i / (n - 1) if n > 1 else 0.0 for i in range(n)]
    if spacing == "karras":
        s_max, s_min = math.exp(hi / rho), math.exp(lo / rho)
        targets = [rho * math.log(s_max + f * (s_min - s_max)) for f in fractions]
    else:
        targets = [hi + f * (lo - hi) for f in fractions]
    kept, floor = [], T  # walk from high noise down; each pick lies strictly below the previous
    for i, target in enumerate(targets):
        nearest = T - 1 if i == 0 else min(range(T), key=lambda t: abs(log_sigma[t] - target))
        pick = min(nearest, floor - 1, T - 1)
        pick = max(pick, n - 1 - i)  # leave room for the picks still to come
        kept.append(pick)
        floor = pick
    return sorted(kept)


def sampled_timesteps(alphas_cumprod: Sequence[float], spacing="trailing", sample_steps: int | None = None) -> list[int]:
    """The timesteps a sampler visits for any ``spacing``: the noise-level spacings through
    :func:`noise_level_timesteps` (``steps`` None: all timesteps), all others through
    :func:`space_timesteps`."""
    if isinstance(spacing, str) and spacing in NOISE_LEVEL_SPACINGS:
        return noise_level_timesteps(alphas_cumprod, spacing, len(alphas_cumprod) if sample_steps is None else sample_steps)
    return space_timesteps(len(alphas_cumprod), spacing, sample_steps)
