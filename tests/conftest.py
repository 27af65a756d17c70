"""Shared test set-up: where the real radar products live (and what their absence means),
reproducible property tests in CI, and torch threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays the same examples every run; local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

DATA_DIR = Path(os.environ.get("GEODIFF_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")).resolve()


def require_data(*parts: str) -> Path:
    """Path under the shared real-data folder; skip when absent, fail when GEODIFF_REQUIRE_DATA=1."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        reason = f"real radar data not found at {path} (set GEODIFF_DATA or place ../shared/data beside the checkout)"
        if os.environ.get("GEODIFF_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; GEODIFF_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(reason)
    return path


@pytest.fixture
def data_dir() -> Path:
    return require_data()


@pytest.fixture
def campi_flegrei() -> Path:
    return require_data("insar", "campi_flegrei")


@pytest.fixture
def mexico_city_a() -> Path:
    return require_data("insar", "mexico_city_cropA")


@pytest.fixture
def mexico_city_b() -> Path:
    return require_data("insar", "mexico_city_cropB")


@pytest.fixture
def opera_rtc() -> Path:
    return require_data("sar", "opera_rtc_s1_santa_barbara")


@pytest.fixture
def bigearthnet() -> Path:
    return require_data("sar", "bigearthnet_s1")


@pytest.fixture(autouse=True, scope="session")
def torch_one_thread():
    """Tests run small tensors, for which a second OpenMP thread only adds contention: on a
    busy 2-core machine two threads spinning against each other made steps ~10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
