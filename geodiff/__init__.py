"""geodiff: diffusion models for realistic synthetic radar and InSAR scenes, xarray-native.

``import geodiff`` registers the ``.diffusion`` accessor (and rioxarray's ``.rio``) on xarray
objects. Heavy layers (torch) load on first use, so the import stays fast.
"""

from __future__ import annotations

import importlib

from geodiff import accessor as _accessor  # noqa: F401  (registers .diffusion)
from geodiff._version import __version__
from geodiff.io import export_dataset, open_scene, open_stack, to_geotiff, to_netcdf, to_zarr
from geodiff.model import DiffusionModel, load_model
from geodiff.training import fit

_SUBPACKAGES = ("io", "tiling", "scaling", "diffusion", "geostats", "insar", "synth", "metrics")

__all__ = [
    "DiffusionModel", "TileDataset", "__version__", "diffusion", "export_dataset", "fit", "geostats", "insar", "io", "load_model",
    "metrics", "open_scene", "open_stack", "scaling", "synth", "tiling", "to_geotiff", "to_netcdf", "to_zarr",
]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"geodiff.{name}")
    if name == "TileDataset":  # imports torch: on first use only
        from geodiff.tile_dataset import TileDataset

        return TileDataset
    raise AttributeError(f"module 'geodiff' has no attribute {name!r}")
