"""Labelled dataset export: a Zarr store plus a GeoParquet index, one row per sample (issue 14)."""

from __future__ import annotations

import dask.array as darr
import geopandas as gpd
import numpy as np
import pytest
import torch
import xarray as xr
from shapely.geometry import box

import geodiff
from geodiff.errors import GeodiffError, OutputError
from tests.test_collection import TINY, _scene


@pytest.fixture(scope="module")
def conditional():
    sea = _scene(0, nan=0).rename("a").assign_attrs(label="sea")
    land = _scene(1, nan=0).rename("b").assign_attrs(label="land")
    return geodiff.fit([sea, land], tile=16, train_steps=2, labels="attrs", conditional=True, **TINY)


def test_guided_tiles_reopen_with_their_labels_and_footprints(tmp_path, conditional):
    template = _scene(2, nan=0).isel(y=slice(16, 32), x=slice(32, 48))
    asked = ["sea", "land", "land", "sea", "land"]
    tiles = conditional.sample_tiles(5, labels=asked, guidance=2.0, like=template, sample_steps=2, progress=False)
    out = geodiff.export_dataset(tiles, tmp_path / "synthetic")
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "index.parquet", "tiles.zarr"]
    store = xr.open_zarr(out / "tiles.zarr")
    index = gpd.read_parquet(out / "index.parquet")
    np.testing.assert_array_equal(store["synthetic"].values, tiles.values)
    assert store["synthetic"].chunks[0] == (1,) * 5  # one sample per chunk: a loader reads one row
    assert [list(v) for v in index["labels"]] == [[name] for name in asked]
    assert list(index["sample"]) == list(range(5)) and set(index["crs"]) == {template.rio.crs.to_string()}
    outline = box(*template.rio.bounds())
    assert all(f.equals(outline) for f in index["footprint"])
    # EPSG:4326 geometry, checked against geopandas' own reprojection of the tile outline.
    expected = gpd.GeoSeries([outline], crs=template.rio.crs).to_crs("EPSG:4326").iloc[0]
    assert index.crs.to_epsg() == 4326 and index.geometry.iloc[3].equals_exact(expected, 1e-9)


def test_physics_pairs_export_with_their_source_kind(tmp_path):
    pairs = geodiff.synth.dataset(4, shape=(16, 16), seed=0)[["deformation", "unwrapped", "wrapped"]]
    out = geodiff.export_dataset(pairs, tmp_path / "pairs")
    store = xr.open_zarr(out / "tiles.zarr")
    index = gpd.read_parquet(out / "index.parquet")
    for name in ("deformation", "unwrapped", "wrapped"):
        np.testing.assert_array_equal(store[name].values, pairs[name].values)
    assert [list(v) for v in index["labels"]] == [[str(s)] for s in pairs["source"].values]
    assert index["footprint"].iloc[0].equals(box(*pairs.rio.bounds()))


def test_nothing_is_left_behind_and_no_foreign_folder_is_replaced(tmp_path, conditional):
    tiles = conditional.sample_tiles(2, labels="sea", sample_steps=2, progress=False)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(OutputError):
        geodiff.export_dataset(tiles, foreign)
    assert (foreign / "notes.txt").read_text() == "keep"
    ours = geodiff.export_dataset(tiles, tmp_path / "ours")
    geodiff.export_dataset(tiles.isel(sample=[0]), ours)  # geodiff's own folder is replaced
    assert len(gpd.read_parquet(ours / "index.parquet")) == 1

    def fail(block):
        raise RuntimeError("disk full")

    broken = tiles.copy(data=darr.from_array(tiles.values, chunks=(1, 16, 16)).map_blocks(fail, dtype=np.float32))
    with pytest.raises(RuntimeError, match="disk full"):
        geodiff.export_dataset(broken, tmp_path / "broken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "ours"]
    with pytest.raises(GeodiffError, match="sample"):
        geodiff.export_dataset(tiles.isel(sample=0), tmp_path / "flat")


def test_the_pytorch_loader_in_the_docs_reads_an_exported_dataset(tmp_path, conditional, monkeypatch):
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "index.md").read_text()
    code = docs.split("A PyTorch loader:")[1].split("```python")[1].split("```")[0]
    tiles = conditional.sample_tiles(3, labels=["sea", "land", "sea"], sample_steps=2, progress=False)
    geodiff.export_dataset(tiles, tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "docs/index.md", "exec"), scope)
    x, y = next(iter(torch.utils.data.DataLoader(scope["Labelled"]("out"), batch_size=3)))
    assert x.shape == (3, 16, 16) and scope["Labelled"]("out").classes == ["land", "sea"]
    torch.testing.assert_close(x, torch.from_numpy(tiles.values))
    torch.testing.assert_close(y, torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    assert len(scope["loader"].dataset) == 3
