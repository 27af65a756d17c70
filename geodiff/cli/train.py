"""``geodiff train SCENE --out MODEL``: fit a diffusion model on a scene's tiles."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a diffusion model on a scene",
                              description="Train a diffusion model on the tiles of a GeoTIFF/NetCDF/Zarr scene.")
    p.add_argument("scene", help="GeoTIFF, NetCDF or Zarr scene")
    p.add_argument("--out", "-o", required=True, help="folder to save the model in")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out even if it is a folder geodiff did not write")
    p.add_argument("--tile", type=int, default=64, help="tile size in pixels (default 64)")
    p.add_argument("--epochs", type=float, default=50, help="passes over the tiles (default 50)")
    p.add_argument("--steps", type=int, help="optimizer steps (overrides --epochs)")
    p.add_argument("--max-seconds", type=float, help="stop training after this many seconds")
    p.add_argument("--preset", default="small", choices=["tiny", "small", "base"], help="network size")
    p.add_argument("--scaling", default="minmax", choices=["minmax", "robust", "standard"])
    p.add_argument("--db", action="store_true", help="train on 10 log10 of linear backscatter")
    p.add_argument("--band", action="append", help="band to use (repeat for several)")
    p.add_argument("--nodata", type=float, help="nodata value overriding the file's")
    p.add_argument("--units", help="physical units overriding the file's")
    p.add_argument("--max-nodata", type=float, default=0.5, help="drop tiles with more nodata (default 0.5)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import geodiff
    from geodiff.files import check_destination
    from geodiff.scaling import Scaler
    from geodiff.training import fit_scene

    check_destination(args.out, overwrite=args.overwrite, inputs=[args.scene], parents=True)
    scene = geodiff.open_scene(args.scene, band=args.band, nodata=args.nodata, units=args.units)
    model = fit_scene(scene, args.tile, args.epochs, steps=args.steps, max_seconds=args.max_seconds,
                      preset=args.preset, scaler=Scaler(args.scaling, db=args.db), max_nodata=args.max_nodata,
                      batch_size=args.batch_size, lr=args.lr, device=args.device, seed=args.seed)
    model.save(args.out, overwrite=args.overwrite)
    print(model)
    print(f"saved to {args.out}")
    return 0
