"""Reading radar scenes into georeferenced DataArrays (and, later, writing samples out)."""

from geodiff.io.open import open_scene, open_stack
from geodiff.io.scene import DEFAULT_CHUNK, GeoreferenceWarning, standardize_scene

__all__ = ["DEFAULT_CHUNK", "GeoreferenceWarning", "open_scene", "open_stack", "standardize_scene"]
