"""How training draws its timesteps: uniformly, or by improved DDPM's loss-second-moment
importance sampling (Nichol & Dhariwal (2021), sec. 3.3, eq. 18, its "schedule sampler"; a
"draw" here, since geodiff's samplers are the reverse-process solvers).

``sample(batch)`` returns timesteps t and importance weights w = 1 / (T p(t)), so that
E_{t~p}[w L(t)] = (1/T) sum_t L(t), the uniform average, for any loss table L.
"""

from __future__ import annotations

import torch

__all__ = ["TIMESTEP_DRAWS", "LossSecondMomentDraw", "UniformDraw", "create_timestep_draw"]


class TimestepDraw:
    """Draws timesteps from ``weights()`` (unnormalised probabilities over 0..T-1; uniform here)."""

    def __init__(self, num_timesteps: int):
        if int(num_timesteps) < 1:
            raise ValueError(f"num_timesteps must be >= 1, got {num_timesteps}")
        self.num_timesteps = int(num_timesteps)

    def weights(self) -> torch.Tensor:
        return torch.ones(self.num_timesteps, dtype=torch.float64)

    def sample(self, batch_size: int, *, device=None, generator: torch.Generator | None = None):
        """(t LongTensor (B,), weights float32 Tensor (B,)) on ``device``; the draw uses
        ``generator`` on its own device (reproducible there)."""
        p = self.weights().to(torch.float64)
        p = p / p.sum()
        where = generator.device if generator is not None else torch.device("cpu")
        t = torch.multinomial(p.to(where), batch_size, replacement=True, generator=generator)
        w = 1.0 / (self.num_timesteps * p.to(where)[t])
        device = where if device is None else device
        return t.to(device), w.to(device=device, dtype=torch.float32)

    def update(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Record per-example losses at timesteps t (no-op for a fixed draw)."""

    def state_dict(self) -> dict:
        return {"num_timesteps": self.num_timesteps}

    def load_state_dict(self, state: dict) -> None:
        if int(state["num_timesteps"]) != self.num_timesteps:
            raise ValueError(f"timestep-draw state is for {int(state['num_timesteps'])} timesteps, this draw has {self.num_timesteps}")


class UniformDraw(TimestepDraw):
    """t uniform on 0..T-1, weights 1."""


class LossSecondMomentDraw(TimestepDraw):
    """p(t) ∝ sqrt(E[L_t^2]) over the last ``history`` losses seen at each t, mixed with
    ``uniform_prob`` of uniform mass; uniform until every t has a full history."""

    def __init__(self, num_timesteps: int, history: int = 10, uniform_prob: float = 0.001):
        super().__init__(num_timesteps)
        if history < 1 or not 0 <= uniform_prob <= 1:
            raise ValueError("history must be >= 1 and uniform_prob in [0, 1]")
        self.history = int(history)
        self.uniform_prob = float(uniform_prob)
        self.loss_history = torch.zeros(self.num_timesteps, self.history, dtype=torch.float64)
        self.loss_counts = torch.zeros(self.num_timesteps, dtype=torch.int64)

    def warmed_up(self) -> bool:
        return bool((self.loss_counts == self.history).all())

    def weights(self) -> torch.Tensor:
        if not self.warmed_up():
            return super().weights()
        w = torch.sqrt((self.loss_history**2).mean(dim=-1))
        w = w / w.sum()
        return w * (1 - self.uniform_prob) + self.uniform_prob / self.num_timesteps

    def update(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Append each (t, loss) in order to that timestep's history (oldest dropped when full).
        Pass losses gathered from all ranks when training data-parallel."""
        for ti, loss in zip(t.detach().cpu().tolist(), losses.detach().to(torch.float64).cpu().tolist()):
            n = int(self.loss_counts[ti])
            if n == self.history:
                self.loss_history[ti, :-1] = self.loss_history[ti, 1:].clone()
                self.loss_history[ti, -1] = loss
            else:
                self.loss_history[ti, n] = loss
                self.loss_counts[ti] = n + 1

    def state_dict(self) -> dict:
        return {
            "num_timesteps": self.num_timesteps,
            "history": self.history,
            "uniform_prob": self.uniform_prob,
            "loss_history": self.loss_history.clone(),
            "loss_counts": self.loss_counts.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if int(state["history"]) != self.history:
            raise ValueError(f"timestep-draw state has history {int(state['history'])}, this draw {self.history}")
        self.uniform_prob = float(state["uniform_prob"])
        self.loss_history = torch.as_tensor(state["loss_history"], dtype=torch.float64).clone()
        self.loss_counts = torch.as_tensor(state["loss_counts"], dtype=torch.int64).clone()


TIMESTEP_DRAWS = {"uniform": UniformDraw, "loss-second-moment": LossSecondMomentDraw}


def create_timestep_draw(name: str, num_timesteps: int, **kwargs) -> TimestepDraw:
    """A timestep draw by name: "uniform" or "loss-second-moment"."""
    try:
        cls = TIMESTEP_DRAWS[name]
    except KeyError:
        raise ValueError(f"unknown timestep draw {name!r}; choose one of {sorted(TIMESTEP_DRAWS)}") from None
    return cls(num_timesteps, **kwargs)
