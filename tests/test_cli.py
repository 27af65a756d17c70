"""The geodiff command line: help, bad input, and a tiny train -> sample -> info round trip."""

import subprocess
import sys

import numpy as np
import pytest
import rioxarray
import xarray as xr

from geodiff.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "geodiff", *args], capture_output=True, text=True)


@pytest.mark.parametrize("command", ["train", "sample", "info", "demo", "variogram", "evaluate"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: geodiff " + command in capsys.readouterr().out


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    missing = run("info", str(tmp_path / "nope.tif"))
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines() == [f"geodiff info: error: no such file or directory: {tmp_path / 'nope.tif'}"]
    (tmp_path / "text.tif").write_text("hello")
    not_raster = run("train", str(tmp_path / "text.tif"), "--out", str(tmp_path / "m"))
    assert not_raster.returncode != 0 and "not a raster" in not_raster.stderr
    assert len(not_raster.stderr.strip().splitlines()) == 1


def test_train_sample_info_round_trip(mexico_city_a, tmp_path):
    scene = mexico_city_a / "cropA_20180106-20180130_VV_8rlks_eqa_unw.tif"
    model = tmp_path / "model"
    assert main(["train", str(scene), "--out", str(model), "--tile", "16", "--train-steps", "3",
                 "--preset", "tiny", "--batch-size", "4"]) == 0
    assert (model / "model.safetensors").is_file()
    out = tmp_path / "synth.tif"
    assert main(["sample", str(model), "--like", str(scene), "-n", "2", "--sample-steps", "2", "--out", str(out)]) == 0
    synth = rioxarray.open_rasterio(out, masked=True)
    real = rioxarray.open_rasterio(scene, masked=True)
    assert synth.shape == (2, *real.shape[1:]) and synth.rio.crs == real.rio.crs
    np.testing.assert_array_equal(np.isnan(synth.values[1]), np.isnan(real.values[0]))
    patchwork = tmp_path / "tiles.zarr"
    assert main(["sample", str(model), "--like", str(scene), "-n", "1", "--sample-steps", "2", "--method", "tiles",
                 "--out", str(patchwork)]) == 0
    assert xr.open_zarr(patchwork)["synthetic"].attrs["method"] == "tiles"
    odd = run("sample", str(model), "--like", str(scene), "--stride", "40", "--out", str(tmp_path / "o.tif"))
    assert odd.returncode != 0 and "stride" in odd.stderr and len(odd.stderr.strip().splitlines()) == 1
    tiles = tmp_path / "tiles.nc"
    assert main(["sample", str(model), "-n", "3", "--sample-steps", "2", "--out", str(tiles)]) == 0
    assert xr.open_dataset(tiles)["data"].shape == (3, 16, 16)
    info = run("info", str(model))
    assert info.returncode == 0 and "DiffusionModel" in info.stdout and "rad" in info.stdout
    bad = run("sample", str(model), "--out", str(tmp_path / "x.png"))
    assert bad.returncode != 0 and ".tif, .nc or .zarr" in bad.stderr
    unwritable = run("sample", str(model), "-n", "1", "--sample-steps", "1", "--out", "/proc/geodiff/x.tif")
    assert unwritable.returncode != 0  # refused before sampling: no progress bar, one line
    assert unwritable.stderr.strip().splitlines() == [
        "geodiff sample: error: output folder /proc/geodiff does not exist; create it first"]


def test_info_on_a_scene_matches_rasterio(campi_flegrei):
    import rasterio

    path = campi_flegrei / "vel.tif"
    with rasterio.open(path) as src:
        raw = src.read(1)
    out = run("info", str(path))
    assert out.returncode == 0 and "mm/yr" in out.stdout and "EPSG:4326" in out.stdout
    assert f"valid pixels {np.isfinite(raw).mean():.1%}" in out.stdout
    assert f"mean {np.nanmean(raw):.4g}" in out.stdout


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from tests.conftest import require_data

    scene = require_data("insar", "campi_flegrei", "vel.tif")
    out = tmp_path_factory.mktemp("cli") / "model"
    assert main(["train", str(scene), "--out", str(out), "--tile", "16", "--train-steps", "1", "--preset", "tiny"]) == 0
    return out


@pytest.mark.parametrize("command, args, says", [
    ("train", ["--train-steps", "0"], "train_steps must be"),
    ("train", ["--batch-size", "0"], "batch_size must be"),
    ("train", ["--seed", "-1"], "seed must be"),
    ("train", ["--max-nodata", "2"], "max_nodata"),
    ("train", ["--epochs", "0"], "epochs must be"),
    ("train", ["--db"], "dB needs linear backscatter power"),
    ("sample", ["--sample-steps", "5000"], "sample_steps must be between 1 and the model's 1000 timesteps"),
    ("sample", ["--sample-steps", "0"], "sample_steps must be between"),
    ("sample", ["--batch-size", "0"], "batch_size must be"),
    ("sample", ["--seed", "-1"], "seed must be"),
    ("sample", ["-n", "0"], "n must be"),
])
def test_bad_arguments_are_one_line_not_a_traceback(command, args, says, tiny_model_dir, campi_flegrei,
                                                    tmp_path, capsys):
    capsys.readouterr()
    if command == "train":
        argv = ["train", str(campi_flegrei / "vel.tif"), "--out", str(tmp_path / "m"), "--tile", "16",
                "--preset", "tiny", *args]
    else:
        argv = ["sample", str(tiny_model_dir), "--out", str(tmp_path / "s.tif"), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"geodiff {command}: error: ") and says in err[0], err
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_missing_gpu_is_not_blamed_on_the_model(tiny_model_dir, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["sample", str(tiny_model_dir), "--out", str(tmp_path / "s.tif"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and "corrupt" not in err


def test_every_named_choice_is_one_the_library_implements():
    from geodiff import names
    from geodiff.diffusion.unet import PRESETS, UNet

    assert tuple(PRESETS) == names.PRESETS
    assert all(UNet.from_preset(name, 1).config for name in names.PRESETS)


def test_train_offers_every_scaler_the_library_has_and_fixed_takes_its_range(tmp_path):
    from typing import get_args

    import geodiff
    from geodiff.cli import build_parser
    from geodiff.scaling.scaler import Method
    from geodiff.synth import demo_scene

    choices = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions
                   if a.dest == "scaling").choices
    assert list(choices) == list(get_args(Method))
    scene, = geodiff.to_geotiff(demo_scene().isel(y=slice(140, 172), x=slice(140, 172)), tmp_path / "s.tif")
    argv = ["train", str(scene), "--out", str(tmp_path / "m"), "--tile", "16", "--train-steps", "1", "--preset", "tiny",
            "--scaling", "fixed", "--fixed-range", "-50", "50"]
    assert main(argv) == 0
    assert geodiff.load_model(tmp_path / "m").scaler.fixed_range == (-50.0, 50.0)


def test_cli_trains_conditional_and_upsampling_models_and_samples_them(tmp_path, capsys):
    import geopandas as gpd
    from shapely.geometry import box

    from geodiff.tiling.augment import coarsened
    from tests.test_collection import _scene

    scene = _scene(0, shape=(48, 64), nan=0.0)
    scene.rio.to_raster(tmp_path / "scene.tif")
    left, bottom, right, top = scene.rio.bounds()
    middle = (left + right) / 2
    gpd.GeoDataFrame({"cover": ["sea", "land"]}, geometry=[box(left, bottom, middle, top), box(middle, bottom, right, top)],
                     crs=scene.rio.crs).to_file(tmp_path / "regions.gpkg")
    common = ["--tile", "16", "--train-steps", "2", "--preset", "tiny", "--batch-size", "4"]
    assert main(["train", str(tmp_path / "scene.tif"), "--out", str(tmp_path / "cond"), "--labels",
                 str(tmp_path / "regions.gpkg"), "--label-column", "cover", "--conditional", *common]) == 0
    assert main(["sample", str(tmp_path / "cond"), "--out", str(tmp_path / "sea.tif"), "-n", "2", "--labels", "sea",
                 "--guidance", "1", "--sample-steps", "2"]) == 0
    assert main(["sample", str(tmp_path / "cond"), "--out", str(tmp_path / "map.tif"), "-n", "1", "--like",
                 str(tmp_path / "scene.tif"), "--labels", str(tmp_path / "regions.gpkg"), "--label-column", "cover",
                 "--sample-steps", "2"]) == 0
    mapped = rioxarray.open_rasterio(tmp_path / "map.tif")
    assert mapped.shape == (1, 48, 64) and mapped.attrs["labels"] == "2 polygons"
    assert main(["train", str(tmp_path / "scene.tif"), "--out", str(tmp_path / "sr"), "--upsample", "2", *common]) == 0
    coarsened(scene, 2).rio.to_raster(tmp_path / "coarse.tif")
    assert main(["sample", str(tmp_path / "sr"), "--out", str(tmp_path / "fine.tif"), "-n", "1", "--like",
                 str(tmp_path / "coarse.tif"), "--sample-steps", "2"]) == 0
    fine = rioxarray.open_rasterio(tmp_path / "fine.tif")
    assert fine.shape == (1, 48, 64) and fine.rio.transform() == scene.rio.transform()
    assert main(["sample", str(tmp_path / "sr"), "--out", str(tmp_path / "started.tif"), "-n", "1", "--like",
                 str(tmp_path / "coarse.tif"), "--strength", "0.1"]) == 0
    started = rioxarray.open_rasterio(tmp_path / "started.tif")
    assert started.attrs["strength"] == 0.1 and started.attrs["sampler"] == "ddpm"
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "cond"), "--out", str(tmp_path / "no.tif"), "--strength", "0.1"]) == 2
    assert "does not upsample" in capsys.readouterr().err


def test_cli_trains_a_scale_conditioned_model_and_samples_a_scene(tmp_path):
    from geodiff.model import load_model
    from geodiff.scaling import ScaleCondition
    from tests.test_collection import _scene

    _scene(0, shape=(48, 64), nan=0.0).rio.to_raster(tmp_path / "scene.tif")
    assert main(["train", str(tmp_path / "scene.tif"), "--out", str(tmp_path / "scaled"), "--scale-condition",
                 "--tile", "16", "--train-steps", "2", "--preset", "tiny", "--batch-size", "4"]) == 0
    model = load_model(tmp_path / "scaled")
    assert model.scale_condition == ScaleCondition.fit(model.coefficients.scale)
    assert main(["sample", str(tmp_path / "scaled"), "--out", str(tmp_path / "synthetic.tif"), "-n", "1", "--like",
                 str(tmp_path / "scene.tif"), "--sample-steps", "2"]) == 0
    assert rioxarray.open_rasterio(tmp_path / "synthetic.tif").shape == (1, 48, 64)
