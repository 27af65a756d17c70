"""``geodiff sample MODEL --out FILE``: synthetic tiles, or synthetic scenes on a scene's grid."""

from __future__ import annotations

import argparse

from geodiff import recipe
from geodiff.errors import GeodiffError
from geodiff.io import to_geotiff, to_netcdf, to_zarr
from geodiff.names import COEFFICIENTS, SAMPLERS, SCENE_METHODS, TIMESTEP_SPACINGS

_WRITERS = {".tif": to_geotiff, ".tiff": to_geotiff, ".nc": to_netcdf, ".zarr": to_zarr}


def register(subparsers) -> None:
    p = subparsers.add_parser("sample", help="sample synthetic tiles or scenes from a model",
                              description="Sample from a saved model. With --like SCENE the samples cover that "
                                          "scene's grid (CRS, nodata mask); otherwise tile-sized samples.")
    p.add_argument("model", help="model folder written by `geodiff train`")
    p.add_argument("--out", "-o", required=True, help="output .tif, .nc or .zarr")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out even if geodiff did not write it (never an input of the call)")
    p.add_argument("-n", type=int, default=4, help="number of samples (default 4)")
    p.add_argument("--like", help="scene whose grid the samples take")
    p.add_argument("--sampler", choices=list(SAMPLERS),
                   help=f"sampler (default {recipe.SAMPLER}; ddpm with --strength)")
    p.add_argument("--sample-steps", type=int, default=recipe.SAMPLE_STEPS,
                   help=f"network evaluations per sample (default {recipe.SAMPLE_STEPS})")
    p.add_argument("--timestep-spacing", default=recipe.TIMESTEP_SPACING, choices=list(TIMESTEP_SPACINGS),
                   help=f"which trained timesteps the sampler visits (default {recipe.TIMESTEP_SPACING})")
    p.add_argument("--method", default="fused", choices=list(SCENE_METHODS),
                   help="with --like: one coherent sample per scene from fused windows (default), or "
                        "independent tiles (a patchwork, for comparison)")
    p.add_argument("--stride", type=int, help="with --method fused: window stride in pixels (default half a tile)")
    p.add_argument("--block", type=int, help="with --method fused: block size in pixels (default 8 tiles)")
    p.add_argument("--strength", type=float,
                   help="a super-resolution model: start from the bicubic interpolation of --like at this "
                        "fraction of the trained timesteps (0.05: bicubic's PSNR and some detail) instead of "
                        "from pure noise")
    p.add_argument("--renormalise", action="store_true",
                   help="with --method tiles or without --like: stretch each generated tile onto the "
                        "normalised range before rescaling it")
    p.add_argument("--coefficients", default="location", choices=list(COEFFICIENTS),
                   help="rescale scene tiles with the scene's local range, or draws from the training tiles")
    p.add_argument("--no-mask", action="store_true", help="do not copy the scene's nodata mask")
    p.add_argument("--nodata", type=float, help="nodata value of the --like scene overriding the file's")
    p.add_argument("--labels", metavar="CLASS_OR_FILE",
                   help="a class-conditional model's class, or a vector file of labelled polygons (a label map "
                        "on --like)")
    p.add_argument("--label-column", default="label", help="the polygons' column of class names (default label)")
    p.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance weight (default 0)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="compute on the dask.distributed cluster of this scheduler (tcp://host:8786); its "
                        "workers write the output, so it must be on a file system they share")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import geodiff
    from geodiff.cluster import connect
    from geodiff.files import check_destination

    out = check_destination(args.out, overwrite=args.overwrite, inputs=[args.model, args.like])
    writer = _WRITERS.get(out.suffix.lower())
    if writer is None:
        raise GeodiffError(f"cannot tell the format of {out}: use a .tif, .nc or .zarr name")
    # With a scheduler the workers compute: the model travels to them from the CPU, and each
    # moves it to its own device.
    model = geodiff.load_model(args.model, device="cpu" if args.scheduler else args.device)
    client = connect(args.scheduler) if args.scheduler else None
    try:
        _sample_and_write(args, model, out, writer)
    finally:
        if client is not None:
            client.close()
    return 0


def _sample_and_write(args: argparse.Namespace, model, out, writer) -> None:
    import geodiff
    from geodiff.cli.train import label_source
    from geodiff.sampling import sample_scene

    labels = args.labels
    # Unset, each call takes its own default: the recipe's, or DDPM for a start from bicubic.
    sampler = {} if args.sampler is None else {"sampler": args.sampler}
    if args.strength is not None and not model.upsample_factor:
        raise GeodiffError("--strength starts a super-resolution model from bicubic; this model does not upsample")
    if model.upsample_factor:
        if not args.like:
            raise GeodiffError("a super-resolution model upsamples a coarse scene: give it as --like")
        coarse = geodiff.open_scene(args.like, band=model.bands, nodata=args.nodata)
        synth = model.upsample(coarse, args.n, sample_steps=args.sample_steps, seed=args.seed, strength=args.strength,
                               mask=not args.no_mask, batch_size=args.batch_size, device=args.device,
                               timestep_spacing=args.timestep_spacing, stride=args.stride, block=args.block, **sampler)
    elif args.like:
        scene = geodiff.open_scene(args.like, band=model.bands, nodata=args.nodata)
        if labels is not None and labels not in (model.classes or ()):
            labels = label_source(labels)
        synth = sample_scene(scene, args.n, model, sample_steps=args.sample_steps, seed=args.seed,
                             mask=not args.no_mask, coefficients=args.coefficients,
                             batch_size=args.batch_size, device=args.device,
                             timestep_spacing=args.timestep_spacing, renormalise=args.renormalise,
                             method=args.method, stride=args.stride, block=args.block, labels=labels,
                             guidance=args.guidance, label_column=args.label_column, **sampler)
    else:
        synth = model.sample_tiles(args.n, sample_steps=args.sample_steps, seed=args.seed,
                                   batch_size=args.batch_size, device=args.device,
                                   timestep_spacing=args.timestep_spacing, renormalise=args.renormalise,
                                   labels=labels, guidance=args.guidance, **sampler)
    writer(synth, out, overwrite=args.overwrite)  # its bar counts the tiles generated while written
    print(f"wrote {args.n} sample(s) to {out}")

