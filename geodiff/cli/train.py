"""``geodiff train SCENE [SCENE ...] --out MODEL``: fit a diffusion model on the tiles of scenes.

On several processes: ``torchrun --nproc-per-node N -m geodiff train ...`` (DistributedDataParallel,
``--batch-size`` the global batch; rank 0 writes the model, the index and the checkpoints).
"""

from __future__ import annotations

import argparse
from typing import get_args

from geodiff.errors import GeodiffError
from geodiff.names import PRESETS
from geodiff.scaling.scaler import Method


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a diffusion model on one scene or a collection",
                              description="Train a diffusion model on the tiles of GeoTIFF/NetCDF/Zarr scenes: "
                                          "files or quoted globs ('dir/*.tif'), each with its own grid and CRS.")
    p.add_argument("scene", nargs="+", help="GeoTIFF, NetCDF or Zarr scenes, or quoted glob patterns")
    p.add_argument("--out", "-o", required=True, help="folder to save the model in")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out (and --index) even if geodiff did not write them")
    p.add_argument("--tile", type=int, default=64, help="tile size in pixels (default 64)")
    p.add_argument("--epochs", type=float, default=50, help="passes over the tiles (default 50)")
    p.add_argument("--train-steps", type=int, help="optimizer steps (overrides --epochs)")
    p.add_argument("--max-seconds", type=float, help="stop training after this many seconds")
    p.add_argument("--preset", default="small", choices=list(PRESETS), help="network size")
    p.add_argument("--scaling", default="minmax", choices=list(get_args(Method)),
                   help="per-tile scaling (default minmax); 'fixed' needs --fixed-range")
    p.add_argument("--fixed-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="the range, in scene units, that --scaling fixed maps to [-1, 1]")
    p.add_argument("--db", action="store_true", help="train on 10 log10 of linear backscatter")
    p.add_argument("--band", action="append", help="band of each file to use (repeat for several)")
    p.add_argument("--band-files", nargs="+", metavar="NAME",
                   help="band names (e.g. VV VH): files differing only by them are the bands of one scene")
    p.add_argument("--nodata", type=float, help="nodata value overriding the files'")
    p.add_argument("--units", help="physical units overriding the files'")
    p.add_argument("--max-nodata", type=float, default=0.5, help="drop tiles with more nodata (default 0.5)")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="tiles held out for the validation loss, by scene (or spatial block for one scene)")
    p.add_argument("--labels", metavar="SOURCE",
                   help="tile labels: 'attrs' (each scene's label attribute), 'json' (BigEarthNet sidecars) or "
                        "a vector file of labelled polygons")
    p.add_argument("--label-column", default="label", help="the polygons' column of class names (default label)")
    p.add_argument("--conditional", action="store_true", help="train a class-conditional model on the labels")
    p.add_argument("--upsample", type=int, metavar="F", help="train a super-resolution model by this factor")
    p.add_argument("--scale-condition", action="store_true",
                   help="tell the network each tile's scale, so that texture matches amplitude when samples are "
                        "put back in physical units")
    p.add_argument("--index", help="write the tile index here as GeoParquet (one row per tile, with its split)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader processes reading tiles ahead")
    p.add_argument("--checkpoint-dir", help="write the trainer's checkpoint here (at the end and every "
                                            "--checkpoint-every steps)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (default: at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --checkpoint-dir when there is one")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def label_source(value: str | None):
    """``attrs`` and ``json`` as they are; anything else is a vector file of labelled polygons."""
    if value is None or value in ("attrs", "json"):
        return value
    import geopandas as gpd

    try:
        return gpd.read_file(value)
    except (OSError, ValueError, RuntimeError) as err:  # pyogrio's DataSourceError is a RuntimeError
        raise GeodiffError(f"cannot read label polygons from {value}: {err}") from err


def run(args: argparse.Namespace) -> int:
    from geodiff.diffusion.train import distributed
    from geodiff.files import atomic_file, check_destination
    from geodiff.scaling import Scaler
    from geodiff.splits import split_tiles
    from geodiff.tile_dataset import TileDataset
    from geodiff.training import check_training_args, fit

    if args.resume and not args.checkpoint_dir:
        raise GeodiffError("--resume continues from --checkpoint-dir: give it")
    check_destination(args.out, overwrite=args.overwrite, inputs=args.scene, parents=True)
    if args.index:
        check_destination(args.index, overwrite=args.overwrite, inputs=args.scene, parents=True)
    options = {"train_steps": args.train_steps, "max_seconds": args.max_seconds, "preset": args.preset,
               "max_nodata": args.max_nodata, "batch_size": args.batch_size, "lr": args.lr,
               "device": args.device, "seed": args.seed, "val_fraction": args.val_fraction,
               "num_workers": args.num_workers, "resume": args.resume}
    if args.checkpoint_dir:
        options.update(checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every)
    check_training_args(epochs=args.epochs, train_steps=args.train_steps, batch_size=args.batch_size, lr=args.lr,
                        max_nodata=args.max_nodata, seed=args.seed, max_seconds=args.max_seconds,
                        val_fraction=args.val_fraction)
    group = distributed.init_from_env(args.device)
    try:
        scaler = Scaler(args.scaling, db=args.db, fixed_range=tuple(args.fixed_range) if args.fixed_range else None)
        dataset = TileDataset.from_scenes(args.scene, args.tile, max_nodata=args.max_nodata, scaler=scaler,
                                          band_files=args.band_files, band=args.band, nodata=args.nodata, units=args.units,
                                          labels=label_source(args.labels), label_column=args.label_column,
                                          progress=group.main)
        model = fit(dataset, args.tile, args.epochs, conditional=args.conditional, upsample=args.upsample,
                    scale_condition=args.scale_condition, **options, progress=group.main)
    finally:
        distributed.close()
    if not group.main:
        return 0
    if args.index:
        # The same call as fit's, so the column is the split the model was trained with.
        index = dataset.index.assign(split=split_tiles(dataset.index, args.val_fraction, seed=args.seed))
        with atomic_file(args.index, overwrite=args.overwrite) as tmp:
            index.to_parquet(tmp)
        print(f"tile index ({len(index)} tiles) written to {args.index}")
    model.save(args.out, overwrite=args.overwrite)
    print(model)
    print(f"saved to {args.out}")
    return 0
