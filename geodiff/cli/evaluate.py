"""``geodiff evaluate REAL SYNTH --out REPORT``: how close synthetic tiles are to real ones."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score synthetic tiles against real data, beside the real-vs-real floor",
        description="Every metric of geodiff.metrics (semivariograms, power spectra, tile statistics, pixel "
                    "distributions and, on a feature extractor, FID, KID and precision/recall) of SYNTH against "
                    "REAL, each beside its real-vs-real floor, written as a JSON and HTML report with figures.")
    p.add_argument("real", type=Path, help="real scene (cut into complete tiles of SYNTH's size) or tile stack")
    p.add_argument("synthetic", type=Path, help="synthetic tile stack (sample, [band,] y, x), e.g. from geodiff sample")
    p.add_argument("--out", "-o", type=Path, required=True, help="report folder")
    p.add_argument("--reference", type=Path,
                   help="real tiles the model was trained on (scene or tile stack): the floor is then REAL against "
                        "draws of SYNTH's size from them, and a new extractor trains on them")
    p.add_argument("--extractor", type=Path,
                   help="feature extractor folder to score on (default: train one on REAL and save it in the report)")
    p.add_argument("--no-features", action="store_true", help="leave out FID, KID and precision/recall")
    p.add_argument("--extractor-steps", type=int, default=1000, help="training steps of a new extractor")
    p.add_argument("--draws", type=int, default=3, help="draws of each real-vs-real floor (default 3)")
    p.add_argument("--nodata", type=float, help="nodata value of REAL overriding the file's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace --out even if geodiff did not write it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from geodiff.files import check_destination
    from geodiff.metrics import evaluate, write_report
    from geodiff.metrics.features import load_extractor, train_extractor

    check_destination(args.out, overwrite=args.overwrite, inputs=[args.real, args.synthetic, args.reference],
                      parents=True)
    synthetic = _stack(args.synthetic, None)
    tile = (synthetic.sizes["y"], synthetic.sizes["x"])
    real = _real_tiles(args.real, tile, args.nodata)
    reference = None if args.reference is None else _real_tiles(args.reference, tile, args.nodata)
    extractor, trained = None, False
    if args.extractor is not None:
        extractor = load_extractor(args.extractor)
    elif not args.no_features:
        dim = 64
        # The floor's smallest set: half the real tiles, or with a reference the real set and a draw of SYNTH's size.
        smallest = (real.sizes["sample"] // 2 if reference is None
                    else min(real.sizes["sample"], synthetic.sizes["sample"], reference.sizes["sample"]))
        if smallest > dim:
            extractor = train_extractor(real if reference is None else reference, dim=dim,
                                        train_steps=args.extractor_steps, seed=args.seed)
            trained = True
        else:
            print(f"floor sets of {smallest} tiles: too few for FID (sets of more than {dim}); "
                  "leaving out the feature metrics")
    evaluation = evaluate(real, synthetic, extractor=extractor, draws=args.draws, seed=args.seed, reference=reference)
    print(evaluation.table())
    write_report(evaluation, real, synthetic, args.out, extractor=extractor, save_extractor=trained,
                 title=f"{args.synthetic.name} against {args.real.name}", seed=args.seed,
                 overwrite=args.overwrite)
    print(f"wrote {args.out / 'report.html'}")
    return 0


def _stack(path: Path, nodata):
    import geodiff

    return geodiff.open_scene(path, stack_dim="sample", nodata=nodata, chunks=None)


def _real_tiles(path: Path, tile: tuple[int, int], nodata):
    """REAL as ``(sample, [band,] y, x)`` tiles: a stack as it is, a scene cut into complete tiles."""
    from geodiff.tiling import TileGrid, nodata_filter, select

    real = _stack(path, nodata)
    if "sample" in real.dims:
        return real
    tiles = TileGrid.from_scene(real, tile).stack(real)
    return select(tiles, nodata_filter(tiles, 0.0)).compute().rename(tile="sample")
