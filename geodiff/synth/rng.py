"""One way to turn a ``seed`` argument into a numpy Generator."""

from __future__ import annotations

import numpy as np

__all__ = ["generator"]


def generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator passes through (so callers can share one stream); anything else seeds a new one."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
