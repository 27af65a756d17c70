"""The main job end to end on the embedded demo scene: train, sample, export, compare."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from geodiff.files import check_destination
from geodiff.io import to_geotiff, to_netcdf, to_zarr
from geodiff.io.reports import save_figure, write_dataset
from geodiff.progress import dask_progress

#: Everything the demo writes, by name, relative to its output folder.
OUTPUTS = {
    "scene": "demo-scene.tif",
    "model": "model",
    "scene_geotiff": "synthetic-scene.tif",
    "scene_netcdf": "synthetic-scene.nc",
    "scene_zarr": "synthetic-scene.zarr",
    "tiles": "synthetic-tiles.nc",
    "tiles_png": "real-vs-synthetic.png",
    "scene_png": "real-vs-synthetic-scene.png",
    "variogram": "variogram-comparison.nc",
    "variogram_png": "variogram-comparison.png",
}


@dataclass(frozen=True)
class DemoConfig:
    """Budget of the demo. The default trains for 3.5 minutes and finishes in about 7.5 on a
    2-core CPU (4 of them sampling two coherent scenes of fused windows): 32-pixel tiles train four times faster than 64-pixel ones, and overlapping
    training tiles give the short run more examples."""

    tile: int = 32
    overlap: int = 16
    preset: str = "small"
    train_seconds: float = 210.0
    train_steps: int = 3000
    lr: float = 5e-4
    ema_decay: float = 0.995
    scene_samples: int = 2
    tiles: int = 16
    sample_steps: int = 25
    seed: int = 0


QUICK = DemoConfig(preset="tiny", overlap=0, train_seconds=20.0, train_steps=300, lr=1e-3, ema_decay=0.99,
                   scene_samples=1, tiles=8, sample_steps=10)


def run_demo(out="geodiff-demo", config: DemoConfig = DemoConfig(), device=None, log=print, *,
             overwrite: bool = False) -> dict[str, Path]:
    """Build the demo scene, train a model on it, sample, and write every output into ``out``.

    Outputs of an earlier demo run are replaced; any other file or folder under one of the
    :data:`OUTPUTS` names stops the demo before any work, unless ``overwrite`` is set.

    Returns the paths written, by name.
    """
    import geodiff
    from geodiff import geostats
    from geodiff.synth import demo_scene
    from geodiff.tiling import TileGrid, nodata_filter, select

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = {name: out / file for name, file in OUTPUTS.items()}
    for path in target.values():
        check_destination(path, overwrite=overwrite)
    paths: dict[str, Path] = {}
    started = time.monotonic()

    log("1/5 building the demo scene (synthetic Sentinel-1 LOS velocity, UTM 33N, 100 m)")
    scene = geodiff.open_scene(demo_scene(), chunks=None)
    paths["scene"] = to_geotiff(scene, target["scene"], overwrite=overwrite)[0]

    log(f"2/5 training a {config.preset!r} diffusion model on {config.tile}-pixel tiles "
        f"(at most {config.train_seconds:.0f} s)")
    model = scene.diffusion.fit(tile=config.tile, overlap=config.overlap, train_steps=config.train_steps,
                                preset=config.preset, lr=config.lr, ema_decay=config.ema_decay,
                                max_seconds=config.train_seconds, device=device, seed=config.seed, log_every=10)
    paths["model"] = model.save(target["model"], overwrite=overwrite)
    log(str(model))

    log(f"3/5 sampling {config.scene_samples} synthetic scene(s) on the demo grid (fused windows)")
    synth = scene.diffusion.sample(n=config.scene_samples, sample_steps=config.sample_steps, seed=config.seed, device=device)
    with dask_progress(True, "sampling the scene"):
        synth = synth.persist()  # generated once, tile by tile, for all three formats
    paths["scene_geotiff"] = to_geotiff(synth, target["scene_geotiff"], overwrite=overwrite)[0]
    paths["scene_netcdf"] = to_netcdf(synth, target["scene_netcdf"], name="los_velocity",
                                        overwrite=overwrite)
    paths["scene_zarr"] = to_zarr(synth, target["scene_zarr"], name="los_velocity", overwrite=overwrite)

    log(f"4/5 sampling {config.tiles} synthetic tiles")
    grid = TileGrid.from_scene(scene, config.tile)
    template = grid.tile(scene, 0)  # tiles take its metric coordinates, so lags are in metres
    tiles = model.sample_tiles(config.tiles, sample_steps=config.sample_steps, seed=config.seed, device=device,
                               like=template, progress=False)
    paths["tiles"] = to_netcdf(tiles, target["tiles"], name="los_velocity", overwrite=overwrite)
    stack = grid.stack(scene)
    real = select(stack, nodata_filter(stack, 0.0)).compute()
    real = real.rename(tile="sample").assign_coords(y=template.y.values, x=template.x.values)
    real = real.rio.write_crs(scene.rio.crs)

    log("5/5 comparing real and synthetic scenes and tiles (figures, seams and semivariograms)")
    paths["scene_png"] = _plot_scenes(scene, synth, target["scene_png"], overwrite, log)
    paths["tiles_png"] = _plot_tiles(real, tiles, target["tiles_png"], config.seed, overwrite)
    comparison = geostats.compare(real, tiles)
    paths["variogram"] = write_dataset(comparison, target["variogram"], overwrite=overwrite)
    paths["variogram_png"] = save_figure(geostats.plot(comparison)[0], target["variogram_png"],
                                         overwrite=overwrite)
    log(f"done in {time.monotonic() - started:.0f} s; outputs in {out.resolve()}:")
    for name, path in paths.items():
        log(f"  {name:14s} {path}")
    return paths


def _plot_scenes(scene, synth, path: Path, overwrite: bool, log) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from geodiff.metrics import seam_statistic
    from geodiff.metrics.report import scenes_figure

    real, synthetic = scene.values, synth.values
    seams = [seam_statistic(real).statistic, *(seam_statistic(s).statistic for s in synthetic)]
    log("   seam statistic (about 1.1 without seams): real " + f"{seams[0]:.2f}, synthetic "
        + ", ".join(f"{s:.2f}" for s in seams[1:]))
    titles = ["real"] + [f"synthetic {k}" for k in range(len(synthetic))]
    fig = scenes_figure(real, synthetic, units=synth.attrs.get("units", ""), cmap="RdBu_r",
                        titles=[f"{t} (seams {s:.2f})" for t, s in zip(titles, seams)],
                        title="Demo scene: real (left) and synthetic scenes on its grid")
    return save_figure(fig, path, overwrite=overwrite)


def _plot_tiles(real, synthetic, path: Path, seed: int, overwrite: bool) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from geodiff.metrics.report import tiles_figure

    fig = tiles_figure(real.values, synthetic.values, units=synthetic.attrs.get("units", ""), seed=seed, n=6,
                       cmap="RdBu_r", title="Demo scene: real tiles (top) and diffusion samples (bottom)")
    return save_figure(fig, path, overwrite=overwrite)
