"""The ``.diffusion`` accessor on DataArrays and Datasets: a thin layer over fit and sample.

Heavy modules (torch) are imported inside the methods, so registering the accessor on
``import geodiff`` costs nothing.
"""

from __future__ import annotations

import xarray as xr

from geodiff.errors import GeodiffError


@xr.register_dataarray_accessor("diffusion")
class DiffusionAccessor:
    """``da.diffusion.fit(...)`` trains on the scene's tiles and returns the model;
    ``da.diffusion.sample(n, model=model)`` generates synthetic scenes on its grid.

    xarray caches an accessor per object, so the last model fitted through it is kept as a
    convenience for the same object only (``da.diffusion.sample(n)`` right after
    ``da.diffusion.fit``); any derived object (``da.isel(...)``, ``da.copy()``, ``da + 0``) has
    a fresh accessor and needs ``model=``.
    """

    def __init__(self, obj):
        self._obj = obj
        self._model = None

    @property
    def model(self):
        """The model fitted through this accessor, or ``None``."""
        return self._model

    def _scene(self) -> xr.DataArray:
        return self._obj

    def fit(self, tile=64, epochs=50, **options):
        """Train a model on this scene's tiles and return it; see :func:`geodiff.training.fit`."""
        from geodiff.training import fit

        self._model = fit(self._scene(), tile, epochs, **options)
        return self._model

    def sample(self, n: int, model=None, **options):
        """``n`` synthetic scenes on this grid, lazily; see :func:`geodiff.sampling.sample_scene`."""
        from geodiff.sampling import sample_scene

        return sample_scene(self._scene(), n, self._need(model), **options)

    def _need(self, model):
        model = model or self._model
        if model is None:
            raise GeodiffError("no model to sample from: pass the model fit returned, "
                               "da.diffusion.sample(n, model=model) (or geodiff.load_model(path)); an "
                               "object derived from the fitted one (isel, copy, arithmetic) does not carry it")
        return model

    def inpaint(self, model=None, n: int = 1, **options):
        """This scene's NaN gaps filled, ``n`` times, lazily; see :func:`geodiff.restoration.inpaint`."""
        from geodiff.restoration import inpaint

        return inpaint(self._scene(), self._need(model), n, **options)


@xr.register_dataset_accessor("diffusion")
class DatasetDiffusionAccessor(DiffusionAccessor):
    """As :class:`DiffusionAccessor`, with the Dataset's variables (e.g. VV, VH) as channels;
    ``sample`` returns a Dataset with the same variables, each ``(sample, y, x)``."""

    def _scene(self) -> xr.DataArray:
        from geodiff.io import open_scene

        return open_scene(self._obj, chunks="auto" if self._obj.chunks else None)

    def sample(self, n: int, model=None, **options) -> xr.Dataset:
        from geodiff.units import per_band

        stacked = super().sample(n, model, **options)
        out = stacked.to_dataset(dim="band")
        out.attrs = {k: v for k, v in stacked.attrs.items() if k != "units"}
        for name, band_units in zip(out.data_vars, per_band(stacked.attrs.get("units"), len(out.data_vars))):
            out[name].attrs = {"units": band_units} if band_units else {}
        return out
