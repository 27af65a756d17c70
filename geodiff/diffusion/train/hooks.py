"""What happens around the optimizer steps of a run: history records, the time budget, the
progress bar, previews and checkpoints, each a hook the loop calls after every step.

A hook has ``start(trainer, total)``, ``after_step(trainer, event)`` and ``end(trainer)``; it
reads and may set fields of the :class:`Step` event (``stop`` ends the run after this step).
Hooks run in the order given, so a later one sees what an earlier one decided.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .rng import global_state

_BAR_EVERY = 10  # steps between progress-bar refreshes of loss and images/s
# Wall clock of the time budget; a name of its own so tests can drive it.
_clock = time.monotonic


@dataclass
class Step:
    """One optimizer step as hooks see it."""

    step: int
    total: int
    record: dict[str, torch.Tensor]
    entry: dict[str, Any] | None = None  # the history record written at this step, if any
    out_of_time: bool = False
    stop: bool = False

    @property
    def last(self) -> bool:
        return self.stop or self.step == self.total


class Hook:
    """A no-op hook to build on."""

    def start(self, trainer, total: int) -> None:
        pass

    def after_step(self, trainer, event: Step) -> None:
        pass

    def end(self, trainer) -> None:
        pass


class TimeBudget(Hook):
    """Stops the run after the first step that ends past ``seconds`` of wall time."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds

    def start(self, trainer, total: int) -> None:
        self.started, self.first_step, self.spent = _clock(), trainer.step, 0.0

    def after_step(self, trainer, event: Step) -> None:
        self.spent = _clock() - self.started
        if self.seconds is not None and self.spent > self.seconds:
            event.out_of_time = event.stop = True

    def reachable(self, trainer, total: int) -> int:
        """The step cap, or the step the budget ends on at the rate so far: the bar's total, so
        that its ETA never exceeds the budget left."""
        if self.seconds is None:
            return total
        left = max(self.seconds - self.spent, 0.0)
        done = trainer.step - self.first_step
        return min(total, trainer.step + math.ceil(done / max(self.spent, 1e-9) * left))


class History(Hook):
    """Every ``log_every`` steps (and at the last one) a record of the losses averaged since the
    last record, the learning rate, images/s and the validation loss; ``callback(record)``
    returning True stops the run."""

    def __init__(self, val=None, callback: Callable[[dict], Any] | None = None):
        self.val, self.callback = val, callback

    def start(self, trainer, total: int) -> None:
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.window, self.window_start = 0, time.perf_counter()

    def after_step(self, trainer, event: Step) -> None:
        for k, v in event.record.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.window += 1
        if not (trainer.step % trainer.config.log_every == 0 or trainer.step == event.total or event.out_of_time):
            return
        entry = {"step": trainer.step, **{k: float(v) / self.window for k, v in self.sums.items()},
                 "lr": trainer.optimizer.param_groups[0]["lr"], "images_per_s": self.images_per_s(trainer)}
        if self.val is not None:
            entry.update(trainer.validation_loss(*self.val))
        trainer.history.append(entry)
        event.entry = entry
        if self.callback is not None and self.callback(entry):
            event.stop = True
        self._reset()

    def images_per_s(self, trainer) -> float:
        cfg = trainer.config
        return self.window * cfg.batch_size * cfg.grad_accum / max(time.perf_counter() - self.window_start, 1e-9)


class ProgressBar(Hook):
    """A tqdm bar with the loss and images/s; under a time budget it aims at the reachable step."""

    def __init__(self, history: History, budget: TimeBudget):
        self.history, self.budget, self.bar = history, budget, None

    def start(self, trainer, total: int) -> None:
        if trainer.step >= total:
            return
        from tqdm.auto import tqdm

        # Under a time budget the reachable step is unknown until the first step is timed.
        self.bar = tqdm(total=None if self.budget.seconds else total, initial=trainer.step, desc="training",
                        unit="step", dynamic_ncols=True)

    def after_step(self, trainer, event: Step) -> None:
        if self.bar is None:
            return
        if event.entry is not None:
            self.bar.set_postfix(loss=f"{event.entry['loss']:.4g}", img_s=f"{event.entry['images_per_s']:.1f}")
        elif self.history.window % _BAR_EVERY == 0:
            # Between history records the bar shows the running window average.
            self.bar.set_postfix(loss=f"{float(self.history.sums['loss']) / self.history.window:.4g}",
                                 img_s=f"{self.history.images_per_s(trainer):.1f}")
        if event.stop:
            self.bar.total = trainer.step
        elif self.budget.seconds is not None:
            self.bar.total = self.budget.reachable(trainer, event.total)
        self.bar.update(1)

    def end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class Agreement(Hook):
    """In a data-parallel run, stops every rank when any rank's hooks before it decided to stop
    (a time budget runs on each rank's clock), so that the ranks never wait on each other."""

    def __init__(self, group):
        self.group = group

    def after_step(self, trainer, event: Step) -> None:
        event.stop = self.group.any(event.stop)
        event.out_of_time = self.group.any(event.out_of_time)


class Previews(Hook):
    """Calls ``callback(step, ema_model)`` every ``every`` steps and at the last one."""

    def __init__(self, callback: Callable, every: int = 0):
        self.callback, self.every = callback, every

    def after_step(self, trainer, event: Step) -> None:
        if event.last or (self.every and trainer.step % self.every == 0):
            self.callback(trainer.step, trainer.ema_model())


class Checkpoints(Hook):
    """Saves the trainer to ``folder`` every ``every`` steps and at the last one."""

    def __init__(self, folder, every: int = 0):
        self.folder, self.every = folder, every

    def after_step(self, trainer, event: Step) -> None:
        if event.last or (self.every and trainer.step % self.every == 0):
            trainer._dropout_rng = global_state(trainer.device)
            trainer.save(self.folder)
