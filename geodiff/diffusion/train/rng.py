"""The random streams of a training run, all derived from ``TrainConfig.seed``.

Streams are apart by construction: the initial weights, the batches, the forward noise, dropout
(on torch's global RNG, forked so the caller's is untouched), the validation split and the
validation draws each have their own. The tiles of step ``k`` come from a generator seeded by
``(seed, k)`` alone, so DataLoader workers can read ahead and a resumed run reads the same tiles.
"""

from __future__ import annotations

import numpy as np
import torch

DATA, NOISE, DROPOUT, SPLIT, VALIDATION, INIT = range(6)


def stream_seed(seed: int, stream: int) -> int:
    """The seed of one stream of a run seeded ``seed``."""
    return seed * 8 + stream


def init_seed(seed: int) -> int:
    """Seed of the initial network weights of a run with ``TrainConfig(seed=seed)``, a stream
    apart from the trainer's own draws (pass it as ``UNet(..., seed=init_seed(seed))``)."""
    return stream_seed(seed, INIT)


def step_generator(seed: int, step: int, micro: int = 0) -> torch.Generator:
    """The generator of micro-batch ``micro`` of optimizer step ``step``: a function of the seed
    and the step alone."""
    key = np.random.SeedSequence([seed, DATA, step, micro]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(key[0]) << 32 | int(key[1]))


def global_state(device: torch.device) -> dict[str, torch.Tensor]:
    """torch's global RNG state (and the device's, on CUDA)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_global_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def forked_devices(device: torch.device) -> list:
    """The devices whose global RNG ``torch.random.fork_rng`` must save for a run on ``device``."""
    return [device] if device.type == "cuda" else []


def initial_dropout_state(seed: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The global RNG state dropout starts from in a run seeded ``seed``."""
    with torch.random.fork_rng(devices=forked_devices(device)):
        torch.manual_seed(stream_seed(seed, DROPOUT))
        return global_state(device)
