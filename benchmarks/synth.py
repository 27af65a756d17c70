"""Labelled synthetic interferograms: geodiff.synth.dataset vs Cholesky-drawn correlated noise.

Times ``geodiff.synth.dataset`` producing ``--n`` labelled 128 x 128 examples (a random Mogi,
Okada or sill source, a turbulent atmosphere with exponential covariance drawn by circulant
embedding, a planar ramp and decorrelation noise, all components stored) and, as the peer, the
approach common in InSAR simulators: build the exponential covariance matrix of all pixels,
factor it once by Cholesky (``C = L L^T``) and draw each atmosphere as ``L z``.

The peer's factorisation is timed once on the full 16384 x 16384 matrix (``--peer-grid 128``)
or on a smaller grid and extrapolated as N^3 (``--peer-grid 64``, printed as such); its draws
are timed on ``--peer-n`` examples. Its per-example cost is one draw plus the factorisation
amortised over ``--n`` examples. Prints seconds per example for both and their ratio
(peer / geodiff; above 1 means geodiff is faster), for the full labelled example and for the
correlated noise alone.

    python benchmarks/synth.py [--n 10000] [--batch 250] [--peer-grid 128] [--peer-n 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
from scipy.spatial.distance import pdist, squareform

from geodiff.synth import Atmosphere, turbulent
from geodiff.synth.dataset import dataset

SHAPE = (128, 128)
SPACING = 100.0  # m
STD_MM = 5.0
CORRELATION_LENGTH = 2000.0  # m


def exponential_covariance(side: int) -> np.ndarray:
    """Covariance (mm^2) of every pixel pair of a side x side grid, exponential model."""
    yy, xx = np.mgrid[0:side, 0:side] * SPACING
    h = squareform(pdist(np.column_stack([yy.ravel(), xx.ravel()])))
    return STD_MM**2 * np.exp(-h / CORRELATION_LENGTH, out=h)


def time_geodiff(n: int, batch: int) -> tuple[float, float]:
    """Seconds per labelled example, and per atmosphere alone, over n examples."""
    atmo = Atmosphere(turbulent_std=STD_MM, model="exponential", correlation_length=CORRELATION_LENGTH)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    done = 0
    while done < n:
        m = min(batch, n - done)
        ds = dataset(m, shape=SHAPE, spacing=SPACING, atmosphere=atmo, unwrapping_errors=1, seed=rng)
        assert ds.sizes["sample"] == m
        done += m
    per_example = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    done = 0
    while done < n:
        m = min(batch, n - done)
        turbulent(SHAPE, std=STD_MM, model="exponential", correlation_length=CORRELATION_LENGTH,
                  spacing=(SPACING, SPACING), size=m, seed=rng)
        done += m
    return per_example, (time.perf_counter() - t0) / n


def time_cholesky(peer_grid: int, peer_n: int, batch: int) -> tuple[float, float, bool]:
    """Factorisation seconds for the 128 x 128 grid (measured or extrapolated) and seconds per draw."""
    t0 = time.perf_counter()
    cov = exponential_covariance(peer_grid)
    lower = scipy.linalg.cholesky(cov, lower=True, overwrite_a=True, check_finite=False)
    factor = time.perf_counter() - t0
    extrapolated = peer_grid != SHAPE[0]
    scale = (SHAPE[0] / peer_grid) ** 2  # ratio of pixel counts
    factor_full = factor * scale**3
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    done = 0
    while done < peer_n:
        m = min(batch, peer_n - done)
        fields = (lower @ rng.standard_normal((lower.shape[0], m))).T.reshape(m, peer_grid, peer_grid)
        assert fields.shape[0] == m
        done += m
    draw = (time.perf_counter() - t0) / peer_n * scale**2
    return factor_full, draw, extrapolated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="labelled examples to generate")
    parser.add_argument("--batch", type=int, default=250, help="examples per dataset() call")
    parser.add_argument("--peer-grid", type=int, default=128, help="grid side for the Cholesky factorisation")
    parser.add_argument("--peer-n", type=int, default=1000, help="Cholesky draws to time")
    args = parser.parse_args()

    geo_example, geo_noise = time_geodiff(args.n, args.batch)
    factor, draw, extrapolated = time_cholesky(args.peer_grid, args.peer_n, args.batch)
    peer_example = draw + factor / args.n
    how = f"extrapolated as N^3 from a {args.peer_grid}^2 grid" if extrapolated else "measured on the 16384^2 matrix"
    print(f"examples: {args.n} labelled {SHAPE[0]}x{SHAPE[1]} (exponential atmosphere, L = {CORRELATION_LENGTH:g} m)")
    print(f"geodiff dataset(): {geo_example * 1e3:.2f} ms per labelled example "
          f"(atmosphere alone {geo_noise * 1e3:.2f} ms)")
    print(f"Cholesky peer: factorisation {factor:.1f} s ({how}), draw {draw * 1e3:.2f} ms "
          f"(timed over {args.peer_n} draws{'' if not extrapolated else ', scaled as N^2'})")
    print(f"Cholesky per example (draw + factorisation / {args.n}): {peer_example * 1e3:.2f} ms")
    print(f"ratio peer / geodiff, full labelled example vs peer noise only: {peer_example / geo_example:.2f}")
    print(f"ratio peer / geodiff, correlated noise alone: {peer_example / geo_noise:.2f}")


if __name__ == "__main__":
    main()
