"""Stream a Sentinel-1 IW GRDH-sized scene through geodiff's data layer vs a rasterio loop.

Builds a synthetic uint16 scene of 25,788 x 16,685 pixels (``--scale`` shrinks both sides) as a
tiled GeoTIFF with a nodata border, then runs, each in a fresh process:

* geodiff: open_scene -> TileGrid(256).stack -> Scaler(minmax, dB) with per-tile statistics ->
  mean of every scaled tile (one lazy dask graph);
* rasterio: a windowed-read loop over the same windows doing the same arithmetic in numpy.

Prints the throughput of both (megapixels/s), their ratio and each one's peak RSS, and checks
that both produce the same per-tile means. Goal: ratio >= 0.5, geodiff peak RSS < 1.5 GB.

    python benchmarks/tiling.py [--scale 1.0] [--tile 256] [--gdal-cache MB] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GRDH_SHAPE = (16685, 25788)  # rows (azimuth), columns (range) of an IW GRDH product
FLOOR = 1e-10


def build_scene(path: Path, shape: tuple[int, int]) -> None:
    """Write a uint16 GRD-like scene block by block: speckled texture, a zero nodata border."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    h, w = shape
    profile = dict(driver="GTiff", height=h, width=w, count=1, dtype="uint16", nodata=0, tiled=True,
                   blockxsize=512, blockysize=512, crs="EPSG:32633",
                   transform=from_origin(300000.0, 5200000.0, 10.0, 10.0), BIGTIFF="IF_SAFER")
    rng = np.random.default_rng(0)
    border = max(8, w // 60)
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, h, 2048):
            rows = min(2048, h - r)
            cols = np.arange(w)
            trend = 200 + 150 * np.sin(cols / 900.0)[None, :] + 60 * np.cos((r + np.arange(rows)) / 700.0)[:, None]
            block = trend * rng.exponential(1.0, size=(rows, w))  # exponential speckle, 1 look
            block = np.clip(block, 1, 65535).astype("uint16")
            block[:, :border] = 0
            block[:, w - border:] = 0
            dst.write(block, 1, window=Window(0, r, w, rows))


def run_geodiff(path: Path, tile: int) -> np.ndarray:
    import dask

    import geodiff
    from geodiff.scaling import Scaler
    from geodiff.tiling import TileGrid

    scene = geodiff.open_scene(path)
    grid = TileGrid.from_scene(scene, tile)
    tiles = grid.stack(scene.chunk(grid.aligned_chunks()))
    scaled = Scaler("minmax", db=True, db_floor=FLOOR).transform(tiles)
    with dask.config.set(scheduler="threads"):
        return scaled.mean(("y", "x")).values


def run_rasterio(path: Path, tile: int) -> np.ndarray:
    import rasterio
    from rasterio.windows import Window

    from geodiff.tiling import TileGrid

    with rasterio.open(path) as src:
        grid = TileGrid((src.height, src.width), (tile, tile))
        out = np.empty(len(grid))
        for i, (r, c) in enumerate(grid.origins):
            a = src.read(1, window=Window(int(c), int(r), tile, tile)).astype(np.float32)
            a[a == src.nodata] = np.nan
            db = 10.0 * np.log10(np.maximum(a, FLOOR))
            if np.isnan(db).all():
                out[i] = np.nan
                continue
            lo, hi = np.nanmin(db), np.nanmax(db)
            loc, half = (lo + hi) / 2, (hi - lo) / 2
            out[i] = np.nanmean((db - loc) / (half if half > 0 else 1.0))
    return out


def child(which: str, path: Path, tile: int) -> None:
    # Imports are not part of the pipeline being compared.
    import dask  # noqa: F401
    import rasterio  # noqa: F401

    import geodiff  # noqa: F401
    from geodiff.scaling import Scaler  # noqa: F401

    start = time.perf_counter()
    means = (run_geodiff if which == "geodiff" else run_rasterio)(path, tile)
    elapsed = time.perf_counter() - start
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux
    print(json.dumps({"seconds": elapsed, "rss_gb": rss_gb, "means": [None if np.isnan(m) else float(m) for m in means]}))


def measure(which: str, path: Path, tile: int, gdal_cache_mb: int | None) -> dict:
    env = dict(os.environ)
    if gdal_cache_mb is not None:
        env["GDAL_CACHEMAX"] = str(gdal_cache_mb)
    out = subprocess.run([sys.executable, __file__, "--child", which, "--path", str(path), "--tile", str(tile)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="side-length factor (1.0 = full GRDH)")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--gdal-cache", type=int, default=0, metavar="MB",
                        help="GDAL block cache for both pipelines in MB (default 0: GDAL's own, 5%% of "
                             "RAM, which fills with every block read whoever reads it)")
    parser.add_argument("--keep", type=Path, help="folder to keep the scene in (reused if present)")
    parser.add_argument("--child", choices=["geodiff", "rasterio"], help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.path, args.tile)

    shape = (max(args.tile, round(GRDH_SHAPE[0] * args.scale)), max(args.tile, round(GRDH_SHAPE[1] * args.scale)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"grdh_{shape[0]}x{shape[1]}.tif"
        if not path.exists():
            t0 = time.perf_counter()
            build_scene(path, shape)
            print(f"built {shape[0]} x {shape[1]} uint16 scene ({path.stat().st_size / 1e9:.2f} GB) "
                  f"in {time.perf_counter() - t0:.1f} s")
        cache = args.gdal_cache or None
        results = {which: measure(which, path, args.tile, cache) for which in ("rasterio", "geodiff")}

    print(f"GDAL block cache: {f'{args.gdal_cache} MB' if args.gdal_cache else 'GDAL default'}")
    mpix = shape[0] * shape[1] / 1e6
    for which, r in results.items():
        print(f"{which:9s} {r['seconds']:7.2f} s  {mpix / r['seconds']:8.1f} Mpx/s  peak RSS {r['rss_gb']:.2f} GB")
    ratio = results["rasterio"]["seconds"] / results["geodiff"]["seconds"]
    a = np.array(results["geodiff"]["means"], dtype=float)
    b = np.array(results["rasterio"]["means"], dtype=float)
    same = np.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True)
    print(f"throughput ratio geodiff / rasterio: {ratio:.2f} (goal >= 0.5); "
          f"geodiff peak RSS {results['geodiff']['rss_gb']:.2f} GB (goal < 1.5); same per-tile means: {same}")


if __name__ == "__main__":
    main()
