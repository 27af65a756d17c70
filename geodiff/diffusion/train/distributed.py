"""Data-parallel training over processes: torch DistributedDataParallel, launched by torchrun.

Every rank draws the whole global batch's plan from the same streams (the tiles and their
augmentation, label dropout, timesteps, noise) and keeps its share, every ``world``-th item
from its rank on, as torch's DistributedSampler shards a dataset; DDP averages the gradients.
An N-process run therefore takes the optimizer steps of a one-process run with the same global
batch, up to the order of floating-point sums, and every rank holds the same weights, EMA and
random streams: rank 0's checkpoints resume every rank exactly. DistributedSampler itself is not
used: it shards epochs of a permutation, and geodiff's batches are drawn per step (see
:mod:`.batches`), which is what makes a resume exact at any step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from geodiff.errors import GeodiffError


@dataclass(frozen=True)
class Group:
    """This process's place in a data-parallel run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this rank writes (checkpoints, the model, the bar)."""
        return self.rank == 0

    def share(self, items):
        """This rank's part of a global batch's items (a list or a tensor along its first axis)."""
        return items if self.world == 1 else items[self.rank::self.world]

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` averaged over the ranks."""
        if self.world == 1:
            return tensor
        out = tensor.detach().clone()
        dist.all_reduce(out)
        return out / self.world

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank: every rank stops at the same step."""
        if self.world == 1:
            return flag
        out = torch.tensor([int(flag)], device=_collective_device())
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
        return bool(out.item())

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """The shares of every rank put back in the global batch's order (the inverse of :meth:`share`)."""
        if self.world == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts, 1).flatten(0, 1)


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def current() -> Group:
    """The group of the process group torch has initialised, else a one-process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return Group()
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def launched() -> bool:
    """Whether this process was started by torchrun (or any launcher that sets its variables)
    as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str | None = None) -> Group:
    """Join the process group torchrun describes in the environment (NCCL on CUDA, gloo
    otherwise), each rank on its own GPU; a one-process group when not launched so."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return current()
    if not dist.is_available():
        raise GeodiffError("this torch build has no torch.distributed: train in one process")
    cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    try:
        dist.init_process_group("nccl" if cuda else "gloo")
    except (RuntimeError, ValueError) as err:
        raise GeodiffError(f"cannot join the torchrun process group: {err}") from err
    return current()


def close() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
