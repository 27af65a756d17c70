"""``geodiff demo``: the main job on the embedded demo scene."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train and sample on the embedded demo scene",
                              description="Build the embedded synthetic Sentinel-1 scene, train a small diffusion "
                                          "model on it, sample synthetic scenes and tiles, and write GeoTIFF, "
                                          "NetCDF, Zarr and PNG outputs.")
    p.add_argument("--out", "-o", default="geodiff-demo", help="output folder (default ./geodiff-demo)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files in --out that geodiff did not write")
    p.add_argument("--train-seconds", type=float, help="training time budget in seconds (default 210)")
    p.add_argument("--quick", action="store_true", help="a tiny model and short budget (about a minute)")
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from geodiff.demo import QUICK, DemoConfig, run_demo

    config = QUICK if args.quick else DemoConfig()
    if args.train_seconds is not None:
        config = replace(config, train_seconds=args.train_seconds)
    run_demo(args.out, config, device=args.device, overwrite=args.overwrite)
    return 0
