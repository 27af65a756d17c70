"""Reading radar scenes into georeferenced DataArrays and writing synthetic stacks out."""

from geodiff.files import atomic_path
from geodiff.io.geotiff import to_geotiff
from geodiff.io.labelled import export_dataset
from geodiff.io.netcdf import to_netcdf
from geodiff.io.open import open_scene, open_stack
from geodiff.io.scene import (
    DEFAULT_CHUNK,
    GeoreferenceWarning,
    InfiniteValueWarning,
    standardize_scene,
)
from geodiff.io.zarr_store import to_zarr, zarr_template

__all__ = [
    "DEFAULT_CHUNK", "GeoreferenceWarning", "InfiniteValueWarning", "atomic_path", "export_dataset", "open_scene", "open_stack",
    "standardize_scene", "to_geotiff", "to_netcdf", "to_zarr", "zarr_template",
]
