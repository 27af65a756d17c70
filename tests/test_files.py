"""Safe writing: nothing geodiff did not write is replaced without being told, inputs are never
written onto, permissions follow the umask, and killed writes leave nothing behind for long."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import xarray as xr

import geodiff
from geodiff import files
from geodiff.cli import main
from geodiff.diffusion import NoiseSchedule, TrainConfig, Trainer
from geodiff.diffusion.unet import UNet
from geodiff.errors import OutputError
from geodiff.files import atomic_path, check_destination, remove_stale, written_by_geodiff
from geodiff.model import DiffusionModel
from geodiff.scaling import Scaler


@pytest.fixture
def user_folder(tmp_path):
    folder = tmp_path / "myproject"
    folder.mkdir()
    (folder / "notes.txt").write_text("field notes")
    (folder / "sub").mkdir()
    (folder / "sub" / "data.csv").write_text("1,2,3")
    return folder


def _untouched(folder):
    return (folder / "notes.txt").read_text() == "field notes" and (folder / "sub" / "data.csv").is_file()


@pytest.fixture
def scene(campi_flegrei):
    return geodiff.open_scene(campi_flegrei / "vel.tif")


@pytest.fixture
def tiny_model(scene):
    tiles = scene.isel(y=slice(0, 32), x=slice(0, 32)).expand_dims(tile=2).copy()
    scaler = Scaler()
    net = UNet.from_preset("tiny", 1, learn_sigma=False, seed=0)
    return DiffusionModel(network=net.eval(), schedule=NoiseSchedule("cosine", 20), scaler=scaler,
                          coefficients=scaler.fit(tiles), tile=(16, 16), units="mm/yr")


def test_model_save_refuses_a_user_folder_and_keeps_its_files(tiny_model, user_folder):
    with pytest.raises(OutputError, match="geodiff did not write"):
        tiny_model.save(user_folder)
    assert _untouched(user_folder)
    tiny_model.save(user_folder, overwrite=True)  # the deliberate case
    assert sorted(p.name for p in user_folder.iterdir()) == ["model.json", "model.safetensors"]


def test_a_model_folder_is_replaced_but_not_once_a_user_added_to_it(tiny_model, tmp_path):
    path = tiny_model.save(tmp_path / "model")
    tiny_model.save(path)  # geodiff's own folder: replaced
    assert geodiff.load_model(path).model_id == tiny_model.model_id
    (path / "README.txt").write_text("what this model is for")
    with pytest.raises(OutputError):
        tiny_model.save(path)
    assert (path / "README.txt").is_file()


def test_to_zarr_refuses_a_user_folder_and_replaces_its_own_store(scene, user_folder, tmp_path):
    with pytest.raises(OutputError):
        geodiff.to_zarr(scene, user_folder)
    assert _untouched(user_folder)
    store = geodiff.to_zarr(scene, tmp_path / "s.zarr")
    geodiff.to_zarr(scene * 2, store)
    back = xr.open_zarr(store, consolidated=False)
    np.testing.assert_array_equal(back["data"].values, scene.values * 2)


def test_files_geodiff_did_not_write_are_refused(scene, tmp_path):
    foreign = tmp_path / "scene.tif"
    with rasterio.open(foreign, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 4, 4), np.uint8))
    before = foreign.read_bytes()
    for write in (geodiff.to_geotiff, geodiff.to_netcdf):
        target = foreign.with_suffix(".nc") if write is geodiff.to_netcdf else foreign
        if write is geodiff.to_netcdf:
            xr.Dataset({"v": ("x", [1.0])}).to_netcdf(target)
        with pytest.raises(OutputError, match="overwrite=True"):
            write(scene, target)
    assert foreign.read_bytes() == before
    assert not written_by_geodiff(foreign) and not written_by_geodiff(foreign.with_suffix(".nc"))
    mine, = geodiff.to_geotiff(scene, tmp_path / "mine.tif")
    assert written_by_geodiff(mine) and written_by_geodiff(geodiff.to_netcdf(scene, tmp_path / "mine.nc"))
    geodiff.to_geotiff(scene, mine)  # its own file: replaced without a word
    geodiff.to_geotiff(scene, foreign, overwrite=True)
    assert written_by_geodiff(foreign)


def test_writing_onto_the_source_is_refused_even_with_overwrite(scene, tmp_path):
    path, = geodiff.to_geotiff(scene, tmp_path / "real.tif")
    real = geodiff.open_scene(path)
    with pytest.raises(OutputError, match="input of this call"):
        geodiff.to_geotiff(real, path, overwrite=True)
    with pytest.raises(OutputError, match="input of this call"):
        (tmp_path / "sub").mkdir()
        check_destination(tmp_path / "sub" / ".." / "real.tif", inputs=[path])


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_permissions_follow_the_umask(scene, tiny_model, tmp_path, umask):
    old = os.umask(umask)
    try:
        tif, = geodiff.to_geotiff(scene, tmp_path / "s.tif")
        store = geodiff.to_zarr(scene, tmp_path / "s.zarr")
        model = tiny_model.save(tmp_path / "model")
    finally:
        os.umask(old)
    for path, full in ((tif, 0o666), (store, 0o777), (model, 0o777), (model / "model.json", 0o666)):
        assert stat.S_IMODE(path.stat().st_mode) == full & ~umask, path


def test_stale_temporaries_of_killed_writes_are_removed_on_the_next_write(scene, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid, host = int(dead.stdout), files._host()
    stale_file = tmp_path / f".s.tif.{host}.{pid}-0123abcd.tmp.tif"
    stale_file.write_bytes(b"half a file")
    stale_dir = tmp_path / f".s.tif.{host}.{pid}-89abcdef.old"
    stale_dir.mkdir()
    kept = [
        tmp_path / f".s.tif.{host}.{os.getpid()}-00000000.tmp.tif",  # a write in progress
        tmp_path / f".s.tif.000000.{pid}-0123abcd.tmp.tif",  # another host's: its pid means nothing here
        tmp_path / f".s.tif.{host}.{pid}-0123abcd.tmp.tif.notes",  # a user's name, not exactly ours
        tmp_path / f".s.tif.{host}.{pid}-0123abcd.tmp.png",
        tmp_path / f".t.tif.{host}.{pid}-0123abcd.tmp.tif",  # another target's
    ]
    for path in kept:
        path.write_bytes(b"keep")
    geodiff.to_geotiff(scene, tmp_path / "s.tif")
    assert not stale_file.exists() and not stale_dir.exists()
    assert all(path.read_bytes() == b"keep" for path in kept)
    assert remove_stale(tmp_path / "t.tif") == [kept[-1]]
    assert files.temporary_name(tmp_path / "s.tif").name.startswith(f".s.tif.{host}.{os.getpid()}-")


def test_a_target_taken_during_the_write_is_not_replaced(scene, tmp_path):
    target = tmp_path / "out.zarr"
    with pytest.raises(OutputError, match="geodiff did not write"), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "chunk").write_text("new")
        target.mkdir()  # meanwhile someone puts a folder of theirs there
        (target / "theirs.txt").write_text("keep")
    assert (target / "theirs.txt").read_text() == "keep" and not tmp.exists()


def test_a_failed_write_leaves_the_old_target_and_no_temporary(scene, tmp_path):
    path, = geodiff.to_geotiff(scene, tmp_path / "s.tif")
    before = path.read_bytes()
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("killed")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.tif"]


def test_unwritable_checkpoint_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = TrainConfig(train_steps=5, batch_size=2, checkpoint_dir=str(blocker / "ckpt"), progress=False)
    trainer = Trainer(UNet.from_preset("tiny", 1, seed=0), NoiseSchedule("cosine", 20), config)
    with pytest.raises(OutputError, match="does not exist"):
        trainer.fit(np.zeros((4, 1, 16, 16), np.float32))
    assert trainer.step == 0


def test_cli_train_refuses_a_user_folder_before_training(campi_flegrei, user_folder, capsys):
    code = main(["train", str(campi_flegrei / "vel.tif"), "--out", str(user_folder), "--tile", "16",
                 "--train-steps", "2", "--preset", "tiny"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--overwrite" in err[0]
    assert _untouched(user_folder)


def test_cli_sample_never_writes_onto_its_like_scene(tiny_model, scene, tmp_path, capsys):
    model = tiny_model.save(tmp_path / "model")
    like, = geodiff.to_geotiff(scene, tmp_path / "scene.tif")  # geodiff wrote it, still refused
    before = like.read_bytes()
    for extra in ([], ["--overwrite"]):
        code = main(["sample", str(model), "--like", str(like), "--out", str(like), "-n", "1", *extra])
        assert code == 2 and "input of this call" in capsys.readouterr().err
    assert like.read_bytes() == before
    assert main(["sample", str(model), "--out", str(model), "-n", "1", "--overwrite"]) == 2
    assert geodiff.load_model(model).model_id == tiny_model.model_id


def test_demo_refuses_before_any_work_when_an_output_name_is_taken(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "model").mkdir()
    (out / "model" / "mine.txt").write_text("keep")
    with pytest.raises(OutputError, match="model"):
        from geodiff.demo import QUICK, run_demo

        run_demo(out, QUICK, log=lambda *_: None)
    assert sorted(p.name for p in out.rglob("*")) == ["mine.txt", "model"]


def test_cli_variogram_outputs_follow_the_same_rules(campi_flegrei, tmp_path, capsys):
    scene = str(campi_flegrei / "vel.tif")
    table, figure = tmp_path / "v.nc", tmp_path / "v.png"
    argv = ["variogram", scene, "--out", str(table), "--plot", str(figure), "--bins", "4"]
    assert main(argv) == 0 and main(argv) == 0  # its own outputs are replaced
    assert written_by_geodiff(table) and written_by_geodiff(figure)
    figure.write_bytes(b"a user's picture")
    capsys.readouterr()
    assert main(argv) == 2 and "geodiff did not write" in capsys.readouterr().err
    assert figure.read_bytes() == b"a user's picture"
    assert main(["variogram", scene, "--out", scene]) == 2 and "input of this call" in capsys.readouterr().err


def test_appends_change_only_geodiff_stores_unless_told(scene, tmp_path):
    foreign = tmp_path / "theirs.zarr"
    scene.expand_dims(sample=1).to_dataset(name="data").to_zarr(foreign, zarr_format=2, consolidated=True)
    before = sorted(p.relative_to(foreign) for p in foreign.rglob("*"))
    with pytest.raises(OutputError, match="did not write"):
        geodiff.to_zarr(scene.expand_dims(sample=1), foreign, append=True, progress=False)
    assert sorted(p.relative_to(foreign) for p in foreign.rglob("*")) == before
    geodiff.to_zarr(scene.expand_dims(sample=1), foreign, append=True, overwrite=True, progress=False)
    assert xr.open_zarr(foreign)["data"].sizes["sample"] == 2
    mine = geodiff.to_zarr(scene.expand_dims(sample=1), tmp_path / "mine.zarr", progress=False)
    geodiff.to_zarr(scene.expand_dims(sample=1), mine, append=True, progress=False)
    assert xr.open_zarr(mine)["data"].sizes["sample"] == 2


def test_fit_checks_its_checkpoint_dir_before_reading_tiles(scene, tmp_path, monkeypatch):
    import geodiff.tile_dataset
    import geodiff.training

    def no_reading(*args, **kwargs):
        raise AssertionError("tiles were read before the checkpoint folder was checked")

    monkeypatch.setattr(geodiff.tile_dataset, "index_tiles", no_reading)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        scene.diffusion.fit(tile=16, train_steps=1, preset="tiny", checkpoint_dir=str(blocker / "ckpt"))


def test_cli_sample_refuses_a_user_folder_as_its_zarr_output(tiny_model, user_folder, tmp_path, capsys):
    model = tiny_model.save(tmp_path / "model")
    store = user_folder.rename(tmp_path / "x.zarr")
    assert main(["sample", str(model), "--out", str(store), "-n", "1", "--sample-steps", "2"]) == 2
    assert "geodiff did not write" in capsys.readouterr().err and _untouched(store)


def test_a_synthetic_scene_is_never_written_over_the_scene_it_was_sampled_on(tiny_model, scene, tmp_path):
    like, = geodiff.to_geotiff(scene, tmp_path / "scene.tif")  # geodiff's own file, so replaceable
    before = like.read_bytes()
    real = geodiff.open_scene(like)
    synth = real.isel(y=slice(0, 32), x=slice(0, 32)).diffusion.sample(n=1, model=tiny_model, sample_steps=2)
    assert synth.attrs["source_scene"] == str(like)
    for write in (geodiff.to_geotiff, geodiff.to_netcdf):
        with pytest.raises(OutputError, match="input of this call"):
            write(synth, like, overwrite=True)
    assert like.read_bytes() == before
