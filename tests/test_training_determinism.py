"""fit: same seed, same model (in one process and across processes, whatever the caller's
global RNG), arguments refused before any work, and the time budget ending training."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import geodiff
from geodiff.errors import GeodiffError

FIT = {"tile": 16, "train_steps": 2, "preset": "tiny", "batch_size": 4, "progress": False, "device": "cpu"}


def _scene() -> xr.DataArray:
    y, x = np.mgrid[0:32, 0:32]
    values = (np.sin(y / 5.0) * np.cos(x / 7.0) + 0.1 * np.random.default_rng(0).normal(size=(32, 32)))
    da = xr.DataArray(values.astype("float32"), dims=("y", "x"), attrs={"units": "mm/yr"},
                      coords={"y": 1000.0 - 10 * np.arange(32), "x": 10.0 * np.arange(32)})
    return geodiff.open_scene(da.rio.write_crs("EPSG:32633"), chunks=None)


# CPU kernels split reductions by thread count, so the child runs on as many threads as the parent.
_CHILD = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
from geodiff.training import fit
from tests.test_training_determinism import FIT, _scene
print(fit(_scene(), seed=3, **FIT).model_id)
"""


def test_same_seed_same_model_in_and_across_processes():
    from geodiff.training import fit

    torch.manual_seed(1)
    state = torch.get_rng_state()
    first = fit(_scene(), seed=3, **FIT)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's global RNG is left alone
    torch.manual_seed(2)  # a different global state must not matter
    again = fit(_scene(), seed=3, **FIT)
    assert again.model_id == first.model_id
    for name, weight in first.network.state_dict().items():
        assert torch.equal(again.network.state_dict()[name], weight), name
    assert fit(_scene(), seed=4, **FIT).model_id != first.model_id
    child = subprocess.run([sys.executable, "-c", _CHILD, str(torch.get_num_threads())], capture_output=True,
                           text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert child.stdout.split()[-1] == first.model_id


@pytest.mark.parametrize("bad, match", [
    ({"train_steps": 0}, "train_steps"),
    ({"train_steps": -3}, "train_steps"),
    ({"train_steps": None, "epochs": 0}, "epochs"),
    ({"train_steps": None, "epochs": None}, "length of training"),
    ({"steps": 5}, "train_steps"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -1e-4}, "lr"),
    ({"max_nodata": 2.0}, "max_nodata"),
    ({"max_nodata": -0.1}, "max_nodata"),
    ({"seed": -1}, "seed"),
    ({"max_seconds": 0}, "max_seconds"),
])
def test_bad_training_arguments_are_refused_before_any_work(monkeypatch, bad, match):
    import geodiff.tile_dataset
    import geodiff.training

    def no_work(*args, **kwargs):
        raise AssertionError("tiles were read before the arguments were checked")

    monkeypatch.setattr(geodiff.tile_dataset, "index_tiles", no_work)
    with pytest.raises(GeodiffError, match=match):
        geodiff.training.fit(_scene(), **{**FIT, **bad})


def test_time_budget_ends_training_and_is_recorded():
    from geodiff.training import fit

    # Any step lasts longer than a microsecond, so the budget ends training after the first one.
    model = fit(_scene(), seed=0, **{**FIT, "train_steps": 1000}, max_seconds=1e-6)
    assert model.summary["train_steps"] == 1
    assert model.summary["train_config"]["max_seconds"] == 1e-6
    assert model.summary["final_loss"] is not None
