"""Training a diffusion model, one responsibility per module: the run's configuration
(:mod:`.config`), its random streams (:mod:`.rng`), what it reads (:mod:`.batches`), the loop
(:mod:`.loop`) and what happens around each step (:mod:`.hooks`)."""

from .config import TrainConfig
from .hooks import Hook, Step
from .loop import Trainer
from .rng import init_seed

__all__ = ["Hook", "Step", "TrainConfig", "Trainer", "init_seed"]
