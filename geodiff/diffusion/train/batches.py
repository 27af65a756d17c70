"""What the training loop reads: tensors, map-style Datasets or iterables of batches (a
DataLoader), checked, split, and batched by step.

A Dataset needs ``__len__`` and ``__getitems__`` (a list of positions, or of ``(position, draw)``
items with an augmentation draw, to a ``(batch, C, H, W)`` tensor), as
:class:`geodiff.tile_dataset.TileDataset` has.
"""

from __future__ import annotations

import torch

from geodiff.errors import GeodiffError

from .rng import SPLIT, step_generator, stream_seed


def as_tensor(data, dtype=None) -> torch.Tensor | None:
    if data is None:
        return None
    t = torch.as_tensor(data)
    return t if dtype is None else t.to(dtype)


class BatchStream:
    """Training batches from an iterable (a DataLoader, a generator), taken in its order and
    iterated again when it ends (a DataLoader's next epoch). Its batches are tensors, or tuples
    whose first item is the tiles. The iterable decides the tiles, so a resumed run continues
    exactly only if it does."""

    def __init__(self, iterable):
        self.iterable = iterable

    def __len__(self) -> int:
        dataset = getattr(self.iterable, "dataset", None)
        if dataset is None or not hasattr(dataset, "__len__"):
            raise GeodiffError("an iterable of batches has no tile count: give the length of training in steps")
        return len(dataset)

    def __iter__(self):
        while True:
            empty = True
            for batch in self.iterable:
                empty = False
                yield None, as_tensor(batch[0] if isinstance(batch, (tuple, list)) else batch)
            if empty:
                raise GeodiffError("the iterable of batches gave no batch")


def prepare(data, labels, cond, name: str, dtype: torch.dtype):
    """``(data, labels, cond)`` checked: a float ``(N, C, H, W)`` finite tensor, a Dataset, or an
    iterable of batches (training data only), with labels and conditioning of matching length;
    None for no data."""
    if _is_batch_iterable(data):
        if name != "data":
            raise GeodiffError(f"{name} must be a tensor or a Dataset (validation reads it in order)")
        if labels is not None or cond is not None:
            raise GeodiffError("with an iterable of batches, labels and cond belong in its batches; "
                               "pass a Dataset or a tensor to give them separately")
        return BatchStream(data), None, None
    if isinstance(data, torch.utils.data.Dataset):
        if not hasattr(data, "__getitems__"):
            raise GeodiffError(f"{name} is a Dataset without __getitems__ (positions -> a batch tensor)")
        if len(data) == 0:
            raise GeodiffError(f"{name} holds no tile")
        x = data
    else:
        x = as_tensor(data)
        if x is None:
            return None
        if not x.is_floating_point() or x.ndim != 4:
            raise GeodiffError(f"{name} must be a float tensor (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
        x = x.to(dtype)
        if not torch.isfinite(x).all():
            raise GeodiffError(f"{name} contains NaN or inf; fill or drop nodata pixels before training")
    y = as_tensor(labels)
    y = None if y is None else y.float() if y.is_floating_point() else y.long()  # multi-hot or class indices
    c = as_tensor(cond, dtype if isinstance(x, torch.Tensor) else None)
    for other, what in ((y, "labels"), (c, "cond")):
        if other is not None and other.shape[0] != len(x):
            raise GeodiffError(f"{what} has {other.shape[0]} entries for {len(x)} tiles")
    return x, y, c


def _is_batch_iterable(data) -> bool:
    """A DataLoader or a generator of batches, not tiles (a tensor, an array, a list of tiles)."""
    return isinstance(data, torch.utils.data.DataLoader) or hasattr(data, "__next__")


def split(train, val, fraction: float, seed: int):
    """Hold out ``fraction`` of the tiles of a tensor at random when no validation data is given."""
    if val is not None or fraction == 0:
        return train, val
    if not isinstance(train[0], torch.Tensor):
        raise GeodiffError("val_fraction splits tensors; for a Dataset pass val_data (geodiff.fit "
                           "holds out whole scenes or spatial blocks)")
    n = len(train[0])
    n_val = round(n * fraction)
    if n_val == 0 or n_val == n:
        raise GeodiffError(
            f"val_fraction={fraction} of {n} tiles leaves an empty training or validation set; "
            "change val_fraction or pass val_data"
        )
    g = torch.Generator().manual_seed(stream_seed(seed, SPLIT))
    perm = torch.randperm(n, generator=g)
    def pick(idx):
        return tuple(None if a is None else a[idx] for a in train)
    return pick(perm[n_val:]), pick(perm[:n_val])


def batch_items(n: int, batch_size: int, seed: int, step: int, micro: int = 0, data=None) -> list:
    """The tiles (positions into ``n``) of micro-batch ``micro`` of step ``step``, with
    ``data.draws``' augmentation when ``data`` has one."""
    g = step_generator(seed, step, micro)
    positions = torch.randint(n, (batch_size,), generator=g).tolist()
    draws = getattr(data, "draws", None)
    return draws(positions, g) if draws is not None else positions


def rows(data, start: int, stop: int) -> torch.Tensor:
    """Tiles ``start:stop`` of a tensor or a Dataset, in order."""
    if isinstance(data, torch.Tensor):
        return data[start:stop]
    return data.__getitems__(list(range(start, stop)))


class StepBatches:
    """The batch sampler of a run: the items of every micro-batch from step ``start`` to ``total``
    (this rank's share of them in a data-parallel run, see :mod:`.distributed`)."""

    def __init__(self, data, batch_size: int, grad_accum: int, seed: int, start: int, total: int, group=None):
        self.data, self.batch_size, self.grad_accum, self.seed = data, batch_size, grad_accum, seed
        self.start, self.total, self.group = start, total, group

    def __iter__(self):
        n = len(self.data)
        for step in range(self.start, self.total):
            for micro in range(self.grad_accum):
                items = batch_items(n, self.batch_size, self.seed, step, micro, self.data)
                yield items if self.group is None else self.group.share(items)

    def __len__(self) -> int:
        return (self.total - self.start) * self.grad_accum


class Fetch(torch.utils.data.Dataset):
    """Reads a batch and returns it with its positions."""

    def __init__(self, data):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, items) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.tensor([i if isinstance(i, int) else i[0] for i in items])
        if isinstance(self.data, torch.Tensor):
            return positions, self.data[positions]
        return positions, self.data.__getitems__(items)


def batches(data, batch_size: int, grad_accum: int, seed: int, start: int, total: int, *, workers: int = 0,
            pin_memory: bool = False, group=None):
    """``(positions, tiles)`` for every micro-batch from step ``start`` to ``total``: read in this
    process, or by ``workers`` DataLoader processes for a Dataset."""
    if isinstance(data, BatchStream):
        if group is not None and group.world > 1:
            raise GeodiffError("an iterable of batches cannot be shared by the ranks of a data-parallel run; "
                               "pass a Dataset or a tensor")
        return iter(data)
    plan = StepBatches(data, batch_size, grad_accum, seed, start, total, group)
    fetch = Fetch(data)
    if workers and not isinstance(data, torch.Tensor):
        loader = torch.utils.data.DataLoader(fetch, batch_sampler=plan, num_workers=workers, collate_fn=_identity,
                                             prefetch_factor=4, pin_memory=pin_memory)
        return iter(loader)
    return (fetch.__getitems__(items) for items in plan)


def _identity(batch):
    return batch
