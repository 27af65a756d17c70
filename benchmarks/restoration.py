"""Inpainting real scenes: diffusion fills against nearest, Laplace and ordinary kriging.

Per product, real valid pixels are hidden in a mask shaped like real nodata: the quality mask
of Campi Flegrei's ``vel_mskd.tif`` (33 % nodata), cropped to the product's grid. The model never
sees them: it trains on the masked scene (Campi Flegrei), on the other dates (OPERA) or on the
other interferograms (Mexico City), ``--max-seconds`` each, with ``fit``'s defaults. Each hidden
region is then filled by

- geodiff's inpainting (``scene.diffusion.inpaint(model, n)``): one fill, and the mean of the
  ``--samples`` fills;
- nearest-neighbour and Laplace fill (``geodiff.tiling.fill_planes``);
- ordinary kriging (GSTools, a test-only oracle here) with an exponential variogram fitted to
  the valid pixels, conditioned on at most ``--krige-points`` valid pixels nearest the hidden
  region (kriging on every pixel does not fit in memory).

Scored on the hidden pixels against the truth, in the scene's units (dB for backscatter):
RMSE, and the semivariogram of the hidden region (lags 1 to 8 pixels, pairs within it) as the
RMS log-ratio against the truth's. Run::

    python benchmarks/restoration.py [--max-seconds 300] [--products campi opera mexico]
                                     [--samples 4] [--krige-points 1500] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CAMPI = SHARED / "insar" / "campi_flegrei"
OPERA = SHARED / "sar" / "opera_rtc_s1_santa_barbara"
MEXICO = SHARED / "insar" / "mexico_city_cropA"
LAG_EDGES = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 6.5, 8.5])


def nodata_mask(shape: tuple[int, int]) -> np.ndarray:
    """Campi Flegrei's quality mask (True: nodata), cropped from its top-left corner and tiled to ``shape``."""
    import rioxarray

    mask = np.isnan(rioxarray.open_rasterio(CAMPI / "vel_mskd.tif").squeeze().values)
    reps = (-(-shape[0] // mask.shape[0]), -(-shape[1] // mask.shape[1]))
    return np.tile(mask, reps)[:shape[0], :shape[1]]


def product(name: str):
    """``(training scenes, truth scene, fit options, in dB)``."""
    import geodiff

    if name == "campi":
        truth = geodiff.open_scene(CAMPI / "vel.tif").compute()
        return None, truth, {"tile": 32, "overlap": 16}, False
    if name == "opera":
        from geodiff.collection import collect

        dates = sorted(p.name for p in OPERA.iterdir() if p.is_dir())
        train = [str(f) for d in dates[:-1] for f in sorted((OPERA / d).glob("*.tif"))]
        held = collect(sorted(str(f) for f in (OPERA / dates[-1]).glob("*.tif")), band_files=("VV", "VH"))
        truth = held[len(held) // 2].open().compute()
        return train, truth, {"tile": 32, "overlap": 16, "band_files": ("VV", "VH"),
                              "scaler": geodiff.scaling.Scaler(db=True)}, True
    files = sorted(str(f) for f in MEXICO.glob("*_unw.tif"))
    truth = geodiff.open_scene(files[-1]).compute()
    return files[:-1], truth, {"tile": 32, "overlap": 16}, False


def in_units(values: np.ndarray, db: bool) -> np.ndarray:
    from geodiff.scaling import to_db

    return to_db(values) if db else values


def krige(values: np.ndarray, hidden: np.ndarray, points: int, seed: int) -> np.ndarray:
    """Ordinary kriging of the hidden pixels of a ``(y, x)`` plane from the valid pixels nearest them."""
    import gstools as gs
    from scipy.ndimage import distance_transform_edt

    valid = np.isfinite(values) & ~hidden
    distance = distance_transform_edt(~hidden)
    rows, cols = np.nonzero(valid)
    order = np.argsort(distance[rows, cols], kind="stable")[:points]
    rows, cols, z = rows[order], cols[order], values[rows[order], cols[order]]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(z), min(len(z), 4000), replace=False)
    bins, gamma = gs.vario_estimate((rows[pick], cols[pick]), z[pick], bin_edges=np.arange(0, 40, 2.0))
    model = gs.Exponential(dim=2)
    model.fit_variogram(bins, gamma, nugget=True)
    kriging = gs.krige.Ordinary(model, (rows.astype(float), cols.astype(float)), z, exact=True)
    out = values.copy()
    hr, hc = np.nonzero(hidden)
    out[hr, hc] = kriging((hr.astype(float), hc.astype(float)), mesh_type="unstructured", return_var=False)
    return out


def scores(estimate: np.ndarray, truth: np.ndarray, hidden: np.ndarray) -> tuple[float, float]:
    """RMSE on the hidden pixels and the hidden region's semivariogram RMS log-ratio against the truth's."""
    from geodiff.geostats import semivariogram_array

    region = hidden & np.isfinite(truth)
    rmse = float(np.sqrt(np.mean((estimate[..., region] - truth[..., region]) ** 2)))
    g_est = semivariogram_array(np.where(region, estimate, np.nan), bins=LAG_EDGES)[0]
    g_true = semivariogram_array(np.where(region, truth, np.nan), bins=LAG_EDGES)[0]
    return rmse, float(np.sqrt(np.nanmean(np.log(g_est / g_true) ** 2)))


def run(name: str, args) -> dict:
    import geodiff
    from geodiff.tiling.fill import fill_planes

    train, truth, options, db = product(name)
    valid = np.isfinite(truth.values)
    hidden = nodata_mask(truth.shape[-2:]) & (valid.all(0) if valid.ndim == 3 else valid)
    masked = truth.where(~hidden)
    start = time.perf_counter()
    model = geodiff.fit(masked if train is None else train, train_steps=100_000, max_seconds=args.max_seconds,
                        seed=args.seed, progress=False, **options)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    fills = masked.diffusion.inpaint(model, args.samples, seed=args.seed).values
    fill_s = time.perf_counter() - start
    real = in_units(truth.values, db)
    planes = in_units(masked.values, db)
    flat = planes.reshape(-1, *planes.shape[-2:])
    estimates = {
        "diffusion, one fill": in_units(fills[0], db),
        "diffusion, mean of fills": in_units(fills, db).mean(0),
        "nearest": fill_planes(planes, "nearest"),
        "laplace": fill_planes(planes, "laplace"),
        "kriging": np.stack([krige(p, hidden, args.krige_points, args.seed) for p in flat]).reshape(planes.shape),
    }
    out = {"product": name, "hidden_fraction": float(hidden.mean()), "train_steps": model.summary["train_steps"],
           "train_seconds": round(seconds, 1), "inpaint_seconds": round(fill_s, 1), "methods": {}}
    for method, estimate in estimates.items():
        rmse, vario = scores(estimate, real, hidden)
        out["methods"][method] = {"rmse": rmse, "variogram_rms_log_ratio": vario}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-seconds", type=float, default=300.0, help="training budget per product")
    p.add_argument("--products", nargs="*", default=["campi", "opera", "mexico"])
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--krige-points", type=int, default=1500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for name in args.products:
        r = run(name, args)
        results.append(r)
        m = r["methods"]
        print(f"\n{name}: {r['hidden_fraction']:.0%} hidden, {r['train_steps']} training steps, "
              f"inpainting {r['inpaint_seconds']:.0f} s")
        print(f"{'method':26s} {'RMSE':>9s} {'vario RMS log':>14s}")
        for method, s in m.items():
            print(f"{method:26s} {s['rmse']:9.3f} {s['variogram_rms_log_ratio']:14.3f}")
        laplace, krig, mean = (m[k]["rmse"] for k in ("laplace", "kriging", "diffusion, mean of fills"))
        print(f"mean of fills / Laplace RMSE: {mean / laplace:.2f}; / kriging: {mean / krig:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
