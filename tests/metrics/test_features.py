"""The feature extractor: trained on real OPERA backscatter tiles, it tells real tiles from
degraded ones; it is reproducible, saves and loads like a model, and refuses tiles it cannot read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import xarray as xr
from torchmetrics.image.fid import FrechetInceptionDistance

import geodiff
from geodiff.errors import CheckpointError, GeodiffError
from geodiff.metrics.features import FeatureExtractor, load_extractor, train_extractor
from geodiff.metrics.fid import feature_scores, fid
from geodiff.scaling import Scaler
from geodiff.tiling import TileGrid


@pytest.fixture(scope="module")
def vv_db_tiles() -> xr.DataArray:
    """32 x 32 VV tiles in dB from the OPERA RTC-S1 scenes of 2022 (about 900 tiles)."""
    from tests.conftest import require_data

    folder = require_data("sar", "opera_rtc_s1_santa_barbara")
    tiles = []
    for path in sorted(folder.glob("2022-*/*_VV.tif")):
        scene = geodiff.open_scene(path, chunks=None, units="1")
        stack = TileGrid.from_scene(scene, 32).stack(scene).compute().rename(tile="sample")
        tiles.append(stack.drop_vars([c for c in stack.coords if c not in ("y", "x")]))
    power = xr.concat(tiles, "sample")
    power = power.isel(sample=(power.notnull().mean(("y", "x")) > 0.5).values)
    db = 10 * np.log10(power.where(power > 0))
    db.attrs["units"] = "dB"
    order = np.random.default_rng(0).permutation(db.sizes["sample"])
    return db.isel(sample=order)


@pytest.fixture(scope="module")
def extractor(vv_db_tiles) -> FeatureExtractor:
    return train_extractor(vv_db_tiles[:400], train_steps=300, progress=False)


def test_features_tell_real_tiles_from_blurred_ones(vv_db_tiles, extractor):
    # Two disjoint held-out real sets are closer to each other than to a blurred copy of one:
    # the synthetic-tile fault Tuel et al. (2023) saw (too little fine structure).
    held_out_a, held_out_b = vv_db_tiles[400:650], vv_db_tiles[650:900]
    blurred = held_out_b.copy(data=ndi.gaussian_filter(held_out_b.values, (0, 1, 1)))
    floor = fid(extractor.features(held_out_a), extractor.features(held_out_b))
    assert fid(extractor.features(held_out_a), extractor.features(blurred)) > 5 * floor
    scores = feature_scores(extractor, held_out_a, blurred)
    assert scores.precision < 0.6 and scores.extractor_id == extractor.extractor_id
    real_vs_real = feature_scores(extractor, held_out_a, held_out_b)
    assert real_vs_real.precision > 0.8
    # KID is unbiased: real vs real within its spread over subsets of zero, blurred far off.
    assert abs(real_vs_real.kid_mean) < 3 * real_vs_real.kid_std < scores.kid_mean


def test_features_are_centred_of_unit_rms_and_blind_to_each_tile_range(vv_db_tiles, extractor):
    train = extractor.features(vv_db_tiles[:400])
    assert train.shape == (400, 64) and train.dtype == np.float64
    np.testing.assert_allclose(train.mean(0), 0.0, atol=1e-4)
    assert np.sqrt((train**2).mean()) == pytest.approx(1.0, rel=1e-4)
    # Per-tile min-max scaling: an affine change of each tile's values leaves its features alone.
    tiles = vv_db_tiles[400:420]
    gain = xr.DataArray(np.linspace(0.5, 3.0, 20), dims="sample")
    np.testing.assert_allclose(extractor.features(tiles * gain - 7.0), extractor.features(tiles), atol=1e-4)


def test_nodata_pixels_are_filled_not_propagated(vv_db_tiles, extractor):
    tiles = vv_db_tiles[400:410].copy()
    tiles[:, :8, :8] = np.nan
    features = extractor.features(tiles)
    assert np.isfinite(features).all()
    assert not np.allclose(features, extractor.features(vv_db_tiles[400:410]))


def test_same_seed_same_extractor_and_a_save_load_round_trip(vv_db_tiles, tmp_path):
    tiles = vv_db_tiles[:100]
    a = train_extractor(tiles, dim=16, train_steps=15, progress=False, seed=3)
    b = train_extractor(tiles, dim=16, train_steps=15, progress=False, seed=3)
    c = train_extractor(tiles, dim=16, train_steps=15, progress=False, seed=4)
    assert a.extractor_id == b.extractor_id != c.extractor_id
    np.testing.assert_array_equal(a.features(tiles), b.features(tiles))

    path = a.save(tmp_path / "extractor")
    assert sorted(p.name for p in path.iterdir()) == ["extractor.json", "extractor.safetensors"]
    loaded = load_extractor(path, device="cpu")
    assert loaded.extractor_id == a.extractor_id and loaded.units == "dB" and loaded.tile == (32, 32)
    np.testing.assert_array_equal(loaded.features(tiles), a.features(tiles))
    assert a.extractor_id in repr(loaded)

    config = json.loads((path / "extractor.json").read_text())
    config["scaler"]["method"] = "robust"
    (path / "extractor.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="edited"):
        load_extractor(path, device="cpu")
    with pytest.raises(CheckpointError, match="not a geodiff feature extractor folder"):
        load_extractor(tmp_path, device="cpu")


def test_the_extractor_encoder_matches_torchmetrics_fid_end_to_end(vv_db_tiles, extractor):
    # torchmetrics given the extractor's network as its feature module (nothing downloaded)
    # must find the FID that geodiff's features and fid find.
    class Embed(torch.nn.Module):
        num_features = extractor.dim

        def forward(self, x):
            return extractor.network.embed(x)

    real, synthetic = vv_db_tiles[400:500], vv_db_tiles[500:600] * 0.5
    oracle = FrechetInceptionDistance(feature=Embed())
    with torch.no_grad():
        oracle.update(torch.from_numpy(extractor.prepare(real)), real=True)
        oracle.update(torch.from_numpy(extractor.prepare(synthetic)), real=False)
    expected = oracle.compute().item()
    assert fid(extractor.features(real), extractor.features(synthetic)) == pytest.approx(expected, rel=1e-3)


def test_tiles_the_extractor_cannot_read_are_refused(vv_db_tiles, extractor):
    with pytest.raises(GeodiffError, match="at least 64"):
        train_extractor(vv_db_tiles[:40], progress=False)
    with pytest.raises(GeodiffError, match="multiples of 8"):
        train_extractor(vv_db_tiles[:100, :30, :30], progress=False)
    with pytest.raises(GeodiffError, match="per-tile"):
        train_extractor(vv_db_tiles[:100], scaler=Scaler(per_tile=False), progress=False)
    with pytest.raises(GeodiffError, match="steps must be a positive integer"):
        train_extractor(vv_db_tiles[:100], train_steps=0, progress=False)
    with pytest.raises(GeodiffError, match="takes 1 band"):
        extractor.features(vv_db_tiles[:10, :16, :16])
    in_power = 10 ** (vv_db_tiles[:10] / 10)
    in_power.attrs["units"] = "1"
    with pytest.raises(GeodiffError, match="trained on 'dB'"):
        extractor.features(in_power)
    with pytest.raises(GeodiffError, match="all NaN"):
        extractor.features(vv_db_tiles[:10].where(False))
    with pytest.raises(GeodiffError, match="at least 65"):
        feature_scores(extractor, vv_db_tiles[:64], vv_db_tiles[100:300])
