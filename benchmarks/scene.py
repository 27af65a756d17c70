"""Coherent scenes: fused windows against independent tiles, and a Sentinel-1 GRD grid streamed to Zarr.

Part 1, per product (the demo scene; Campi Flegrei velocities, mm/yr; an OPERA RTC-S1 VV burst,
dB): a model trained with fit's defaults on the product's tiles (as benchmarks/fidelity.py
trains them), then two synthetic scenes on the real scene's grid with each method,
``method="tiles"`` (every tile sampled and rescaled on its own, geodiff before fused windows),
``method="fused"`` and fused with blocks of two tiles ("fused-b2": block boundaries every 64
pixels, where the seam statistic sees them), all with location coefficients and the default
sampler; and "tiles-drawn", independent tiles each rescaled with its own drawn coefficients
(geodiff's first version, the patchwork issue 11 was measured on). Printed per
method: the seam statistic (:func:`geodiff.metrics.seam_statistic`) beside the real scene's, the
step where dask chunks (blocks, or tiles) meet (mean neighbour difference across their
boundaries over the median one), the
scene-scale semivariogram RMS log-ratio against the real scene (lags out to four tiles), seconds
per megapixel, and network evaluations per pixel (window pixels evaluated / scene pixels), with
the ratios fused / tiles.

Part 2: a synthetic scene on a grid of Sentinel-1 IW GRD size (25,788 x 16,685 by default; a
fraction of it with ``--grd-fraction``) from a tiny untrained network, one sampler step, streamed
to a Zarr store, in a child process per grid so each peak RSS is its own: peak RSS, megapixels
per second, for fused blocks and for independent tiles on the same grid, and peak RSS on grids of
growing size (it should stay flat). Run::

    python benchmarks/scene.py [--budget 120] [--products demo campi opera] [--grd-fraction 0.05]
                               [--cache DIR] [--threads 2] [--recipe defaults+scale]
                               [--methods tiles fused fused-b2 tiles-drawn]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import geodiff
from geodiff import geostats
from geodiff.metrics import seam_statistic

GRD = (25_788, 16_685)
SAMPLES = 2
METHODS = ("tiles", "fused", "fused-b2", "tiles-drawn")


class Counting(torch.nn.Module):
    """The network, counting the tiles (windows) it evaluates."""

    def __init__(self, net):
        super().__init__()
        self.net, self.tiles = net, 0
        self.config, self.learn_sigma = net.config, net.learn_sigma

    def forward(self, x, t, **kwargs):
        self.tiles += x.shape[0]
        return self.net(x, t, **kwargs)


def product_scene(name: str) -> xr.DataArray:
    """The real scene each product's synthetic scenes are sampled on."""
    from fidelity import DATA

    if name == "demo":
        from geodiff.synth import demo_scene

        return geodiff.open_scene(demo_scene(), chunks=None)
    if name == "campi":
        return geodiff.open_scene(DATA / "insar" / "campi_flegrei" / "vel.tif", chunks=None)
    if name == "opera":
        path = sorted((DATA / "sar" / "opera_rtc_s1_santa_barbara").glob("*/*_VV.tif"))[5]
        power = geodiff.open_scene(path, chunks=None)
        return (10 * np.log10(power.where(power > 0))).assign_attrs(units="dB")
    raise SystemExit(f"unknown product {name!r}")


def trained_model(name: str, scene: xr.DataArray, budget: float, cache: Path | None, seed: int,
                  recipe: str = "defaults"):
    """A fidelity recipe (fit's defaults unless told) for ``budget`` seconds on the product's
    tiles (the demo's: its own scene)."""
    from fidelity import _tiles, cached_training, load_product, parse_recipe

    tiles = _tiles(scene, 16) if name == "demo" else load_product(name)
    tiles = tiles.assign_coords(tile=np.arange(tiles.sizes["tile"]))
    return cached_training(cache, f"scene-{name}", tiles, parse_recipe(recipe), budget, seed)


def compare_methods(name: str, scene: xr.DataArray, model, seed: int, methods=METHODS) -> dict:
    real_seams = seam_statistic(scene)
    tile_px = model.tile[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", geostats.SpacingWarning)
        spacing = geostats.pixel_spacing(scene)  # lag units: metres for a geographic CRS
    max_lag = 4 * tile_px * abs(spacing.dx)
    row = {"product": name, "shape": list(scene.shape), "real_seam": real_seams.statistic, "methods": {}}
    small_blocks = {"method": "fused", "block": 2 * tile_px}  # block seams every 2 tiles, within the statistic's periods
    layouts = {"tiles": {"method": "tiles"}, "fused": {"method": "fused"}, "fused-b2": small_blocks,
               "tiles-drawn": {"method": "tiles", "coefficients": "draw"}}
    for label, options in ((label, layouts[label]) for label in methods):
        counting = Counting(model.network)
        counted = dataclasses.replace(model, network=counting)
        start = time.monotonic()
        lazy = scene.diffusion.sample(n=SAMPLES, model=counted, seed=seed, **options)
        synth = lazy.compute()
        seconds = time.monotonic() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", geostats.SpacingWarning)
            variogram = geostats.compare(scene, synth, max_lag=max_lag)
        pixels = SAMPLES * scene.size
        chunks = lazy.chunks[-2:]
        row["methods"][label] = {
            "seam": seam_statistic(synth).statistic,
            "chunk_boundary_step": chunk_boundary_step(synth.values, chunks),
            "real_chunk_boundary_step": chunk_boundary_step(scene.values[None], chunks),
            "variogram_rms_log_ratio": float(variogram["rms_log_ratio"]),
            "variogram_ratio_by_lag": (variogram.synthetic_mean / variogram.real_mean).values.round(3).tolist(),
            "seconds_per_megapixel": seconds / (pixels / 1e6),
            "evaluations_per_pixel": counting.tiles * model.tile[0] * model.tile[1] / pixels,
        }
    return row


def chunk_boundary_step(values: np.ndarray, chunks: tuple) -> float:
    """Mean |neighbour difference| across the dask chunk boundaries (blocks, or tiles) over the
    median across any pair of rows or columns: 1 is no step where blocks meet."""
    steps, inside = [], []
    for axis, sizes in ((-2, chunks[0]), (-1, chunks[1])):
        d = np.nanmean(np.abs(np.diff(values, axis=axis)), axis=tuple(a for a in range(values.ndim) if a != values.ndim + axis))
        edges = np.cumsum(sizes)[:-1] - 1  # difference index k: between pixels k and k + 1
        steps.append(d[edges])
        inside.append(d)
    if not sum(len(s) for s in steps):
        return float("nan")
    return float(np.nanmean(np.concatenate(steps)) / np.nanmedian(np.concatenate(inside)))


def _print_products(rows: list[dict]) -> None:
    print(f"\n{'product':8s} {'method':8s} {'seam (real)':>14s} {'chunk step (real)':>17s} {'variogram RMS':>14s} "
          f"{'s/Mpx':>8s} {'evals/px':>9s}")
    for row in rows:
        for method, m in row["methods"].items():
            print(f"{row['product']:8s} {method:8s} {m['seam']:7.3f} ({row['real_seam']:.3f}) "
                  f"{m['chunk_boundary_step']:5.2f} ({m['real_chunk_boundary_step']:.2f}) {m['variogram_rms_log_ratio']:14.3f} {m['seconds_per_megapixel']:8.1f} {m['evaluations_per_pixel']:9.1f}")
        for method, m in row["methods"].items():
            print(f"{'':8s} {method:8s} semivariance synthetic/real by lag: {np.round(m['variogram_ratio_by_lag'], 2)}")
        methods = row["methods"]
        for peer in (m for m in ("tiles", "tiles-drawn") if m in methods):
            t = methods[peer]
            for method in (m for m in ("fused", "fused-b2") if m in methods):
                f = methods[method]
                print(f"{row['product']:8s} {method}: seam /real {f['seam'] / row['real_seam']:.3f} ({peer} "
                      f"{t['seam'] / row['real_seam']:.3f}); variogram {peer}/{method} "
                      f"{t['variogram_rms_log_ratio'] / f['variogram_rms_log_ratio']:.2f}x; cost {method}/{peer} "
                      f"{f['seconds_per_megapixel'] / t['seconds_per_megapixel']:.2f}x")


# -- part 2: a GRD-sized grid streamed to Zarr, one child process per run -------------------------


def tiny_model():
    """A tiny untrained network of 32-pixel tiles, in dB. Without attention: the grid's cost is
    then mostly geodiff's (windows, blocks, Zarr), not the network's."""
    from geodiff.diffusion import NoiseSchedule
    from geodiff.diffusion.unet import UNet
    from geodiff.model import DiffusionModel
    from geodiff.scaling import Coefficients, Scaler

    torch.manual_seed(0)
    net = UNet.from_preset("tiny", 1, attention_resolutions=()).eval()
    coefficients = Coefficients("minmax", np.zeros((1, 1)), np.ones((1, 1)), units="dB")
    return DiffusionModel(network=net, schedule=NoiseSchedule("sigmoid", 1000), scaler=Scaler(),
                          coefficients=coefficients, tile=(32, 32), units="dB", prediction="v")


def lazy_grid(shape: tuple[int, int]) -> xr.DataArray:
    """An all-valid lazy grid of ``shape`` with a CRS (10 m pixels)."""
    import dask.array as darr

    h, w = shape
    return xr.DataArray(darr.zeros(shape, chunks=2048, dtype=np.float32), dims=("y", "x"),
                        coords={"y": 5e6 - 10.0 * np.arange(h), "x": 3e5 + 10.0 * np.arange(w)},
                        attrs={"units": "dB"}).rio.write_crs("EPSG:32633")


def stream(shape: tuple[int, int], method: str, out: Path) -> dict:
    """Sample one synthetic scene on an all-valid grid of ``shape`` with a tiny untrained network
    (one DDIM step) and stream it to ``out``; returns seconds and this process's peak RSS."""
    import resource

    model, (h, w) = tiny_model(), shape
    start = time.monotonic()
    synth = model.sample_scene(1, like=lazy_grid(shape), sampler="ddim", sample_steps=1, method=method,
                               batch_size=64, mask=False)
    geodiff.to_zarr(synth, out, progress=False)
    seconds = time.monotonic() - start
    return {"shape": list(shape), "method": method, "seconds": seconds, "megapixels_per_second": h * w / 1e6 / seconds,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _child(shape, method, threads) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import torch; "
                f"torch.set_num_threads({threads}); from scene import stream; from pathlib import Path; "
                f"print(json.dumps(stream({tuple(shape)!r}, {method!r}, Path({tmp!r}) / 's.zarr')))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def grd_runs(fraction: float, threads: int) -> list[dict]:
    side = np.sqrt(fraction)
    full = (int(GRD[0] * side), int(GRD[1] * side))
    runs = [_child((1024, 1024), "fused", threads), _child((2048, 2048), "fused", threads),
            _child(full, "fused", threads), _child((2048, 2048), "tiles", threads)]
    print(f"\nGRD grid {GRD[0]} x {GRD[1]} at fraction {fraction}: {full[0]} x {full[1]}")
    for r in runs:
        print(f"  {r['method']:6s} {r['shape'][0]:6d} x {r['shape'][1]:<6d} {r['seconds']:8.1f} s "
              f"{r['megapixels_per_second']:6.3f} Mpx/s  peak RSS {r['peak_rss_gib']:.2f} GiB")
    fused, tiles = runs[1], runs[3]
    print(f"  cost fused / tiles on 2048 x 2048: {tiles['megapixels_per_second'] / fused['megapixels_per_second']:.2f}x;"
          f" peak RSS {runs[2]['shape'][0]}x{runs[2]['shape'][1]} / 1024x1024: "
          f"{runs[2]['peak_rss_gib'] / runs[0]['peak_rss_gib']:.2f}x")
    return runs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=120.0, help="training seconds per product")
    p.add_argument("--products", nargs="*", default=["demo", "campi", "opera"])
    p.add_argument("--grd-fraction", type=float, default=0.05,
                   help="fraction of the GRD grid's area to stream (1 for the whole grid); 0 skips part 2")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, help="keep trained models here and reuse them")
    p.add_argument("--recipe", default="defaults", help="a recipe of benchmarks/fidelity.py, e.g. defaults+scale")
    p.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.products:
        scene = product_scene(name)
        model = trained_model(name, scene, args.budget, args.cache, args.seed, args.recipe)
        print(f"{name}: {scene.shape} px, {args.recipe} trained {model.summary.get('train_steps')} steps")
        rows.append(compare_methods(name, scene, model, args.seed, args.methods))
    if rows:
        _print_products(rows)
    grd = grd_runs(args.grd_fraction, args.threads) if args.grd_fraction > 0 else []
    if args.json:
        args.json.write_text(json.dumps({"budget": args.budget, "recipe": args.recipe, "products": rows, "grd": grd},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
