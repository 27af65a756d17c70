"""Variogram models: small immutable parameter holders, callable on lags, summable.

Every model ``m`` gives the semivariance ``m(h)`` and, where it has a finite sill, the covariance
``m.covariance(h) = m.sill - m(h)`` (at ``h = 0`` the nugget is part of the variance). Lags and
length scales share one unit (the lag unit of the variogram they describe); sills are in the
data's unit squared. Length scales are the mathematical ones, not "effective" ranges:
``effective_range`` gives the lag at which 95 % of the sill is reached.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, fields, replace

import numpy as np
import scipy.optimize
import scipy.special

from geodiff.errors import GeodiffError

__all__ = [
    "MODELS",
    "Exponential",
    "Gaussian",
    "Matern",
    "Model",
    "Nugget",
    "Power",
    "Spherical",
    "Stable",
    "Sum",
]


class Model(abc.ABC):
    """Base of the variogram models: ``gamma = model(h)``, ``C = model.covariance(h)``."""

    bounded = True

    @abc.abstractmethod
    def _gamma(self, h: np.ndarray) -> np.ndarray:
        """Semivariance at non-negative lags ``h``."""

    def __call__(self, h) -> np.ndarray:
        """Semivariance at lag distances ``h`` (any shape, lag unit)."""
        h = np.abs(np.asarray(h, dtype=np.float64))
        return self._gamma(h)

    @property
    def sill(self) -> float:
        """Total sill (variance), nugget included; ``inf`` for unbounded models."""
        return np.inf

    def covariance(self, h) -> np.ndarray:
        """Covariance ``C(h) = sill - gamma(h)``, for models with a finite sill."""
        if not self.bounded:
            raise GeodiffError(
                f"{type(self).__name__} has no finite sill and so no covariance; "
                "use geodiff.geostats.fields.power_law_field for fractal fields"
            )
        return self.sill - self(h)

    @property
    def params(self) -> dict[str, float]:
        """Parameters by name (``"0.sill"`` style names for sums)."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    def with_params(self, values: dict[str, float]) -> Model:
        """Copy with some parameters replaced."""
        return replace(self, **values)

    @property
    def effective_range(self) -> float:
        """Lag at which the semivariance reaches 95 % of the sill (lag unit)."""
        if not self.bounded:
            return np.inf
        target = 0.95 * self.sill
        hi = 1.0
        for _ in range(200):
            if self(hi) >= target:
                break
            hi *= 2.0
        else:
            return np.inf
        return float(
            scipy.optimize.brentq(lambda h: float(self(h)) - target, 0.0, hi, xtol=1e-12 * hi)
        )

    def __add__(self, other: Model) -> Sum:
        if not isinstance(other, Model):
            return NotImplemented
        left = self.parts if isinstance(self, Sum) else (self,)
        right = other.parts if isinstance(other, Sum) else (other,)
        return Sum(left + right)


@dataclass(frozen=True)
class _SillScale(Model):
    """Bounded model with a sill and a length scale ``a``, checked once when built."""

    sill: float = 1.0
    scale: float = 1.0

    def __post_init__(self):
        if not self.scale > 0:
            raise GeodiffError(f"length scale must be positive, got {self.scale}")


@dataclass(frozen=True)
class Spherical(_SillScale):
    """``gamma = sill (3/2 h/a - 1/2 (h/a)^3)`` for ``h < a``, ``sill`` beyond (Matheron 1963)."""

    def _gamma(self, h):
        r = np.minimum(h / self.scale, 1.0)
        return self.sill * (1.5 * r - 0.5 * r**3)


@dataclass(frozen=True)
class Exponential(_SillScale):
    """``gamma = sill (1 - exp(-h / a))``; effective range ``3 a`` (~95 %)."""

    def _gamma(self, h):
        return self.sill * -np.expm1(-h / self.scale)


@dataclass(frozen=True)
class Gaussian(_SillScale):
    """``gamma = sill (1 - exp(-(h / a)^2))``; effective range ``sqrt(3) a``."""

    def _gamma(self, h):
        return self.sill * -np.expm1(-((h / self.scale) ** 2))


@dataclass(frozen=True)
class Stable(_SillScale):
    """Powered exponential ``gamma = sill (1 - exp(-(h / a)^alpha))``, ``0 < alpha <= 2``."""

    alpha: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.alpha <= 2:
            raise GeodiffError(f"stable alpha must be in (0, 2], got {self.alpha}")

    def _gamma(self, h):
        return self.sill * -np.expm1(-((h / self.scale) ** self.alpha))


@dataclass(frozen=True)
class Matern(_SillScale):
    """Matérn: ``C = sill 2^(1-nu) / Gamma(nu) (sqrt(2 nu) h / a)^nu K_nu(sqrt(2 nu) h / a)``.

    Handcock & Stein (1993), Technometrics 35(4), 403-410 (the parametrisation of Rasmussen &
    Williams 2006, eq. 4.14); ``nu = 1/2`` is the exponential model, ``nu -> inf`` tends to the
    gaussian ``exp(-h^2 / (2 a^2))``.
    """

    nu: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if not self.nu > 0:
            raise GeodiffError(f"matern nu must be positive, got {self.nu}")

    def _gamma(self, h):
        x = np.sqrt(2.0 * self.nu) * h / self.scale
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            c = (
                np.exp((1.0 - self.nu) * np.log(2.0) - scipy.special.gammaln(self.nu))
                * x**self.nu
                * scipy.special.kv(self.nu, x)
            )
        c = np.where(x > 0, np.nan_to_num(c, nan=0.0), 1.0)  # K_nu underflows to 0 far out
        return self.sill * (1.0 - c)


@dataclass(frozen=True)
class Power(Model):
    """Intrinsic power model ``gamma = scale h^exponent``, ``0 < exponent < 2``, no sill.

    Fractal (e.g. turbulent-atmosphere) structure; covariance does not exist.
    """

    scale: float = 1.0
    exponent: float = 1.0
    bounded = False

    def __post_init__(self):
        if not 0 < self.exponent < 2:
            raise GeodiffError(f"power exponent must be in (0, 2), got {self.exponent}")

    def _gamma(self, h):
        return self.scale * h**self.exponent


@dataclass(frozen=True)
class Nugget(Model):
    """Pure nugget ``gamma = sill`` for ``h > 0``, 0 at ``h = 0`` (uncorrelated noise)."""

    sill: float = 1.0

    def _gamma(self, h):
        return np.where(h > 0, self.sill, 0.0)


@dataclass(frozen=True)
class Sum(Model):
    """Nested model: semivariances (and covariances) add. Build with ``a + b``."""

    parts: tuple[Model, ...] = ()

    def __post_init__(self):
        if not self.parts or not all(isinstance(p, Model) for p in self.parts):
            raise GeodiffError("Sum needs one or more models")

    @property
    def bounded(self) -> bool:  # type: ignore[override]
        return all(p.bounded for p in self.parts)

    @property
    def sill(self) -> float:
        return float(sum(p.sill for p in self.parts))

    def _gamma(self, h):
        return sum(p._gamma(h) for p in self.parts)

    @property
    def params(self) -> dict[str, float]:
        return {f"{i}.{k}": v for i, p in enumerate(self.parts) for k, v in p.params.items()}

    def with_params(self, values: dict[str, float]) -> Sum:
        per = [{} for _ in self.parts]
        for key, v in values.items():
            i, name = key.split(".", 1)
            per[int(i)][name] = v
        return Sum(tuple(p.with_params(d) for p, d in zip(self.parts, per)))


MODELS: dict[str, type[Model]] = {
    "spherical": Spherical,
    "exponential": Exponential,
    "gaussian": Gaussian,
    "matern": Matern,
    "stable": Stable,
    "power": Power,
    "nugget": Nugget,
}
