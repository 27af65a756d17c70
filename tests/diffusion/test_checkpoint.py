"""Checkpoint files: exact round trips, atomic replacement, clear errors, no unpickling anywhere."""

import json
import re
from pathlib import Path

import pytest
import torch

import geodiff
from geodiff.diffusion import checkpoint as ck
from geodiff.diffusion.unet import UNet
from geodiff.errors import CheckpointError
from geodiff.files import atomic_directory


def _trained_optimizer():
    model = UNet.from_preset("tiny", 1, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.95), weight_decay=0.01)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2])).square().mean().backward()
        out = model(torch.randn(2, 1, 8, 8), torch.tensor([3, 4]))
        (out.square().mean() + sum(p.square().sum() for p in model.parameters()) * 1e-3).backward()
        opt.step()
    return model, opt


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    model, opt = _trained_optimizer()
    tensors, meta = ck.flatten_optimizer_state(opt.state_dict())
    ck.save_tensors_atomic(tensors, tmp_path / "opt.safetensors", meta)
    loaded, loaded_meta = ck.load_tensors(tmp_path / "opt.safetensors")
    clone = UNet.from_preset("tiny", 1)
    clone.load_state_dict(model.state_dict())
    opt2 = torch.optim.AdamW(clone.parameters(), lr=0.5)
    opt2.load_state_dict(ck.unflatten_optimizer_state(loaded, loaded_meta))
    assert opt2.param_groups[0]["betas"] == (0.8, 0.95) and opt2.param_groups[0]["lr"] == 1e-3
    x = torch.randn(2, 1, 8, 8)
    for m, o in ((model, opt), (clone, opt2)):
        o.zero_grad()
        (
            m(x, torch.tensor([5, 6])).square().mean()
            + sum(p.square().sum() for p in m.parameters())
        ).backward()
        o.step()
    for p, q in zip(model.parameters(), clone.parameters()):
        assert torch.equal(p, q)


def test_state_encoding_is_bit_exact():
    state = {
        "rng": torch.get_rng_state(),
        "hist": torch.randn(3, 10, dtype=torch.float64),
        "half": torch.randn(4).bfloat16(),
        "scalar": torch.tensor(7),
        "nested": [1, "a", None],
    }
    back = ck.decode_state(json.loads(json.dumps(ck.encode_state(state))))
    for k in ("rng", "hist", "half", "scalar"):
        assert back[k].dtype == state[k].dtype and torch.equal(back[k], state[k])
    assert back["nested"] == [1, "a", None]


def _save(path: Path, **extra) -> Path:
    model, opt = _trained_optimizer()
    return ck.save_checkpoint(
        path,
        model=model.state_dict(),
        ema=model.state_dict(),
        optimizer=opt.state_dict(),
        state={"step": 3, "rng": torch.get_rng_state(), **extra},
    )


def test_checkpoint_round_trip_and_metadata(tmp_path):
    path = _save(tmp_path / "run")
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["model.safetensors", "ema.safetensors", "optimizer.safetensors", "trainer.json"]
    )
    doc = json.loads((path / "trainer.json").read_text())
    assert doc["format"] == "geodiff-checkpoint" and doc["format_version"] == ck.FORMAT_VERSION
    assert doc["versions"] == {"geodiff": geodiff.__version__, "torch": torch.__version__}
    loaded = ck.load_checkpoint(path)
    assert loaded.state["step"] == 3 and isinstance(loaded.state["rng"], torch.Tensor)
    assert set(loaded.model) == set(UNet.from_preset("tiny", 1).state_dict())


def test_overwrite_is_atomic_and_failed_write_keeps_old(tmp_path):
    path = _save(tmp_path / "run", tag="old")
    with pytest.raises(RuntimeError), atomic_directory(path) as tmp:
        (tmp / "partial").write_text("x")
        raise RuntimeError("crash while writing")
    assert ck.load_checkpoint(path).state["tag"] == "old"
    _save(path, tag="new")
    assert ck.load_checkpoint(path).state["tag"] == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary leftovers


def test_truncated_weights_raise(tmp_path):
    path = _save(tmp_path / "run")
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        ck.load_checkpoint(path)


def test_corrupt_json_raises(tmp_path):
    path = _save(tmp_path / "run")
    (path / "trainer.json").write_text('{"format": "geodiff-checkpoint", "format_ver')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ck.load_checkpoint(path)


def test_foreign_checkpoints_raise(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        ck.load_checkpoint(tmp_path / "missing")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="missing"):
        ck.load_checkpoint(tmp_path / "hf")
    path = _save(tmp_path / "run")
    (path / "trainer.json").write_text(json.dumps({"format": "other", "format_version": 1}))
    with pytest.raises(CheckpointError, match="not a geodiff checkpoint"):
        ck.load_checkpoint(path)


def test_newer_format_version_raises(tmp_path):
    path = _save(tmp_path / "run")
    doc = json.loads((path / "trainer.json").read_text())
    doc["format_version"] = ck.FORMAT_VERSION + 1
    (path / "trainer.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="upgrade geodiff"):
        ck.load_checkpoint(path)


def test_no_unpickling_anywhere_in_the_package():
    root = Path(geodiff.__file__).parent
    pattern = re.compile(
        r"torch\.load\(|pickle\.loads?\(|^\s*(import|from) (c?pickle|dill)\b|weights_only\s*=\s*False",
        re.MULTILINE,
    )
    offenders = [
        str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text())
    ]
    assert offenders == []
