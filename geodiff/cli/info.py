"""``geodiff info PATH``: describe a saved model or a scene."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="describe a model folder or a scene",
                              description="Print what a model folder or a raster scene holds.")
    p.add_argument("path", help="model folder, or GeoTIFF/NetCDF/Zarr scene")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dask
    import numpy as np

    import geodiff
    from geodiff.model import summary_json

    path = Path(args.path)
    if (path / "model.json").is_file():
        model = geodiff.load_model(path, device="cpu")
        print(model)
        print(summary_json(model))
        return 0
    scene = geodiff.open_scene(path, stack_dim="sample")  # geodiff's own stacks too
    # One streaming pass over the chunks: a Sentinel-1 scene never has to fit in memory.
    valid, low, high, mean, std = dask.compute(np.isfinite(scene).mean(), scene.min(), scene.max(),
                                               scene.mean(), scene.std())
    print(f"{path}: dims {dict(scene.sizes)}, dtype {scene.dtype}, units {scene.attrs.get('units', 'unknown')}")
    print(f"  CRS {scene.rio.crs}, resolution {scene.rio.resolution() if scene.rio.crs else 'n/a'}")
    print(f"  nodata {scene.encoding.get('_FillValue')}, valid pixels {float(valid):.1%}")
    if float(valid) > 0:
        print(f"  range {float(low):.4g} .. {float(high):.4g}, mean {float(mean):.4g}, std {float(std):.4g}")
    return 0
