"""Which timesteps of a trained schedule a sampler visits.

Two families of spacing:

- diffusers-style ``"trailing"``, ``"leading"`` and ``"linspace"`` with a number of steps (as in
  Lin, Liu, Li, Yang (2024), *Common Diffusion Noise Schedules and Sample Steps are Flawed*,
  table 2): trailing starts at T-1 and is the one to use with few steps;
- improved-diffusion section strings: ``"250"`` (250 evenly strided steps), ``"10,15,20"`` (the
  range split into 3 equal sections holding 10, 15 and 20 evenly strided steps), ``"ddimN"``
  (the integer stride that gives exactly N steps starting at 0, as the DDIM paper does).

An explicit iterable of ints is taken as is. :func:`space_timesteps` returns the sorted kept
timesteps; :meth:`NoiseSchedule.respace` rebuilds the betas over them.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["section_timesteps", "space_timesteps"]


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


def space_timesteps(num_timesteps: int, spacing="trailing", steps: int | None = None) -> list[int]:
    """Sorted timesteps of 0..T-1 to visit.

    ``spacing`` is "trailing" (T-1 down in strides of T/steps), "leading" (0 up in integer
    strides of T//steps), "linspace" (steps values evenly from 0 to T-1, rounded), an
    improved-diffusion string (see :func:`section_timesteps`; ``steps`` is then ignored) or an
    explicit iterable of timesteps.
    """
    T = int(num_timesteps)
    if isinstance(spacing, str) and spacing in ("trailing", "leading", "linspace"):
        n = T if steps is None else int(steps)
        if not 1 <= n <= T:
            raise ValueError(f"steps must be between 1 and {T}, got {steps}")
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
