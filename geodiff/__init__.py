"""geodiff: diffusion models for realistic synthetic radar and InSAR scenes, xarray-native.

Heavy layers (torch) load on first use so that ``import geodiff`` stays fast.
"""

from __future__ import annotations

import importlib

from geodiff._version import __version__
from geodiff.io import open_scene, open_stack, to_geotiff, to_netcdf, to_zarr

_SUBPACKAGES = ("io", "tiling", "scaling", "diffusion", "geostats", "insar", "synth")

__all__ = ["__version__", "open_scene", "open_stack", "to_geotiff", "to_netcdf", "to_zarr", *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"geodiff.{name}")
    raise AttributeError(f"module 'geodiff' has no attribute {name!r}")
