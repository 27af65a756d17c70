"""A tile's scale as a condition of the network, so that its texture matches its amplitude.

Per-tile scaling gives every training tile the same range, and takes away what its range said
about it: in normalised space the speckle of a flat tile and the smooth slope of a deformation
bowl look alike. A network that does not know the scale learns a mixture of both; put back with
a scale the sample did not come with (coefficients drawn apart from the tile, or interpolated
over a scene), noise gets a bowl's amplitude and a bowl the amplitude of noise, so scenes come
out too rough at short lags and too flat at long ones (docs/benchmarks.md, scene). A
scale-conditioned network sees the standardised log scale of its pixels as a conditioning image
and learns the texture given the scale; sampling hands it the scale the sample will be put back
with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ScaleCondition"]

#: Scales below this fraction of the training tiles' median (constant tiles have 0) are taken
#: as it: the log stays finite.
FLOOR = 1e-3


@dataclass(frozen=True)
class ScaleCondition:
    """How scales become the network's conditioning image: ``(log max(scale, floor) - mean) / std``
    per band, ``mean`` and ``std`` of the training tiles' log scales (in the scaler's space: dB
    for backscatter in dB)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    floor: tuple[float, ...]

    @classmethod
    def fit(cls, scale: np.ndarray) -> ScaleCondition:
        """From the training tiles' scales, ``(tiles, bands)``."""
        scale = np.asarray(scale, np.float64)
        positive = np.where(scale > 0, scale, np.nan)
        floor = FLOOR * np.nanmedian(positive, axis=0)
        floor = np.where(np.isfinite(floor) & (floor > 0), floor, 1.0)
        logs = np.log(np.maximum(scale, floor))
        std = logs.std(axis=0)
        return cls(tuple(logs.mean(axis=0).tolist()), tuple(np.where(std > 0, std, 1.0).tolist()),
                   tuple(floor.tolist()))

    def image(self, scale: np.ndarray) -> np.ndarray:
        """The conditioning image of scales ``(n, bands, ...)`` (a scale per tile, or per pixel
        ``(n, bands, H, W)``), float32 of the same shape; per-tile scales give ``(n, bands, 1, 1)``."""
        scale = np.asarray(scale, np.float64)
        if scale.ndim == 2:
            scale = scale[..., None, None]
        shape = (1, len(self.mean), 1, 1)
        mean, std, floor = (np.reshape(v, shape) for v in (self.mean, self.std, self.floor))
        return ((np.log(np.maximum(scale, floor)) - mean) / std).astype(np.float32)

    def to_config(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "floor": list(self.floor)}

    @classmethod
    def from_config(cls, config: dict) -> ScaleCondition:
        return cls(tuple(config["mean"]), tuple(config["std"]), tuple(config["floor"]))
