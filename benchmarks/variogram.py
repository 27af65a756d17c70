"""Exact FFT semivariograms against GSTools' pairwise estimator on 128 x 128 tiles with NaN.

1,000 tiles of 128 x 128 with 10 % NaN (Gaussian random fields), 64 isotropic bins; GSTools
(``vario_estimate``, same bin edges) runs on a few tiles and is extrapolated per tile. Prints the
time per tile of both, the speed ratio and the largest relative difference (pair counts must be
identical).

    python benchmarks/variogram.py [--tiles 1000] [--gstools-tiles 1]
"""

from __future__ import annotations

import argparse
import os
import time

import gstools as gs
import numpy as np

from geodiff.geostats import Exponential, gaussian_random_field, semivariogram_array


def make_tiles(n: int, size: int, nan_fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tiles = gaussian_random_field((size, size), Exponential(4.0, 12.0), size=n, seed=rng, padding=2)
    tiles[rng.random(tiles.shape) < nan_fraction] = np.nan
    return tiles


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=1000)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--bins", type=int, default=64)
    p.add_argument("--nan", type=float, default=0.10)
    p.add_argument("--gstools-tiles", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    tiles = make_tiles(a.tiles, a.size, a.nan, a.seed)
    # Edges half-way between integer lags: bins centred on lags 1..64 px, and no lag distance
    # (sqrt of an integer) can sit on an edge, so both codes bin every pair identically.
    edges = np.arange(a.bins + 1) + 0.5
    semivariogram_array(tiles[:2], bins=edges)  # warm the lag-plan cache and FFT plans

    t0, c0 = time.perf_counter(), time.process_time()
    gamma, npairs, _ = semivariogram_array(tiles, bins=edges)
    t_geo = (time.perf_counter() - t0) / a.tiles
    c_geo = (time.process_time() - c0) / a.tiles

    yy, xx = np.meshgrid(
        np.arange(a.size, dtype=float), np.arange(a.size, dtype=float), indexing="ij"
    )
    worst, counts_equal = 0.0, True
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(a.gstools_tiles):
        v = np.isfinite(tiles[k])
        _, g, c = gs.vario_estimate(
            (xx[v], yy[v]), tiles[k][v], bin_edges=edges, return_counts=True
        )
        counts_equal &= bool(np.array_equal(c, npairs[k]))
        worst = max(worst, float(np.max(np.abs(g / gamma[k] - 1))))
    t_gs = (time.perf_counter() - t0) / a.gstools_tiles
    c_gs = (time.process_time() - c0) / a.gstools_tiles

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"cores: {os.cpu_count()} (load average {load:.1f}); {a.tiles} tiles of {a.size} x {a.size}, {a.nan:.0%} NaN, {a.bins} bins"
    )
    print("                                   wall ms/tile   CPU ms/tile (all threads)")
    print(f"geodiff semivariogram (FFT)        {t_geo * 1e3:12.3f}  {c_geo * 1e3:12.3f}")
    print(
        f"GSTools vario_estimate ({a.gstools_tiles} tiles)    {t_gs * 1e3:12.1f}  {c_gs * 1e3:12.1f}"
    )
    print(f"speed ratio: {t_gs / t_geo:,.0f}x wall, {c_gs / c_geo:,.0f}x CPU")
    print(
        f"pair counts identical: {counts_equal}; largest relative difference in gamma: {worst:.2e}"
    )


if __name__ == "__main__":
    main()
