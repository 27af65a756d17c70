"""Units per band: a scene whose bands differ (phase in rad beside coherence in 1) keeps each
band's units through opening, fitting, the saved model, sampling, variograms and export."""

import numpy as np
import pytest
import rasterio
import xarray as xr

import geodiff
from geodiff import geostats, units
from geodiff.errors import GeodiffError, SceneError

PAIR = "cropA_20180106-20180130_VV_8rlks"


def test_combine_and_per_band_round_trip():
    assert units.combine(["dB", "dB"]) == "dB"
    assert units.combine([None, ""]) is None
    assert units.combine(["rad", None]) == ["rad", ""]
    assert units.per_band("mm/yr", 3) == ["mm/yr"] * 3
    assert units.per_band(["rad", ""], 2) == ["rad", None]
    assert units.label(["dB", "1"]) == "dB, 1" and units.label(None) == "unknown"
    assert units.squared(["rad", ""]) == ["(rad)^2", ""] and units.squared("m") == "(m)^2"
    with pytest.raises(GeodiffError, match="one per band"):
        units.per_band(["dB"], 2)


@pytest.fixture
def phase_and_coherence(mexico_city_a):
    phase = geodiff.open_scene(mexico_city_a / f"{PAIR}_eqa_unw.tif", chunks=None)
    # PyRate labels its coherence files "rad"; coherence is dimensionless.
    coherence = geodiff.open_scene(mexico_city_a / f"{PAIR}_flat_eqa_cc.tif", chunks=None, units="1")
    return xr.Dataset({"phase": phase, "coherence": coherence})


def test_open_scene_keeps_units_per_band_and_per_selection(phase_and_coherence):
    scene = geodiff.open_scene(phase_and_coherence)
    assert list(scene["band"].values) == ["phase", "coherence"]
    assert scene.attrs["units"] == ["rad", "1"]
    assert geodiff.open_scene(phase_and_coherence, band="coherence").attrs["units"] == "1"
    assert geodiff.open_scene(phase_and_coherence, band=["coherence", "phase"]).attrs["units"] == ["1", "rad"]


def test_units_per_band_through_fit_save_sample_and_export(phase_and_coherence, tmp_path):
    ds = phase_and_coherence
    model = ds.diffusion.fit(tile=16, train_steps=2, preset="tiny", batch_size=4, progress=False)
    assert model.units == ["rad", "1"] and "rad, 1" in repr(model)
    model = geodiff.load_model(model.save(tmp_path / "model"))
    assert model.units == ["rad", "1"]

    synth = ds.diffusion.sample(n=1, model=model, sample_steps=2)
    assert {name: var.attrs.get("units") for name, var in synth.data_vars.items()} == {"phase": "rad",
                                                                                       "coherence": "1"}
    tiles = model.sample_tiles(2, sample_steps=2, progress=False)
    assert tiles.attrs["units"] == ["rad", "1"]

    stacked = geodiff.open_scene(ds).diffusion.sample(n=2, model=model, sample_steps=2)
    path, = geodiff.to_geotiff(stacked, tmp_path / "synth.tif")
    with rasterio.open(path) as src:  # GDAL's own view: one unit per GeoTIFF band
        assert src.units == ("rad", "1", "rad", "1")
        assert src.descriptions == ("sample=0 phase", "sample=0 coherence", "sample=1 phase", "sample=1 coherence")
    import json

    import netCDF4

    with netCDF4.Dataset(geodiff.to_netcdf(stacked, tmp_path / "synth.nc", progress=False)) as nc:
        variable = nc["synthetic"]
        assert json.loads(variable.band_units) == ["rad", "1"] and "units" not in variable.ncattrs()
    store = geodiff.to_zarr(stacked, tmp_path / "synth.zarr", progress=False)
    assert xr.open_zarr(store)["synthetic"].attrs["units"] == ["rad", "1"]


def test_a_scene_in_other_units_per_band_is_refused(phase_and_coherence):
    model = phase_and_coherence.diffusion.fit(tile=16, train_steps=1, preset="tiny", batch_size=4, progress=False)
    swapped = geodiff.open_scene(phase_and_coherence).copy()
    swapped.attrs["units"] = ["1", "rad"]
    with pytest.raises(GeodiffError, match="rad, 1"):
        swapped.diffusion.sample(n=1, model=model, sample_steps=2)


def test_variograms_of_mixed_bands_carry_units_per_band_and_refuse_a_mismatch(phase_and_coherence):
    g = geostats.semivariogram(phase_and_coherence)
    assert g["gamma"].attrs["units"] == ["(rad)^2", "(1)^2"]
    # Each band's semivariance is that of the band alone.
    alone = geostats.semivariogram(phase_and_coherence["coherence"])
    np.testing.assert_allclose(g["gamma"].sel(variable="coherence").values, alone["gamma"].values)
    other = phase_and_coherence.copy()
    other["coherence"].attrs["units"] = "rad"
    with pytest.raises(SceneError, match="cannot be compared"):
        geostats.compare(phase_and_coherence, other.expand_dims(sample=2))
