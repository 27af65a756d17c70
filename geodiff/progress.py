"""Progress bars over lazy (dask) work: exports, scene sampling, the demo."""

from __future__ import annotations

import contextlib


def dask_progress(enabled: bool, description: str):
    """A context manager showing a bar over the dask tasks computed inside it (none when the data
    is in memory, nothing when ``enabled`` is false)."""
    if not enabled:
        return contextlib.nullcontext()
    from tqdm.dask import TqdmCallback

    return TqdmCallback(desc=description, unit="task")
