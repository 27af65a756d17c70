"""Super-resolution against bicubic interpolation on held-out real scenes, at factors 2 and 4.

Per product and factor, an upsampling model (``geodiff.fit(..., upsample=f)``, the default
recipe, a training budget of ``--max-seconds``) learns from the training part; each held-out
real scene is area-averaged by ``f`` (linear power for backscatter, as ``fit`` trains) and
brought back to its own grid by the model (``model.upsample``, consistent with the coarse scene
by default) and by bicubic interpolation (in dB for backscatter; torch's ``bicubic``,
``align_corners=False``). Scored against the real
fine scene on its valid pixels, in the scaler's space (dB, mm/yr):

- PSNR, with the real scene's range (max - min) as peak: of one sample, of the mean of
  ``--samples`` samples in the scored space, and of the one-step estimate (``sample_steps=1``:
  the network's x_0 estimate from pure noise, E[x_0 | coarse], made consistent), the posterior
  mean a PSNR rewards; one sample carries the posterior's spread and scores lower by
  construction;
- the short-lag semivariogram (lags 1 to 8 fine pixels): RMS log-ratio against the real scene's,
  of one sample (lower is better; the sample's own texture is what it is judged on);
- the same PSNRs and variogram for each ``--strength``: samples started from the bicubic
  interpolation at that fraction of the trained timesteps (``model.upsample(..., strength=s)``).

Products: OPERA RTC-S1 (VV and VH, dB; the last ``--held-out-dates`` dates held out, 32-pixel
tiles every 16), Campi Flegrei LOS velocity (mm/yr; the bottom third held out, 32-pixel tiles
every 8). Run::

    python benchmarks/upsampling.py [--max-seconds 240] [--products opera campi] [--factors 2 4]
                                    [--scenes 6] [--samples 2] [--strength 0.05 0.1] [--threads 2]
                                    [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
OPERA = SHARED / "sar" / "opera_rtc_s1_santa_barbara"
CAMPI = SHARED / "insar" / "campi_flegrei" / "vel.tif"
LAG_EDGES = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 6.5, 8.5])


def opera(held_out_dates: int, scenes: int):
    """Training files and held-out ``(band, y, x)`` scenes (linear power)."""
    import geodiff
    from geodiff.collection import collect

    dates = sorted(p.name for p in OPERA.iterdir() if p.is_dir())
    train = [str(f) for d in dates[:-held_out_dates] for f in sorted((OPERA / d).glob("*.tif"))]
    held = [str(f) for d in dates[-held_out_dates:] for f in sorted((OPERA / d).glob("*.tif"))]
    members = collect(held, band_files=("VV", "VH"))
    picked = np.linspace(0, len(members) - 1, scenes).round().astype(int)
    test = [members[i].open().compute() for i in picked]
    options = {"tile": 32, "overlap": 16, "band_files": ("VV", "VH"), "scaler": geodiff.scaling.Scaler(db=True)}
    return train, test, options, True


def campi():
    import geodiff

    scene = geodiff.open_scene(CAMPI).compute()
    cut = 2 * scene.sizes["y"] // 3
    return scene.isel(y=slice(0, cut)), [scene.isel(y=slice(cut, None))], {"tile": 32, "overlap": 24}, False


def coarse_of(scene, factor: int, db: bool):
    """The scene area-averaged by ``factor`` (linear power: the scene is linear), cropped to whole blocks."""
    from geodiff.tiling.augment import coarsened

    h, w = (scene.sizes["y"] // factor) * factor, (scene.sizes["x"] // factor) * factor
    fine = scene.isel(y=slice(0, h), x=slice(0, w))
    return fine, coarsened(fine, factor)


def space(values: np.ndarray, db: bool) -> np.ndarray:
    from geodiff.scaling import to_db

    return to_db(values) if db else values


def bicubic(coarse: np.ndarray, factor: int, db: bool) -> np.ndarray:
    from geodiff.tiling.fill import fill_planes

    planes = fill_planes(space(coarse, db).reshape(-1, *coarse.shape[-2:]), "nearest")
    up = torch.nn.functional.interpolate(torch.from_numpy(planes.astype(np.float32))[None], scale_factor=factor,
                                         mode="bicubic", align_corners=False)[0].numpy()
    return up.reshape(*coarse.shape[:-2], *up.shape[-2:])


def psnr(estimate: np.ndarray, truth: np.ndarray) -> float:
    ok = np.isfinite(truth) & np.isfinite(estimate)
    peak = np.nanmax(truth) - np.nanmin(truth)
    return float(10 * np.log10(peak ** 2 / np.mean((estimate[ok] - truth[ok]) ** 2)))


def variogram_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    from geodiff.geostats import semivariogram_array

    masked = np.where(np.isfinite(truth), estimate, np.nan)
    g_est = semivariogram_array(masked, bins=LAG_EDGES)[0]
    g_true = semivariogram_array(truth, bins=LAG_EDGES)[0]
    return float(np.sqrt(np.nanmean(np.log(g_est / g_true) ** 2)))


def run(product: str, factor: int, args) -> dict:
    import geodiff

    train, test, options, db = opera(args.held_out_dates, args.scenes) if product == "opera" else campi()
    start = time.perf_counter()
    model = geodiff.fit(train, train_steps=100_000, max_seconds=args.max_seconds, upsample=factor, seed=args.seed,
                        progress=False, cond_residual=args.residual, **options)
    seconds = time.perf_counter() - start
    scores = {k: [] for k in ("psnr_bicubic", "psnr_sample", "psnr_mean", "psnr_estimate", "vario_bicubic",
                              "vario_sample")}
    for k, scene in enumerate(test):
        fine, coarse = coarse_of(scene, factor, db)
        truth = space(fine.values, db)
        samples = space(model.upsample(coarse, args.samples, seed=args.seed + k).values, db)
        cubic = bicubic(coarse.values, factor, db)
        mean = samples.mean(0)  # in the scored space (dB): the estimate of least squared error there
        # One sampler step from pure noise returns the network's x_0 estimate there, E[x_0 | coarse].
        one_step = space(model.upsample(coarse, 1, seed=args.seed + k, sample_steps=1).values[0], db)
        for name, estimate in (("bicubic", cubic), ("sample", samples[0]), ("mean", mean), ("estimate", one_step)):
            scores[f"psnr_{name}"].append(psnr(estimate, truth))
        scores["vario_bicubic"].append(variogram_error(cubic, truth))
        scores["vario_sample"].append(variogram_error(samples[0], truth))
        for strength in args.strength:
            started = space(model.upsample(coarse, args.samples, seed=args.seed + k, strength=strength).values, db)
            scores.setdefault(f"psnr_sample_{strength:g}", []).append(psnr(started[0], truth))
            scores.setdefault(f"psnr_mean_{strength:g}", []).append(psnr(started.mean(0), truth))
            scores.setdefault(f"vario_sample_{strength:g}", []).append(variogram_error(started[0], truth))
    out = {k: float(np.mean(v)) for k, v in scores.items()}
    out.update(product=product, factor=factor, scenes=len(test), train_steps=model.summary["train_steps"],
               train_seconds=round(seconds, 1))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-seconds", type=float, default=240.0, help="training budget per model")
    p.add_argument("--products", nargs="*", default=["opera", "campi"])
    p.add_argument("--factors", type=int, nargs="*", default=[2, 4])
    p.add_argument("--scenes", type=int, default=6, help="held-out OPERA scenes scored")
    p.add_argument("--samples", type=int, default=2, help="samples per scene (their mean is scored too)")
    p.add_argument("--held-out-dates", type=int, default=4)
    p.add_argument("--strength", type=float, nargs="*", default=[],
                   help="also score samples started from bicubic at these strengths")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=False,
                   help="train on the residual from the resized coarse tile (TrainConfig.cond_residual)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'product':8s} {'f':>2s} {'steps':>6s} | {'PSNR bicubic':>12s} {'sample':>7s} {'mean':>7s} "
          f"{'1-step':>7s} | {'vario RMS log bicubic':>21s} {'sample':>7s} {'ratio':>6s}")
    for product in args.products:
        for factor in args.factors:
            r = run(product, factor, args)
            rows.append(r)
            print(f"{product:8s} {factor:2d} {r['train_steps']:6d} | {r['psnr_bicubic']:12.2f} {r['psnr_sample']:7.2f} "
                  f"{r['psnr_mean']:7.2f} {r['psnr_estimate']:7.2f} | {r['vario_bicubic']:21.3f} {r['vario_sample']:7.3f} "
                  f"{r['vario_bicubic'] / r['vario_sample']:6.2f}x", flush=True)
            for strength in args.strength:
                tag = f"{strength:g}"
                print(f"{'':8s} {'':2s} {'from':>6s} | {'bicubic at ' + tag:>12s} {r['psnr_sample_' + tag]:7.2f} "
                      f"{r['psnr_mean_' + tag]:7.2f} {'':7s} | {'':21s} {r['vario_sample_' + tag]:7.3f} "
                      f"{r['vario_bicubic'] / r['vario_sample_' + tag]:6.2f}x", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
