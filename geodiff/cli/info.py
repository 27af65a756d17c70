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
    import numpy as np

    import geodiff
    from geodiff.model import summary_json

    path = Path(args.path)
    if (path / "model.json").is_file():
        model = geodiff.load_model(path, device="cpu")
        print(model)
        print(summary_json(model))
        return 0
    scene = geodiff.open_scene(path)
    values = scene.values
    valid = np.isfinite(values)
    print(f"{path}: dims {dict(scene.sizes)}, dtype {scene.dtype}, units {scene.attrs.get('units', 'unknown')}")
    print(f"  CRS {scene.rio.crs}, resolution {scene.rio.resolution() if scene.rio.crs else 'n/a'}")
    print(f"  nodata {scene.encoding.get('_FillValue')}, valid pixels {valid.mean():.1%}")
    if valid.any():
        print(f"  range {np.nanmin(values):.4g} .. {np.nanmax(values):.4g}, mean {np.nanmean(values):.4g}, "
              f"std {np.nanstd(values):.4g}")
    return 0
