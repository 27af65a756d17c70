"""``geodiff variogram``: empirical semivariogram of a scene, optionally against synthetic samples."""

from __future__ import annotations

import argparse
from pathlib import Path

import xarray as xr

from geodiff.errors import SceneError
from geodiff.names import ESTIMATORS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "variogram",
        help="semivariogram of a scene (and comparison with synthetic samples)",
        description=(
            "Exact empirical semivariogram of a scene (NaN/nodata masked, lags in the CRS's linear "
            "unit, metres for geographic CRSs). With --compare, the real curve against the "
            "synthetic ensemble with 95 %% bands and scores."
        ),
    )
    p.add_argument("scene", type=Path, help="GeoTIFF, NetCDF or Zarr scene")
    p.add_argument(
        "--compare",
        type=Path,
        metavar="SYNTH",
        help="synthetic samples (sample, y, x) to compare with",
    )
    p.add_argument("--plot", type=Path, metavar="PNG", help="write a figure")
    p.add_argument(
        "--out",
        "-o",
        type=Path,
        metavar="NC",
        help="write the variogram (or comparison) Dataset as NetCDF",
    )
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out / --plot files that geodiff did not write")
    p.add_argument("--bins", type=int, default=None, help="number of lag bins (default: up to 30)")
    p.add_argument(
        "--max-lag",
        type=float,
        default=None,
        help="largest lag, in lag units (default: half the shorter side)",
    )
    p.add_argument(
        "--direction",
        type=float,
        action="append",
        help="sector centre in degrees from east (repeatable)",
    )
    p.add_argument(
        "--tolerance", type=float, default=22.5, help="sector half-width in degrees (default 22.5)"
    )
    p.add_argument("--estimator", choices=ESTIMATORS, default="matheron")
    p.add_argument(
        "--fit",
        metavar="MODEL",
        help="fit a model (spherical, exponential, gaussian, matern, stable, power)",
    )
    p.add_argument(
        "--nodata", type=float, default=None, help="nodata value overriding the file's (e.g. 0)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    p.set_defaults(func=run)


def _open(path: Path, nodata: float | None) -> xr.DataArray:
    from geodiff.io import open_scene

    try:
        return open_scene(path, nodata=nodata)
    except SceneError:
        # Sample stacks (sample, y, x) are not scenes; read the single gridded variable as is.
        if path.suffix.lower() not in (".nc", ".nc4", ".zarr"):
            raise
        ds = (
            xr.open_zarr(path, decode_coords="all")
            if path.suffix == ".zarr"
            else xr.open_dataset(path, decode_coords="all", chunks={})
        )
        grids = [v for v in ds.data_vars if {"y", "x"} <= set(ds[v].dims)]
        if len(grids) != 1:
            raise SceneError(
                f"{path}: expected one variable with y/x dims, found {grids}"
            ) from None
        return ds[grids[0]]


def _table(ds: xr.Dataset) -> str:
    """One gamma/npairs column pair per direction (or band), averaged over other dims."""
    unit = ds.attrs.get("lag_units", "")
    g, n = ds.gamma, ds.npairs
    split = "direction" if "direction" in g.dims else None
    other = [d for d in g.dims if d not in ("lag", split)]
    if other:
        g, n = g.mean(other), n.sum(other)
    cols = (
        [(str(k), g.sel({split: k}), n.sel({split: k})) for k in g[split].values]
        if split
        else [("", g, n)]
    )
    head = f"{'lag [' + unit + ']':>16}"
    for name, _, _ in cols:
        label = ("mean " if other else "") + "gamma" + (f" {name}deg" if split else "")
        head += f" {label:>18} {'npairs':>10}"
    lines = [head]
    for i, lag in enumerate(ds.lag.values):
        row = f"{lag:16.6g}"
        for _, gc, nc in cols:
            row += f" {float(gc[i]):18.6g} {int(nc[i]):10d}"
        lines.append(row)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from geodiff.files import check_destination

    inputs = [args.scene, args.compare]
    for out in (args.out, args.plot):  # refused before any work
        if out is not None:
            check_destination(out, overwrite=args.overwrite, inputs=inputs)
    result = _compute(args)
    _write(args, result)
    return 0


def _compute(args: argparse.Namespace) -> xr.Dataset:
    """Print and return the variogram, or the comparison with the synthetic samples."""
    from geodiff import geostats

    scene = _open(args.scene, args.nodata)
    if args.compare is not None:
        synth = _open(args.compare, None)
        result = geostats.compare(
            scene,
            synth,
            bins=args.bins,
            max_lag=args.max_lag,
            estimator=args.estimator,
            seed=args.seed,
        )
        print(
            f"real {args.scene} vs synthetic {args.compare} ({result.attrs['n_synthetic']} samples)"
        )
        unit = result.attrs.get("lag_units", "")
        print(
            f"{'lag [' + unit + ']':>16} {'real':>12} {'synth mean':>12} {'synth 2.5%':>12} {'synth 97.5%':>12} {'z':>8}"
        )
        for k in range(result.sizes["lag"]):
            r = result.isel(lag=k)
            print(
                f"{float(r.lag):16.6g} {float(r.real_mean):12.6g} {float(r.synthetic_mean):12.6g} "
                f"{float(r.synthetic_lower):12.6g} {float(r.synthetic_upper):12.6g} {float(r.z):8.2f}"
            )
        print(f"fraction of lags in band: {float(result.fraction_in_band):.3f}")
        print(f"RMS log-ratio: {float(result.rms_log_ratio):.4f}")
    else:
        result = geostats.semivariogram(
            scene,
            bins=args.bins,
            max_lag=args.max_lag,
            direction=args.direction
            if args.direction is None or len(args.direction) > 1
            else args.direction[0],
            tolerance=args.tolerance,
            estimator=args.estimator,
        ).compute()
        print(f"{args.scene}: {result.attrs['spacing_method']}")
        print(_table(result))
        if args.fit:
            if result.gamma.ndim != 1:
                raise SceneError(
                    "--fit needs one isotropic curve: a single-band scene without --direction"
                )
            print(geostats.fit_model(args.fit, result))
    return result


def _write(args: argparse.Namespace, result: xr.Dataset) -> None:
    from geodiff import geostats
    from geodiff.io.reports import save_figure, write_dataset

    if args.out is not None:
        write_dataset(result, args.out, overwrite=args.overwrite)
        print(f"wrote {args.out}")
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")

        fig, ax = geostats.plot(result)
        ax.set_title(f"{args.scene.name}\n{ax.get_title()}".strip(), fontsize=9)
        save_figure(fig, args.plot, overwrite=args.overwrite)
        print(f"wrote {args.plot}")
