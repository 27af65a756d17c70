"""Inpainting real scenes: diffusion fills against nearest, Laplace and ordinary kriging.

Per product, real valid pixels are hidden in a mask shaped like real nodata from another scene:
the quality mask of Campi Flegrei's ``vel_mskd.tif`` (33 % nodata), cropped to the product's grid.
Campi Flegrei's own truth is ``vel_mskd.tif`` (its low-quality pixels are not a truth to score
against), hidden under its quality mask mirrored left to right, which falls on other pixels (20 %
of the valid ones). The model never sees the hidden pixels: it trains on the masked scene (Campi
Flegrei), on the other dates (OPERA) or on the other interferograms (Mexico City),
``--max-seconds`` each (or ``--train-steps`` steps, the same model whatever the machine's
load), with ``fit``'s defaults. Each hidden
region is then filled by

- geodiff's inpainting (``scene.diffusion.inpaint(model, n)``): one fill, and the mean of the
  ``--samples`` fills; with ``--resampling LENGTH COUNT`` also RePaint's resampling jumps
  (``sampler="ddpm"``, ``--resampling-steps`` steps), and with ``--strength S [S ...]`` SDEdit
  starts from the Laplace fill noised to those fractions of the timesteps, on the same model;
- nearest-neighbour and Laplace fill (``geodiff.tiling.fill_planes``);
- ordinary kriging (GSTools, a test-only oracle here) with an exponential variogram fitted to
  the valid pixels, conditioned on at most ``--krige-points`` valid pixels nearest the hidden
  region (kriging on every pixel does not fit in memory).

Scored on the hidden pixels against the truth, in the scene's units (dB for backscatter):
RMSE, and the semivariogram of the hidden region (lags 1 to 8 pixels, pairs within it) as the
RMS log-ratio against the truth's.

Part 2, denoising (``--denoise``): a denoiser (``geodiff.denoising.fit_denoiser``, the same
network preset) trains on ``--pairs`` pairs of 32-pixel tiles, Mogi, Okada and sill deformation
plus noise crops of the first 24 Mexico City interferograms (radians to mm, 150 m pixels).
Held out: ``--tests`` Mogi sources plus crops of the last 6 interferograms, known truth, on
scenes of each ``--scenes`` size: one tile (the denoiser samples it alone) and larger (fused
windows, the scene path of real interferograms).
Against a Gaussian and a median filter (their width chosen on the training pairs) and a plain
supervised UNet of the same size, trained on the same pairs for the diffusion model's training
time (indexing the pairs not counted) to map noisy to clean (MSE, in the same normalised space).
Scored: RMSE (mm), and the Mogi source recovered by least squares from each estimate
(``scipy.optimize.least_squares``, started at the tile's centre): median horizontal position error (m), depth error (m) and relative volume error. Run::

    python benchmarks/restoration.py [--max-seconds 300 | --train-steps 400] [--products campi opera mexico]
                                     [--samples 4] [--krige-points 1500] [--resampling 5 4]
                                     [--resampling-steps 50] [--strength 0.3 0.5] [--denoise] [--pairs 2000]
                                     [--tests 48] [--scenes 32 48] [--threads 2] [--json out.json]
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


def nodata_mask(shape: tuple[int, int], mirrored: bool = False) -> np.ndarray:
    """Campi Flegrei's quality mask (True: nodata), mirrored left to right if asked, cropped from
    its top-left corner and tiled to ``shape``."""
    import rioxarray

    mask = np.isnan(rioxarray.open_rasterio(CAMPI / "vel_mskd.tif").squeeze().values)
    mask = mask[:, ::-1] if mirrored else mask
    reps = (-(-shape[0] // mask.shape[0]), -(-shape[1] // mask.shape[1]))
    return np.tile(mask, reps)[:shape[0], :shape[1]]


def product(name: str):
    """``(training scenes, truth scene, fit options, in dB)``."""
    import geodiff

    if name == "campi":
        truth = geodiff.open_scene(CAMPI / "vel_mskd.tif").compute()
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
    hidden = nodata_mask(truth.shape[-2:], mirrored=name == "campi") & (valid.all(0) if valid.ndim == 3 else valid)
    masked = truth.where(~hidden)
    start = time.perf_counter()
    budget = {"train_steps": args.train_steps} if args.train_steps else {"train_steps": 100_000,
                                                                         "max_seconds": args.max_seconds}
    model = geodiff.fit(masked if train is None else train, **budget,
                        seed=args.seed, progress=False, **options)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    fills = {"diffusion": masked.diffusion.inpaint(model, args.samples, seed=args.seed).values}
    fill_s = {"diffusion": time.perf_counter() - start}
    if args.resampling:
        label = f"resampled {args.resampling_steps}/{args.resampling[0]}x{args.resampling[1]}"
        start = time.perf_counter()
        fills[label] = masked.diffusion.inpaint(model, args.samples, seed=args.seed, sampler="ddpm",
                                                sample_steps=args.resampling_steps,
                                                resampling=tuple(args.resampling)).values
        fill_s[label] = time.perf_counter() - start
    for strength in args.strength:
        label = f"strength {strength:g}"
        start = time.perf_counter()
        fills[label] = masked.diffusion.inpaint(model, args.samples, seed=args.seed, strength=strength).values
        fill_s[label] = time.perf_counter() - start
    real = in_units(truth.values, db)
    planes = in_units(masked.values, db)
    flat = planes.reshape(-1, *planes.shape[-2:])
    estimates = {}
    for label, values in fills.items():
        estimates[f"{label}, one fill"] = in_units(values[0], db)
        estimates[f"{label}, mean of fills"] = in_units(values, db).mean(0)
    estimates |= {
        "nearest": fill_planes(planes, "nearest"),
        "laplace": fill_planes(planes, "laplace"),
        "kriging": np.stack([krige(p, hidden, args.krige_points, args.seed) for p in flat]).reshape(planes.shape),
    }
    out = {"product": name, "hidden_fraction": float(hidden.mean()), "train_steps": model.summary["train_steps"],
           "train_seconds": round(seconds, 1), "inpaint_seconds": {k: round(v, 1) for k, v in fill_s.items()},
           "methods": {}}
    for method, estimate in estimates.items():
        rmse, vario = scores(estimate, real, hidden)
        out["methods"][method] = {"rmse": rmse, "variogram_rms_log_ratio": vario}
    return out


def mexico_noise_mm(files: list[str]):
    """The interferograms as a ``(time, y, x)`` stack of LOS displacement in mm."""
    import xarray as xr

    import geodiff
    from geodiff.insar.phase import phase_to_displacement

    scenes = [geodiff.open_scene(f).squeeze(drop=True).compute() for f in files]
    return xr.DataArray(np.stack([phase_to_displacement(s.values) * 1000 for s in scenes]), dims=("time", "y", "x"))


def mogi_tests(count: int, noise, seed: int, tile: int = 32, spacing: float = 150.0):
    """Held-out Mogi sources on noise crops: ``(clean, noisy, sources)``."""
    import geodiff
    from geodiff.denoising import noise_crops

    rng = np.random.default_rng(seed)
    like = geodiff.synth.template((tile, tile), spacing)
    sources = [geodiff.synth.random_source("mogi", like, rng) for _ in range(count)]
    clean = np.stack([geodiff.synth.deformation(like, [s]).values * 1000 for s in sources])
    added = noise_crops(noise, count, tile, 0.5, rng)
    return like, clean, clean + added, sources


def fit_mogi(field: np.ndarray, like) -> np.ndarray:
    """``(x, y, depth, dV)`` of the Mogi source that best explains ``field`` (mm), least squares."""
    from scipy.optimize import least_squares

    import geodiff

    xs, ys = like["x"].values, like["y"].values

    def residual(p):
        model = geodiff.synth.deformation(like, [geodiff.synth.Mogi(x=p[0], y=p[1], depth=p[2], dV=p[3] * 1e6)])
        return (model.values * 1000 - field).ravel()

    start = [xs.mean(), ys.mean(), 3000.0, 1.0 if field.flat[np.argmax(np.abs(field))] > 0 else -1.0]
    fit = least_squares(residual, start, bounds=([xs.min(), ys.min(), 200.0, -50], [xs.max(), ys.max(), 20000.0, 50]))
    return np.array([fit.x[0], fit.x[1], fit.x[2], fit.x[3] * 1e6])


def supervised_unet(x_noisy: torch.Tensor, x_clean: torch.Tensor, preset: str, seconds: float, seed: int):
    """The same UNet trained to map the noisy tile to the clean one (MSE), for ``seconds``."""
    from geodiff.diffusion.unet import UNet

    net = UNet.from_preset(preset, 1, seed=seed)
    with torch.no_grad():
        for name, p in net.named_parameters():  # zero-initialised outputs learn too slowly from 0 alone
            if p.abs().sum() == 0 and "weight" in name:
                p.normal_(0, 0.01)
    opt = torch.optim.Adam(net.parameters(), 2e-4)
    gen = torch.Generator().manual_seed(seed)
    t0, steps, zero = time.perf_counter(), 0, torch.zeros(16)
    while time.perf_counter() - t0 < seconds:
        pick = torch.randint(len(x_noisy), (16,), generator=gen)
        loss = torch.nn.functional.mse_loss(net(x_noisy[pick], zero), x_clean[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    return net.eval(), steps


def run_denoise(args) -> dict:
    from scipy.ndimage import gaussian_filter, median_filter

    from geodiff.denoising import denoise, denoising_pairs, fit_denoiser

    files = sorted(str(f) for f in MEXICO.glob("*_unw.tif"))
    train_noise, test_noise = mexico_noise_mm(files[:24]), mexico_noise_mm(files[24:])
    pairs = denoising_pairs(args.pairs, tile=32, noise=train_noise, spacing=150.0, seed=args.seed)
    model = fit_denoiser(pairs, train_steps=100_000, max_seconds=args.max_seconds, seed=args.seed, progress=False)
    train_s = model.summary["seconds"]  # training only: indexing the pairs is not the network's time
    train_clean, train_noisy = pairs["clean"].values, pairs["noisy"].values

    def best(filter_, widths):
        errors = [np.sqrt(np.mean((np.stack([filter_(t, w) for t in train_noisy[:200]]) - train_clean[:200]) ** 2))
                  for w in widths]
        return widths[int(np.argmin(errors))]

    sigma = best(lambda t, w: gaussian_filter(t, w), [0.5, 1.0, 2.0, 3.0, 4.0])
    size = best(lambda t, w: median_filter(t, w), [3, 5, 7, 9])
    lo, hi = train_noisy.min((1, 2), keepdims=True), train_noisy.max((1, 2), keepdims=True)
    half = np.where(hi > lo, (hi - lo) / 2, 1.0)
    mid = (hi + lo) / 2
    unet, unet_steps = supervised_unet(torch.from_numpy(((train_noisy - mid) / half)[:, None]).float(),
                                       torch.from_numpy(((train_clean - mid) / half)[:, None]).float(),
                                       "small", train_s, args.seed)
    out = {"pairs": args.pairs, "tests": args.tests, "train_steps": model.summary["train_steps"],
           "unet_steps": unet_steps, "gaussian_sigma": sigma, "median_size": size, "scenes": {}}
    for pixels in args.scenes:
        like, clean, noisy, sources = mogi_tests(args.tests, test_noise, args.seed + 1, tile=pixels)
        estimates = {"gaussian filter": [], "median filter": [], "supervised UNet": [], "diffusion (mean)": []}
        for k in range(len(clean)):
            scene = like.copy(data=noisy[k].astype(np.float32)).assign_attrs(units="mm")
            estimates["diffusion (mean)"].append(denoise(scene, model, args.samples, seed=args.seed + k)["denoised"].values)
            estimates["gaussian filter"].append(gaussian_filter(noisy[k], sigma))
            estimates["median filter"].append(median_filter(noisy[k], size))
            t_lo, t_hi = noisy[k].min(), noisy[k].max()
            t_mid, t_half = (t_hi + t_lo) / 2, max((t_hi - t_lo) / 2, 1e-9)
            with torch.no_grad():  # fully convolutional: the scene in one call, in its own min-max
                z = unet(torch.from_numpy(((noisy[k] - t_mid) / t_half)[None, None]).float(), torch.zeros(1))[0, 0]
            estimates["supervised UNet"].append(z.numpy() * t_half + t_mid)
        truth = np.array([[s.x, s.y, s.depth, s.dV] for s in sources])
        methods = out["scenes"][pixels] = {}
        for method, values in [("noisy input", list(noisy)), *estimates.items()]:
            values = np.stack(values)
            fitted = np.stack([fit_mogi(v, like) for v in values])
            methods[method] = {
                "rmse_mm": float(np.sqrt(np.mean((values - clean) ** 2))),
                "position_m": float(np.median(np.hypot(*(fitted[:, :2] - truth[:, :2]).T))),
                "depth_m": float(np.median(np.abs(fitted[:, 2] - truth[:, 2]))),
                "volume_relative": float(np.median(np.abs(fitted[:, 3] - truth[:, 3]) / np.abs(truth[:, 3]))),
            }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-seconds", type=float, default=300.0, help="training budget per product")
    p.add_argument("--train-steps", type=int, help="inpainting: train this many steps instead of --max-seconds")
    p.add_argument("--products", nargs="*", default=["campi", "opera", "mexico"])
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--krige-points", type=int, default=1500)
    p.add_argument("--resampling", type=int, nargs=2, metavar=("LENGTH", "COUNT"),
                   help="also inpaint with RePaint's resampling jumps (DDPM)")
    p.add_argument("--resampling-steps", type=int, default=50, help="DDPM steps with --resampling")
    p.add_argument("--strength", type=float, nargs="*", default=[],
                   help="also inpaint from the Laplace fill noised to each of these fractions")
    p.add_argument("--denoise", action="store_true", help="run part 2, denoising, instead of inpainting")
    p.add_argument("--pairs", type=int, default=2000, help="denoising training pairs")
    p.add_argument("--tests", type=int, default=48, help="held-out denoising pairs")
    p.add_argument("--scenes", type=int, nargs="*", default=[32, 48],
                   help="sizes (pixels) of the held-out scenes: one tile, and larger ones sampled in fused windows")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.denoise:
        r = run_denoise(args)
        print(f"denoising: {r['pairs']} training pairs, {r['train_steps']} diffusion steps, "
              f"{r['unet_steps']} UNet steps; {r['tests']} held-out Mogi sources per scene size")
        for pixels, methods in r["scenes"].items():
            print(f"\n{pixels} x {pixels} scenes")
            print(f"{'method':20s} {'RMSE mm':>8s} {'position m':>11s} {'depth m':>8s} {'dV rel':>7s}")
            for method, m in methods.items():
                print(f"{method:20s} {m['rmse_mm']:8.2f} {m['position_m']:11.0f} {m['depth_m']:8.0f} "
                      f"{m['volume_relative']:7.2f}")
            ratio = methods["diffusion (mean)"]["rmse_mm"] / methods["supervised UNet"]["rmse_mm"]
            print(f"diffusion / supervised UNet RMSE: {ratio:.2f}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(r, indent=2))
        return
    results = []
    for name in args.products:
        r = run(name, args)
        results.append(r)
        m = r["methods"]
        seconds = ", ".join(f"{k} {v:.0f} s" for k, v in r["inpaint_seconds"].items())
        print(f"\n{name}: {r['hidden_fraction']:.0%} hidden, {r['train_steps']} training steps, inpainting: {seconds}")
        print(f"{'method':26s} {'RMSE':>9s} {'vario RMS log':>14s}")
        for method, s in m.items():
            print(f"{method:26s} {s['rmse']:9.3f} {s['variogram_rms_log_ratio']:14.3f}")
        laplace, krig, mean = (m[k]["rmse"] for k in ("laplace", "kriging", "diffusion, mean of fills"))
        print(f"mean of fills / Laplace RMSE: {mean / laplace:.2f}; / kriging: {mean / krig:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
