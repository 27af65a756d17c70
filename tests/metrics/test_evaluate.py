"""evaluate, its report and `geodiff evaluate`: every figure beside its floor, on real OPERA tiles."""

import glob
import json

import numpy as np
import pytest
import xarray as xr
from scipy.stats import wasserstein_distance

import geodiff
from geodiff.cli import main
from geodiff.errors import GeodiffError, OutputError
from geodiff.metrics import evaluate, fraction_within, train_extractor, write_report
from geodiff.metrics.evaluate import Row
from geodiff.tiling import TileGrid, nodata_filter, select


def _stack(values, units="dB"):
    return xr.DataArray(values, dims=("sample", "y", "x"), coords={"sample": np.arange(len(values))},
                        attrs={"units": units}, name="vv")


@pytest.fixture(scope="module")
def opera_tiles():
    from tests.conftest import require_data

    root = require_data("sar", "opera_rtc_s1_santa_barbara")
    tiles = []
    for path in sorted(glob.glob(str(root / "2021-1*" / "*_VV.tif"))):
        scene = geodiff.open_scene(path, chunks=None)
        scene = 10 * np.log10(scene.where(scene > 0))
        stack = TileGrid.from_scene(scene, 32).stack(scene)
        tiles.append(select(stack, nodata_filter(stack, 0.0)).compute().values)
    values = np.concatenate(tiles)
    return values[np.random.default_rng(0).permutation(len(values))]


def test_rows_judge_each_goal_against_the_floor():
    assert Row("pixel_wasserstein", 0.5, 0.4, 0.3, 0.6).within_floor
    assert not Row("pixel_wasserstein", 0.7, 0.4, 0.3, 0.6).within_floor
    assert Row("features.recall", 0.8, 0.85, 0.8, 0.9).within_floor
    assert not Row("features.recall", 0.7, 0.85, 0.8, 0.9).within_floor
    assert Row("tile_statistics.std_ratio", 0.95, 1.0, 0.94, 1.03).within_floor  # |0.95-1| <= 0.06
    assert not Row("tile_statistics.std_ratio", 1.1, 1.0, 0.94, 1.03).within_floor
    assert Row("features.kid_std", 1.0, 0.0, 0.0, 0.0).within_floor is None  # context only


def test_real_against_real_lies_within_the_floor_and_a_shift_does_not(opera_tiles):
    real, other = _stack(opera_tiles[:200]), _stack(opera_tiles[200:300])
    same = evaluate(real, other, seed=1)
    assert same.floor_size == 100 and same.n_real == 200 and same.n_synthetic == 100
    # More real data score like the floor, though a fourth real draw falls outside the range of
    # three about half the time.
    assert fraction_within(same) >= 0.5
    shifted = evaluate(real, _stack(opera_tiles[200:300] + 3.0), seed=1)
    rows = {r.name: r for r in shifted.rows}
    w1 = rows["pixel_wasserstein"]
    # The figure is scipy's W1 of the pixel values themselves; the floor says what real data give.
    assert w1.value == pytest.approx(wasserstein_distance(opera_tiles[:200].ravel(), opera_tiles[200:300].ravel() + 3))
    assert not w1.within_floor and w1.floor_max < 1.5
    # A shift leaves every tile's std as it was.
    unshifted = {r.name: r for r in same.rows}
    assert rows["tile_statistics.std_ratio"].value == pytest.approx(unshifted["tile_statistics.std_ratio"].value)


def test_feature_figures_need_floor_sets_larger_than_the_feature_dimension(opera_tiles):
    real = _stack(opera_tiles[:120])
    extractor = train_extractor(real, dim=8, train_steps=20, batch_size=32, progress=False)
    result = evaluate(real, _stack(opera_tiles[120:180]), extractor=extractor)
    names = {r.name for r in result.rows}
    assert {"features.fid", "features.kid_mean", "features.precision", "features.recall"} <= names
    assert result.extractor_id == extractor.extractor_id
    with pytest.raises(GeodiffError, match="more than 8 real tiles"):
        evaluate(real[:16], _stack(opera_tiles[120:180]), extractor=extractor)


def test_report_folder_holds_what_a_person_reads_and_replaces_only_itself(opera_tiles, tmp_path):
    real, synthetic = _stack(opera_tiles[:100]), _stack(opera_tiles[100:150])
    result = evaluate(real, synthetic)
    out = write_report(result, real, synthetic, tmp_path / "report")
    doc = json.loads((out / "report.json").read_text())
    assert doc["format"] == "geodiff-report" and doc["rows"] == json.loads(json.dumps(result.to_dict()["rows"]))
    page = (out / "report.html").read_text()
    assert all(r.name in page for r in result.rows)
    for figure in doc["figures"]:
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure in page
    write_report(result, real, synthetic, out)  # its own report: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(OutputError):
        write_report(result, real, synthetic, mine)
    assert (mine / "notes.txt").read_text() == "keep"


def test_cli_evaluate_writes_a_report_and_refuses_other_units(opera_tiles, tmp_path, capsys):
    geodiff.to_netcdf(_stack(opera_tiles[:100]), tmp_path / "real.nc", progress=False)
    geodiff.to_netcdf(_stack(opera_tiles[100:150]), tmp_path / "synth.nc", progress=False)
    out = tmp_path / "report"
    assert main(["evaluate", str(tmp_path / "real.nc"), str(tmp_path / "synth.nc"), "--out", str(out),
                 "--no-features"]) == 0
    assert "pixel_wasserstein" in capsys.readouterr().out and (out / "report.html").is_file()
    geodiff.to_netcdf(_stack(opera_tiles[100:150], units="mm/yr"), tmp_path / "other.nc", progress=False)
    assert main(["evaluate", str(tmp_path / "real.nc"), str(tmp_path / "other.nc"), "--out",
                 str(tmp_path / "r2"), "--no-features"]) == 2
    # One error line (warnings, such as these tiles' missing CRS, have one line each too).
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("geodiff evaluate: error: ")]
    assert len(err) == 1 and "units" in err[0] and not (tmp_path / "r2").exists()


def test_cli_evaluate_reads_the_floor_against_a_reference(opera_tiles, tmp_path, capsys):
    geodiff.to_netcdf(_stack(opera_tiles[:60]), tmp_path / "real.nc", progress=False)
    geodiff.to_netcdf(_stack(opera_tiles[60:100]), tmp_path / "synth.nc", progress=False)
    geodiff.to_netcdf(_stack(opera_tiles[100:300]), tmp_path / "train.nc", progress=False)
    out = tmp_path / "report"
    assert main(["evaluate", str(tmp_path / "real.nc"), str(tmp_path / "synth.nc"), "--out", str(out),
                 "--reference", str(tmp_path / "train.nc"), "--no-features", "--draws", "2"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["floor_size"] == 40 and report["n_real"] == 60 and report["floor_reference"]  # all real vs 40 drawn
    assert "drawn from the reference tiles" in (out / "report.html").read_text()
    capsys.readouterr()


def test_floors_computed_once_give_the_same_evaluation(opera_tiles):
    from geodiff.metrics import floors

    real, synthetic = _stack(opera_tiles[:120]), _stack(opera_tiles[120:170])
    shared = floors(real, 50, seed=2)
    assert shared["pixel_wasserstein"].n == 50
    assert evaluate(real, synthetic, floor=shared, seed=2) == evaluate(real, synthetic, seed=2)
    extractor = train_extractor(real, dim=8, train_steps=5, batch_size=32, progress=False)
    with pytest.raises(GeodiffError, match="same extractor"):
        evaluate(real, synthetic, extractor=extractor, floor=shared)
