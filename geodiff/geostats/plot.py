"""Semivariogram figures with shaded ensemble bands (matplotlib, imported on use)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from geodiff import units
from geodiff.errors import GeodiffError

__all__ = ["plot"]


def _units(ds: xr.Dataset, var: str) -> str:
    u = ds[var].attrs.get("units")
    return f" [{units.label(u)}]" if u else ""


def plot(obj: xr.Dataset, ax=None, *, label: str | None = None, color: str | None = None):
    """Plot a variogram, an ensemble or a real-vs-synthetic comparison.

    Parameters
    ----------
    obj : xarray.Dataset
        - :func:`compare` output: both mean curves with their percentile bands shaded, the
          scores in the title;
        - :func:`ensemble` output: mean with the percentile band and the bootstrap interval;
        - :func:`semivariogram` output: one curve per leading index (thin lines if several).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure otherwise.
    label, color : str, optional
        Legend label and colour of a single curve or ensemble.

    Returns
    -------
    (matplotlib.figure.Figure, matplotlib.axes.Axes)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    else:
        fig = ax.figure
    lag = obj["lag"].values
    if "real_mean" in obj:
        for prefix, c, name in (("real", color or "C0", "real"), ("synthetic", "C1", "synthetic")):
            n = obj.attrs.get(f"n_{prefix}", "")
            ax.fill_between(
                lag,
                obj[f"{prefix}_lower"].values,
                obj[f"{prefix}_upper"].values,
                color=c,
                alpha=0.25,
                lw=0,
            )
            ax.plot(
                lag,
                obj[f"{prefix}_mean"].values,
                color=c,
                marker="o",
                ms=3,
                label=f"{name} (n={n})",
            )
        ax.set_title(
            f"in {obj.attrs.get('level', 0.95):.0%} band: {float(obj.fraction_in_band):.0%} of lags, "
            f"RMS log-ratio {float(obj.rms_log_ratio):.3f}",
            fontsize=9,
        )
        gvar = "real_mean"
    elif "mean" in obj and "lower" in obj:
        c = color or "C0"
        ax.fill_between(
            lag,
            obj["lower"].values,
            obj["upper"].values,
            color=c,
            alpha=0.2,
            lw=0,
            label=f"{obj.attrs.get('level', 0.95):.0%} band",
        )
        ax.fill_between(
            lag,
            obj["ci_lower"].values,
            obj["ci_upper"].values,
            color=c,
            alpha=0.45,
            lw=0,
            label="bootstrap CI of mean",
        )
        ax.plot(lag, obj["mean"].values, color=c, marker="o", ms=3, label=label or "mean")
        gvar = "mean"
    elif "gamma" in obj:
        g = obj["gamma"]
        lead = [d for d in g.dims if d != "lag"]
        curves = g.transpose(..., "lag").values.reshape(-1, len(lag)) if lead else g.values[None]
        many = len(curves) > 1
        for k, y in enumerate(curves):
            ax.plot(
                lag,
                y,
                color=color or ("0.4" if many else "C0"),
                lw=0.6 if many else 1.5,
                marker=None if many else "o",
                ms=3,
                label=label if k == 0 else None,
            )
        gvar = "gamma"
    else:
        raise GeodiffError("plot expects the output of semivariogram, ensemble or compare")
    unit = obj["lag"].attrs.get("units") or obj.attrs.get("lag_units", "")
    ax.set_xlabel(f"lag{f' [{unit}]' if unit else ''}")
    ax.set_ylabel(f"semivariance{_units(obj, gvar)}")
    ax.set_xlim(
        0, float(np.nanmax(obj["lag_bounds"].values)) if "lag_bounds" in obj.coords else None
    )
    ax.set_ylim(bottom=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig, ax
