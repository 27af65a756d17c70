"""The ``.diffusion`` accessor on DataArrays and Datasets: a thin layer over fit and sample.

Heavy modules (torch) are imported inside the methods, so registering the accessor on
``import geodiff`` costs nothing.
"""

from __future__ import annotations

import xarray as xr

from geodiff.errors import GeodiffError


def _no_model() -> GeodiffError:
    return GeodiffError("no model to sample from: call .diffusion.fit(...) on this object first, "
                        "or pass model= (e.g. geodiff.load_model(path))")


@xr.register_dataarray_accessor("diffusion")
class DiffusionAccessor:
    """``da.diffusion.fit(...)`` trains on the scene's tiles; ``da.diffusion.sample(n)`` generates
    synthetic scenes on its grid. The accessor remembers only the last fitted model."""

    def __init__(self, obj: xr.DataArray):
        self._obj = obj
        self._model = None

    @property
    def model(self):
        """The model fitted through this accessor, or ``None``."""
        return self._model

    def fit(self, tile=64, epochs=50, **options):
        """Train a model on this scene's tiles; see :func:`geodiff.training.fit_scene`."""
        from geodiff.training import fit_scene

        self._model = fit_scene(self._obj, tile, epochs, **options)
        return self._model

    def sample(self, n: int, model=None, **options) -> xr.DataArray:
        """``n`` synthetic scenes on this grid, lazily; see :func:`geodiff.sampling.sample_scene`."""
        from geodiff.sampling import sample_scene

        model = model or self._model
        if model is None:
            raise _no_model()
        return sample_scene(self._obj, model, n, **options)


@xr.register_dataset_accessor("diffusion")
class DatasetDiffusionAccessor:
    """As :class:`DiffusionAccessor`, with the Dataset's variables (e.g. VV, VH) as channels."""

    def __init__(self, obj: xr.Dataset):
        self._obj = obj
        self._model = None

    @property
    def model(self):
        return self._model

    def _scene(self) -> xr.DataArray:
        from geodiff.io import open_scene

        return open_scene(self._obj, chunks=None if not self._obj.chunks else "auto")

    def fit(self, tile=64, epochs=50, **options):
        from geodiff.training import fit_scene

        self._model = fit_scene(self._scene(), tile, epochs, **options)
        return self._model

    def sample(self, n: int, model=None, **options) -> xr.Dataset:
        """Synthetic scenes as a Dataset with the same variables, each ``(sample, y, x)``."""
        from geodiff.sampling import sample_scene

        model = model or self._model
        if model is None:
            raise _no_model()
        stacked = sample_scene(self._scene(), model, n, **options)
        out = stacked.to_dataset(dim="band")
        out.attrs = stacked.attrs
        return out
