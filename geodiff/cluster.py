"""Working on a dask.distributed cluster: the client in use, a client for a scheduler's address,
and checks on the workers before any block is computed.

Scene sampling, restoration and exports run on a ``distributed.Client`` as they are: their
graphs hold the model as one key, which each worker fetches once (never a copy per task); a
block is a function of ``(seed, block origin)`` and of its already generated neighbours, so the
blocks of a lost worker are recomputed to the same values; the writers' chunk tasks write their
regions into the store from the workers, under a temporary name renamed once every chunk is in.
Each worker takes its own device (with dask-cuda's LocalCUDACluster, the GPU it was given). What
this module adds is what must hold before that work starts: a scheduler to reach, workers, the
device asked for on every worker, and a destination every worker can write to.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import tempfile
import time

import dask

from geodiff.errors import GeodiffError

#: Seconds to wait for a scheduler to answer.
CONNECT_TIMEOUT = 10.0
# glibc's mallopt parameters, and the thresholds its own dynamic tuning reaches on 64-bit systems.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 32 << 20, 64 << 20


def active_client():
    """The dask.distributed client that computations go to, or None: dask's own choice of
    scheduler (the default client, unless ``dask.config`` names another scheduler)."""
    if "distributed" not in sys.modules:  # no client can exist without the module imported
        return None
    from distributed import Client

    client = getattr(dask.base.get_scheduler(), "__self__", None)  # the scheduler is a client's bound get
    return client if isinstance(client, Client) else None


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A client of the dask scheduler at ``address`` (``tcp://host:8786``), made the default
    client, with a clear error when none answers within ``timeout`` seconds."""
    try:
        from distributed import Client
    except ImportError as err:
        raise GeodiffError("a dask scheduler needs dask.distributed: pip install 'geodiff[distributed]'") from err
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise GeodiffError(f"no dask scheduler reachable at {address}: {err}") from err


def check_workers(client, *, device=None, folder=None) -> None:
    """Raise GeodiffError, naming the workers, unless the cluster has workers, each of them has
    ``device`` (when given) and can create files in ``folder`` (when given)."""
    if not client.scheduler_info().get("workers"):
        raise GeodiffError(f"the dask cluster of {client.scheduler.address} has no worker")
    answers = client.run(_worker_check, None if device is None else str(device),
                         None if folder is None else os.fspath(folder))
    failed = sorted((address, why) for address, why in answers.items() if why)
    if failed:
        raise GeodiffError("; ".join(f"worker {address}: {why}" for address, why in failed))


def drain_workers(client, timeout: float = 60.0) -> None:
    """Wait, up to ``timeout`` seconds, until no worker is running a task: a task cancelled by a
    failure elsewhere still runs to its end, and may still write."""
    deadline = time.monotonic() + timeout
    while any(client.run(_executing).values()) and time.monotonic() < deadline:
        time.sleep(0.05)


def _executing(dask_worker) -> int:
    return len(dask_worker.state.executing)


def _worker_check(device: str | None, folder: str | None) -> str | None:
    """On a worker: why it cannot compute on ``device`` or write in ``folder``, None if it can."""
    if device is not None:
        from geodiff.diffusion.device import pick_device

        try:
            pick_device(device)
        except GeodiffError as err:
            return str(err)
    if folder is not None:
        try:
            with tempfile.TemporaryFile(prefix=".geodiff-probe-", dir=folder):
                pass  # the file is unnamed, or removed on closing: nothing is left in the folder
        except OSError as err:
            return f"cannot write in {folder}: {err.strerror or err}"
    return None


@functools.cache
def tune_worker_allocator() -> bool:
    """Once per process, on a dask worker: raise glibc's mmap and trim thresholds back to what
    its own dynamic tuning reaches. True if they were set here.

    Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes the mmap
    threshold at 128 KiB: every tensor of the network's activations is then mmapped, faulted in
    and unmapped at each call. Measured on the tiny network (batch of 64 tiles of 32 x 32, one
    thread): 0.54 s a call on such a worker against 0.19 s with these thresholds.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    try:
        get_worker()
        libc = ctypes.CDLL("libc.so.6")
    except (ValueError, OSError):  # not a worker, or not glibc
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
