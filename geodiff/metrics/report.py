"""An evaluation as a folder a person reads in a browser: JSON, HTML and figures."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import xarray as xr

from geodiff._version import __version__
from geodiff.metrics.checks import tile_sets
from geodiff.metrics.evaluate import Evaluation, fraction_within
from geodiff.units import label

# What a report folder may hold is listed in geodiff.files, which recognises it as geodiff's own.
REPORT_FORMAT = 1


def write_report(evaluation: Evaluation, real, synthetic, out, *, extractor=None, save_extractor: bool = False,
                 title: str = "geodiff evaluation", seed: int = 0, overwrite: bool = False) -> Path:
    """Write ``report.json``, ``report.html`` and the figures of an evaluation into the folder ``out``.

    Figures: real and synthetic tiles side by side, mean semivariograms with the real 95 % band,
    radially averaged power spectra, pixel-value histograms and, with an ``extractor``, a t-SNE
    map of both sets' features. ``save_extractor`` also saves the extractor into
    ``out/extractor`` so that later evaluations can score on the same features. An existing
    folder is replaced only if it is a geodiff report (or with ``overwrite``).
    """
    import matplotlib

    matplotlib.use("Agg")
    from geodiff.files import atomic_directory

    sets = tile_sets(real, synthetic, min_tiles=4)
    r, s = sets.real[:, 0], sets.synthetic[:, 0]  # figures show the first band
    units = label(sets.units if isinstance(sets.units, str) or sets.units is None else sets.units[0])
    with atomic_directory(out, overwrite=overwrite) as tmp:
        figures = {
            "tiles.png": tiles_figure(r, s, units=units, seed=seed),
            "variogram.png": _variogram_figure(r, s, units),
            "psd.png": _psd_figure(r, s, units),
            "histogram.png": _histogram_figure(r, s, units),
        }
        if extractor is not None:
            from geodiff.metrics.tsne import tsne_plot

            figures["tsne.png"] = tsne_plot(extractor.features(real), extractor.features(synthetic), seed=seed)[0]
            if save_extractor:
                extractor.save(tmp / "extractor")
        for name, fig in figures.items():
            _save(fig, tmp / name)
        doc = {"format": "geodiff-report", "format_version": REPORT_FORMAT, "geodiff_version": __version__,
               "title": title, "fraction_within_floor": fraction_within(evaluation), **evaluation.to_dict(),
               "figures": list(figures)}
        (tmp / "report.json").write_text(json.dumps(doc, indent=1, default=_plain) + "\n", encoding="utf-8")
        (tmp / "report.html").write_text(_html(doc), encoding="utf-8")
    return Path(out)


def _plain(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": f"geodiff {__version__}"})
    plt.close(fig)


def tiles_figure(real: np.ndarray, synthetic: np.ndarray, *, units: str = "", seed: int = 0, n: int = 8,
                 cmap: str = "viridis", title: str | None = None):
    """Real tiles (top row, drawn at random) above synthetic ones (bottom), ``(n, H, W)`` arrays on
    one colour scale (2nd to 98th percentile of both)."""
    import matplotlib.pyplot as plt

    n = min(n, len(real), len(synthetic))
    picked = np.random.default_rng(seed).choice(len(real), n, replace=False)
    rows = (("real", real[picked]), ("synthetic", synthetic[:n]))
    lo, hi = np.nanpercentile(np.concatenate([rows[0][1].ravel(), rows[1][1].ravel()]), [2, 98])
    fig, axes = plt.subplots(2, n, figsize=(2.0 * n, 4.4), squeeze=False)
    for i, (name, tiles) in enumerate(rows):
        for k in range(n):
            im = axes[i, k].imshow(tiles[k], vmin=lo, vmax=hi, cmap=cmap)
            axes[i, k].set_xticks([])
            axes[i, k].set_yticks([])
        axes[i, 0].set_ylabel(name)
    fig.colorbar(im, ax=axes, shrink=0.8, label=units)
    if title:
        fig.suptitle(title)
    return fig


def scenes_figure(real: np.ndarray, synthetic: np.ndarray, *, units: str = "", cmap: str = "viridis",
                  titles: list[str] | None = None, title: str | None = None):
    """A real scene beside synthetic ones, ``(H, W)`` and ``(n, H, W)`` arrays on one colour
    scale (2nd to 98th percentile of all); ``titles`` one per panel."""
    import matplotlib.pyplot as plt

    panels = [real, *synthetic]
    lo, hi = np.nanpercentile(np.concatenate([p.ravel() for p in panels]), [2, 98])
    h, w = real.shape
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) * w / max(h, w) + 1.0, 3.6), squeeze=False)
    for k, (ax, panel) in enumerate(zip(axes[0], panels)):
        im = ax.imshow(panel, vmin=lo, vmax=hi, cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(titles[k] if titles else ("real" if k == 0 else f"synthetic {k - 1}"), fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label=units)
    if title:
        fig.suptitle(title)
    return fig


def _variogram_figure(real: np.ndarray, synthetic: np.ndarray, units: str):
    import warnings

    from geodiff import geostats

    def stack(tiles):
        return xr.DataArray(tiles, dims=("sample", "y", "x"), attrs={"units": units})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", geostats.SpacingWarning)  # tiles carry pixel lags
        comparison = geostats.compare(stack(real), stack(synthetic), bins=16)
    fig, ax = geostats.plot(comparison)
    ax.set_xlabel("lag [pixel]")
    return fig


def _psd_figure(real: np.ndarray, synthetic: np.ndarray, units: str):
    import matplotlib.pyplot as plt

    from geodiff.metrics.structure import radial_psd

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, tiles, color in (("real", real, "k"), ("synthetic", synthetic, "C1")):
        frequency, psd = radial_psd(tiles[:, None])
        ax.loglog(frequency[1:], psd[0, 1:], color=color, label=name)
    ax.set_xlabel("radial frequency [cycles / pixel]")
    ax.set_ylabel(f"power [({units})^2]")
    ax.legend()
    return fig


def _histogram_figure(real: np.ndarray, synthetic: np.ndarray, units: str):
    import matplotlib.pyplot as plt

    both = np.concatenate([real[np.isfinite(real)], synthetic[np.isfinite(synthetic)]])
    bins = np.linspace(*np.percentile(both, [0.5, 99.5]), 60)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, tiles, color in (("real", real, "k"), ("synthetic", synthetic, "C1")):
        ax.hist(tiles[np.isfinite(tiles)], bins=bins, density=True, histtype="step", color=color, label=name)
    ax.set_xlabel(units)
    ax.set_ylabel("density")
    ax.legend()
    return fig


def _html(doc: dict) -> str:
    rows = []
    for r in doc["rows"]:
        within = {True: "yes", False: "no", None: ""}[r["within_floor"]]
        rows.append(f"<tr class='{within}'><td>{html.escape(r['name'])}</td><td>{html.escape(r['band'] or '')}</td>"
                    f"<td>{r['value']:.4g}</td><td>{r['floor_mean']:.4g}</td>"
                    f"<td>{r['floor_min']:.4g} .. {r['floor_max']:.4g}</td><td>{within}</td></tr>")
    figures = "\n".join(f"<figure><img src='{name}' alt='{name}'></figure>" for name in doc["figures"])
    units = html.escape(str(doc["units"]))
    floor = (f"its value between the real tiles and {doc['floor_size']} tiles drawn from the reference tiles"
             if doc.get("floor_reference") else f"its value between two disjoint sets of {doc['floor_size']} real tiles")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(doc['title'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}
td:first-child{{text-align:left}}tr.no td{{color:#b00}}tr.yes td{{color:#060}}img{{max-width:100%}}
figure{{display:inline-block;margin:1em}}</style></head>
<body><h1>{html.escape(doc['title'])}</h1>
<p>{doc['n_real']} real and {doc['n_synthetic']} synthetic tiles, units {units}. Each figure stands beside its
real-vs-real floor: {floor} (mean, and min .. max over the draws). <b>{doc['fraction_within_floor']:.0%}</b> of the scored figures lie within their floor.
Feature extractor: {html.escape(str(doc['extractor_id'] or 'none'))}. geodiff {html.escape(doc['geodiff_version'])}.</p>
<table><tr><th>metric</th><th>band</th><th>synthetic</th><th>floor</th><th>floor range</th><th>within</th></tr>
{''.join(rows)}
</table>
{figures}
</body></html>
"""
