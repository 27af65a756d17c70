"""Values made JSON-ready: numpy arrays and scalars as lists and Python numbers, NaN as null.

JSON has no NaN (``json.dumps`` writes a token other readers refuse), and geodiff's arrays use
it for nodata; null is how every JSON reader spells a missing value."""

from __future__ import annotations

import math

import numpy as np


def json_ready(value):
    """``value`` with numpy arrays and scalars turned into JSON types; other values unchanged."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return np.where(np.isfinite(value), value.astype(object), None).tolist()
        return value.tolist()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
