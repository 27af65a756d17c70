"""Derived products (a variogram comparison, a figure) written through geodiff's safe writer, with
the provenance that lets a later run recognise them as geodiff's own to replace."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from geodiff._version import __version__
from geodiff.files import atomic_path
from geodiff.io.write import flat_attrs


def write_dataset(ds: xr.Dataset, path, *, overwrite: bool = False) -> Path:
    """Write a small Dataset as NetCDF; attributes are flattened to strings and numbers."""
    ds = ds.copy()
    ds.attrs = {**flat_attrs(ds.attrs), "source": f"geodiff {__version__}"}
    for var in ds.variables.values():
        var.attrs = flat_attrs(var.attrs)
    with atomic_path(path, overwrite=overwrite) as tmp:
        ds.to_netcdf(tmp)
    return Path(path)


def save_figure(fig, path, *, overwrite: bool = False, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            # The Software tag is how a later run knows the figure is geodiff's own.
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png",
                        metadata={"Software": f"geodiff {__version__}"})
    finally:
        plt.close(fig)
    return Path(path)
