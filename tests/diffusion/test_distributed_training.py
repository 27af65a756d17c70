"""Data-parallel training: torchrun with two gloo processes on the CPU takes the steps of one
process with the same global batch, and resumes exactly from rank 0's checkpoint."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr
from safetensors.torch import load_file

from geodiff.diffusion.train.batches import StepBatches
from geodiff.diffusion.train.distributed import Group
from geodiff.errors import GeodiffError

ARGS = ("--tile", "16", "--preset", "tiny", "--batch-size", "4", "--seed", "3")


def test_ranks_share_every_global_batch_without_overlap():
    data = torch.zeros(50, 1, 4, 4)
    whole = list(StepBatches(data, 6, 2, seed=1, start=3, total=6))
    shares = [list(StepBatches(data, 6, 2, seed=1, start=3, total=6, group=Group(r, 3))) for r in range(3)]
    for k, items in enumerate(whole):
        assert [len(s[k]) for s in shares] == [2, 2, 2]
        assert sorted(i for s in shares for i in s[k]) == sorted(items)
        # Group.gather is the inverse of Group.share.
        assert [shares[r][k][j] for j in range(2) for r in range(3)] == items


def test_a_global_batch_that_does_not_split_over_the_ranks_is_refused(monkeypatch):
    from geodiff.diffusion import NoiseSchedule, TrainConfig, Trainer
    from geodiff.diffusion.train import distributed
    from geodiff.diffusion.unet import UNet

    monkeypatch.setattr(distributed, "current", lambda: Group(0, 4))
    with pytest.raises(GeodiffError, match="multiple of 4"):
        Trainer(UNet.from_preset("tiny", 1, seed=0), NoiseSchedule("sigmoid", 10), TrainConfig(batch_size=6),
                device="cpu")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    import rioxarray  # noqa: F401

    rng = np.random.default_rng(0)
    field = np.cumsum(np.cumsum(rng.normal(size=(48, 48)), 0), 1).astype(np.float32)
    da = xr.DataArray(field, dims=("y", "x"), coords={"y": 100.0 - np.arange(48), "x": np.arange(48.0)})
    path = tmp_path_factory.mktemp("ddp") / "scene.tif"
    da.rio.write_crs("EPSG:32611").rio.to_raster(path)
    return path


def _train(scene, out, *extra, nproc: int = 1):
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc > 1 else []
    cmd = [sys.executable, *launcher, "-m", "geodiff", "train", str(scene), "--out", str(out), *ARGS, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return load_file(out / "model.safetensors")


def test_two_processes_take_the_steps_of_one_and_resume_exactly(scene, tmp_path):
    one = _train(scene, tmp_path / "one", "--train-steps", "4")
    two = _train(scene, tmp_path / "two", "--train-steps", "4", nproc=2)
    assert one.keys() == two.keys()
    # Sums in another order differ in the last bits, and Adam's normalisation magnifies that on
    # near-zero gradients: a few 1e-6 here, against weights that move ~5e-4 in these steps.
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=0, atol=2e-5)
    # A restart: two steps with a checkpoint, then the same command continued to four.
    ck = tmp_path / "ck"
    half = _train(scene, tmp_path / "half", "--train-steps", "2", "--checkpoint-dir", str(ck), nproc=2)
    resumed = _train(scene, tmp_path / "resumed", "--train-steps", "4", "--checkpoint-dir", str(ck), "--resume",
                     nproc=2)
    assert max(float((half[k] - two[k]).abs().max()) for k in two) > 1e-4
    for k in two:
        torch.testing.assert_close(resumed[k], two[k], rtol=0, atol=0)
