"""The main job end to end, on a tiny budget: every output is written, georeferenced and masked."""

from dataclasses import replace

import numpy as np
import rioxarray
import xarray as xr

from geodiff.demo import QUICK, run_demo
from geodiff.synth import demo_scene


def test_demo_writes_every_output(tmp_path):
    config = replace(QUICK, train_seconds=5.0, train_steps=10, tiles=4, sample_steps=3)
    paths = run_demo(tmp_path / "out", config, log=lambda *_: None)
    scene = demo_scene()

    synth = rioxarray.open_rasterio(paths["scene_geotiff"], masked=True)
    assert synth.rio.crs == scene.rio.crs and synth.shape[1:] == scene.shape
    np.testing.assert_array_equal(np.isnan(synth.values[0]), np.isnan(scene.values))
    assert np.isfinite(synth.values[0][np.isfinite(scene.values)]).all()

    nc = xr.open_dataset(paths["scene_netcdf"], decode_coords="all")["los_velocity"]
    zarr = xr.open_zarr(paths["scene_zarr"], decode_coords="all")["los_velocity"]
    np.testing.assert_array_equal(nc.values, synth.values)
    np.testing.assert_array_equal(zarr.values, synth.values)
    assert nc.attrs["units"] == "mm/yr" and zarr.rio.crs == scene.rio.crs

    variogram = xr.open_dataset(paths["variogram"])
    assert variogram.attrs["lag_units"] == "metre"  # tiles carry the scene's metric coordinates
    assert variogram.attrs["n_synthetic"] == config.tiles
    assert 0.0 <= float(variogram["fraction_in_band"]) <= 1.0
    for png in (paths["tiles_png"], paths["scene_png"], paths["variogram_png"]):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (paths["model"] / "model.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")) == []
