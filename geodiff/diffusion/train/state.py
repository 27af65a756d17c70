"""A trainer's checkpoint: what it saves, how it is restored in place, and how a trainer is rebuilt
from one with a model factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from geodiff.errors import CheckpointError, GeodiffError

from ..checkpoint import Checkpoint, save_checkpoint
from ..schedule import NoiseSchedule
from .config import TrainConfig


def trainer_state(trainer) -> dict[str, Any]:
    """JSON state of ``trainer`` (tensors encoded by the checkpoint writer)."""
    return {
        "kind": "trainer",
        "model_config": getattr(trainer.model, "config", None),
        "schedule": trainer.schedule.to_config(),
        "train_config": trainer.config.to_dict(),
        "step": trainer.step,
        "history": trainer.history,
        "rng": {
            "data": trainer._gen_data.get_state(),
            "noise": trainer._gen_noise.get_state(),
            "global": trainer._dropout_rng,
        },
        "timestep_draw": trainer.timestep_draw.state_dict(),
    }


def save(trainer, path: str | Path, *, overwrite: bool = False) -> Path:
    return save_checkpoint(path, overwrite=overwrite, model=trainer.model.state_dict(), ema=trainer.ema.state_dict(),
                           optimizer=trainer.optimizer.state_dict(), state=trainer_state(trainer))


def restore(trainer, ck: Checkpoint):
    """Weights, EMA, optimizer, RNG streams, timestep_draw, step and history of ``ck`` into ``trainer``."""
    path, st = ck.path, ck.state
    if st.get("kind") != "trainer" or ck.ema is None or ck.optimizer is None:
        raise CheckpointError(
            f"{path} is not a trainer checkpoint (no EMA or optimizer state); "
            "load its weights with load_state_dict instead"
        )
    mine = getattr(trainer.model, "config", None)
    if mine is not None and st.get("model_config") not in (None, mine):
        raise CheckpointError(
            f"{path} holds a model with config {st['model_config']}, not {mine}; "
            "build the trainer with Trainer.from_checkpoint(path)"
        )
    try:
        trainer.model.load_state_dict(ck.model)
        trainer.ema.load_state_dict(ck.ema)
        trainer.optimizer.load_state_dict(ck.optimizer)
        trainer._gen_data.set_state(st["rng"]["data"])
        trainer._gen_noise.set_state(st["rng"]["noise"].to("cpu"))
        trainer._dropout_rng = dict(st["rng"]["global"])
        trainer.timestep_draw.load_state_dict(st["timestep_draw"])
        trainer.step = int(st["step"])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{path} does not match this trainer ({err}); the checkpoint is corrupt or from another model"
        ) from err
    trainer.history = list(st.get("history", []))
    return trainer


def rebuild(ck: Checkpoint, model_factory: Callable[[dict], nn.Module] | None, overrides: dict):
    """``(model, schedule, config)`` of a checkpoint, the model built by ``model_factory``."""
    if model_factory is None:
        from ..unet import UNet

        model_factory = UNet.from_config
    try:
        model = model_factory(ck.state["model_config"])
        schedule = NoiseSchedule.from_config(ck.state["schedule"])
        config = TrainConfig.from_dict({**ck.state["train_config"], **overrides})
    except (KeyError, TypeError, GeodiffError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{ck.path} lacks a usable model, schedule or training config ({err})") from err
    return model, schedule, config
