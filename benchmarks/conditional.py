"""Class-conditional sampling with classifier-free guidance: does a guided sample show its class?

Data: the OPERA RTC-S1 bursts off Santa Barbara (VV and VH, dB, 32-pixel tiles every 16 pixels),
labelled per burst by a GeoDataFrame of burst footprints with a ``label`` column, "ocean" or
"land" (:data:`BURSTS`). The first dates train a class-conditional model (``geodiff.fit(...,
labels=footprints, conditional=True)``) and a small CNN classifier on the same real tiles in the
model's normalised space, where the network works: the class must show in the texture the
network makes, not in the range the tile is rescaled to (that comes from real tiles of the class
by construction). The last dates are held out: the classifier's accuracy on their real tiles is
the reference. Printed: accuracy by class on the held-out real tiles, and on guided samples by
class and guidance weight, and which class unconditional samples (no label) are taken for.

Part 2, a label map: one synthetic scene (``--scene-size`` pixels, dB) whose west half is
ocean and east half land, sampled with fused windows (``sample_scene(labels=polygons)``),
against the same two halves sampled as two separate scenes and put side by side. Printed: the
step at the region boundary, the largest column-to-column mean absolute difference within a tile
of the boundary over the median one across the scene (1 where the boundary does not show).
Run::

    python benchmarks/conditional.py [--max-seconds 600] [--samples 48] [--guidance 0 1 3]
                                     [--held-out-dates 4] [--scene-size 96 192] [--model DIR]
                                     [--threads 2] [--json out.json]

``--model DIR`` keeps the trained model there and reuses it.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sar" / "opera_rtc_s1_santa_barbara"

#: Burst id -> class. Chosen by the median VH backscatter of each burst on 2021-11-19: the ocean
#: bursts lie at -30 to -27.3 dB, the land ones at -18.0 to -15.3 dB; the two coastal bursts in
#: between (292323-IW2 at -22.5 dB, 292324-IW2 at -24.7 dB) are mixed and left out.
BURSTS = {
    **{b: "ocean" for b in ("292318-IW1", "292319-IW1", "292320-IW1", "292321-IW1", "292322-IW1", "292323-IW1",
                            "292324-IW1", "292318-IW2")},
    **{b: "land" for b in ("292319-IW2", "292320-IW2", "292321-IW2", "292322-IW2", "292325-IW1")},
}


def burst_of(path: Path) -> str:
    return re.search(r"T\d+-(\d+-IW\d)", path.name).group(1)


def files(dates: list[str]) -> list[str]:
    return [str(f) for d in dates for f in sorted((DATA / d).glob("*.tif")) if burst_of(f) in BURSTS]


def footprints():
    """The labelled polygons: one footprint per burst (from its first date's VV file) and its class."""
    import geopandas as gpd
    import rioxarray
    from shapely.geometry import box

    first = min(p for p in DATA.iterdir() if p.is_dir())
    rows = []
    for path in sorted(first.glob("*_VV.tif")):
        if burst_of(path) in BURSTS:
            with rioxarray.open_rasterio(path) as da:
                rows.append({"burst": burst_of(path), "label": BURSTS[burst_of(path)],
                             "geometry": box(*da.rio.bounds()), "crs": da.rio.crs})
    return gpd.GeoDataFrame([{k: v for k, v in r.items() if k != "crs"} for r in rows], crs=rows[0]["crs"])


def dataset(paths, labels):
    from geodiff.scaling import Scaler
    from geodiff.tile_dataset import TileDataset

    return TileDataset.from_scenes(paths, tile=32, overlap=16, band_files=("VV", "VH"), scaler=Scaler(db=True),
                                   labels=labels, progress=False)


def classes_of(ds, classes) -> torch.Tensor:
    return torch.tensor([classes.index(v[0]) for v in ds.index["labels"]])


def classifier(channels: int, classes: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(channels, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(32, classes))


def train_classifier(x: torch.Tensor, y: torch.Tensor, classes: int, seed: int, steps: int = 600) -> torch.nn.Module:
    net = classifier(x.shape[1], classes, seed)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randint(len(x), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(x[pick]), y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def predict(net, x: torch.Tensor) -> np.ndarray:
    return net(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-seconds", type=float, default=600.0, help="training budget of the diffusion model")
    p.add_argument("--samples", type=int, default=48, help="samples per class and guidance weight")
    p.add_argument("--guidance", type=float, nargs="*", default=[0.0, 1.0, 3.0])
    p.add_argument("--held-out-dates", type=int, default=4)
    p.add_argument("--sample-steps", type=int, default=25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--scene-size", type=int, nargs=2, default=[96, 192], help="label-map scene (rows, cols)")
    p.add_argument("--model", type=Path, help="keep the trained model here and reuse it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import geodiff

    dates = sorted(p.name for p in DATA.iterdir() if p.is_dir())
    polygons = footprints()
    train_ds = dataset(files(dates[:-args.held_out_dates]), polygons)
    test_ds = dataset(files(dates[-args.held_out_dates:]), polygons)
    classes = train_ds.classes
    start = time.perf_counter()
    if args.model and args.model.exists():
        model = geodiff.load_model(args.model)
    else:
        model = geodiff.fit(train_ds, train_steps=100_000, max_seconds=args.max_seconds, conditional=True,
                            seed=args.seed, progress=False)
        if args.model:
            model.save(args.model)
    train_s = time.perf_counter() - start
    x_train, y_train = train_ds.to_tensor(), classes_of(train_ds, classes)
    x_test, y_test = test_ds.to_tensor(), classes_of(test_ds, classes)
    net = train_classifier(x_train, y_train, len(classes), args.seed)
    real = predict(net, x_test)
    results = {"classes": classes, "train_tiles": len(train_ds), "held_out_tiles": len(test_ds),
               "train_steps": model.summary["train_steps"], "train_seconds": round(train_s, 1),
               "real_held_out": {c: float((real[y_test.numpy() == i] == i).mean()) for i, c in enumerate(classes)},
               "guided": {}, "unconditional_taken_for": {}}
    print(f"{len(train_ds)} training tiles ({', '.join(f'{c}: {int((y_train == i).sum())}' for i, c in enumerate(classes))}), "
          f"{len(test_ds)} held out; {results['train_steps']} training steps in {train_s:.0f} s")
    print(f"{'':22s}" + "".join(f"{c:>10s}" for c in classes) + f"{'mean':>10s}")
    row = results["real_held_out"]
    print(f"{'real held-out tiles':22s}" + "".join(f"{row[c]:10.2f}" for c in classes) + f"{np.mean(list(row.values())):10.2f}")
    for w in args.guidance:
        row = {}
        for i, c in enumerate(classes):
            z = model.generate(args.samples, sample_steps=args.sample_steps, seed=args.seed + i,
                               conditions=model.label_conditions(c, w, args.samples)[0])
            row[c] = float((predict(net, z) == i).mean())
        results["guided"][str(w)] = row
        print(f"{f'guided, w = {w:g}':22s}" + "".join(f"{row[c]:10.2f}" for c in classes)
              + f"{np.mean(list(row.values())):10.2f}")
    free = predict(net, model.generate(args.samples * len(classes), sample_steps=args.sample_steps, seed=args.seed))
    results["unconditional_taken_for"] = {c: float((free == i).mean()) for i, c in enumerate(classes)}
    print("unconditional samples taken for " + ", ".join(f"{c} {v:.2f}" for c, v in
                                                         results["unconditional_taken_for"].items()))
    results["label_map"] = label_map(model, test_ds, classes, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def boundary_step(values: np.ndarray, column: int, tile: int) -> float:
    """Largest column-to-column mean |difference| within ``tile`` columns of ``column``, over
    the median one, on ``(band, y, x)`` values in dB."""
    steps = np.nanmean(np.abs(np.diff(values, axis=-1)), axis=(0, 1))  # step j: between columns j and j + 1
    near = steps[max(column - tile, 0):column + tile]
    return float(near.max() / np.median(steps))


def label_map(model, test_ds, classes, args) -> dict:
    """Part 2: a west-ocean, east-land scene, fused against two scenes side by side."""
    import geopandas as gpd
    from shapely.geometry import box

    import geodiff
    from geodiff.scaling import to_db

    h, w = args.scene_size
    member = next(iter(test_ds.members.values())).open()
    res = abs(member.rio.resolution()[0])
    x0, _, _, y0 = member.rio.bounds()  # the synthetic grid starts at a burst's corner
    like = geodiff.synth.template((h, w), res, crs=member.rio.crs, origin=(x0, y0))
    bands = xr_bands(like, test_ds.bands).assign_attrs(units=model.units or "")
    middle = x0 + res * (w // 2)
    polygons = gpd.GeoDataFrame({"label": ["ocean", "land"]},
                                geometry=[box(x0, y0 - res * h, middle, y0), box(middle, y0 - res * h, x0 + res * w, y0)],
                                crs=member.rio.crs)
    options = {"sample_steps": args.sample_steps, "seed": args.seed, "guidance": 1.0}
    fused = to_db(model.sample_scene(1, like=bands, labels=polygons, **options).values[0])
    west = bands.isel(x=slice(0, w // 2))
    east = bands.isel(x=slice(w // 2, None))
    apart = np.concatenate([to_db(model.sample_scene(1, like=west, labels="ocean", **options).values[0]),
                            to_db(model.sample_scene(1, like=east, labels="land", **options).values[0])], axis=-1)
    out = {"fused": boundary_step(fused, w // 2, model.tile[1]), "side_by_side": boundary_step(apart, w // 2, model.tile[1])}
    print(f"label map, step at the ocean/land boundary over the median: fused {out['fused']:.2f}, "
          f"two scenes side by side {out['side_by_side']:.2f}")
    return out


def xr_bands(like, bands):
    """``like`` as a ``(band, y, x)`` grid of the model's bands (values unused)."""
    import xarray as xr

    return xr.concat([like] * len(bands), dim="band").assign_coords(band=bands)


if __name__ == "__main__":
    main()
