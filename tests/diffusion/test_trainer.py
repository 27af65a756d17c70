"""Trainer: it learns real tiles, trains a learned variance stably, and resumes bit for bit."""

import math

import numpy as np
import pytest
import torch

from geodiff.diffusion.checkpoint import load_checkpoint
from geodiff.diffusion.device import pick_device
from geodiff.diffusion.noise import NoiseSpec
from geodiff.diffusion.schedule import NoiseSchedule
from geodiff.diffusion.train import TrainConfig, Trainer
from geodiff.diffusion.unet import UNet
from geodiff.errors import CheckpointError, GeodiffError
from tests.conftest import require_data


def _real_tiles(n: int = 8, size: int = 32) -> torch.Tensor:
    """``n`` tiles of the Campi Flegrei LOS velocity, NaN filled with the tile mean, each min-max
    scaled to [-1, 1] (the per-tile normalisation of Tuel et al. 2023)."""
    import rioxarray

    path = require_data("insar", "campi_flegrei", "vel.tif")
    vel = rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True).values
    tiles = []
    for i in range(0, vel.shape[0] - size + 1, size // 2):
        for j in range(0, vel.shape[1] - size + 1, size // 2):
            tile = vel[i : i + size, j : j + size]
            if np.isnan(tile).mean() < 0.05:
                tile = np.where(np.isfinite(tile), tile, np.nanmean(tile))
                tiles.append(2 * (tile - tile.min()) / (tile.max() - tile.min()) - 1)
    assert len(tiles) >= n
    pick = np.linspace(0, len(tiles) - 1, n).round().astype(int)
    return torch.from_numpy(np.stack([tiles[k] for k in pick]).astype(np.float32))[:, None]


def test_tiny_unet_overfits_eight_real_tiles():
    x = _real_tiles()
    model = UNet.from_preset("tiny", 1, seed=0)
    config = TrainConfig(
        lr=3e-3,
        warmup_steps=10,
        batch_size=8,
        train_steps=120,
        log_every=20,
        ema_decay=0.99,
        progress=False,
        seed=0,
    )
    trainer = Trainer(model, NoiseSchedule("cosine", timesteps=1000), config, device="cpu")
    before = trainer.validation_loss(x)["val_loss"]
    history = trainer.fit(x)
    after = trainer.validation_loss(x)["val_loss"]
    # A zero-initialised eps model starts at E[eps^2] = 1 on fixed validation draws.
    assert before == pytest.approx(1.0, abs=0.1)
    assert after <= before / 10, (before, after)
    assert [r["step"] for r in history] == [20, 40, 60, 80, 100, 120]
    assert all(r["images_per_s"] > 0 and math.isfinite(r["loss"]) for r in history)


def test_learned_variance_hybrid_loss_trains_without_nan():
    x = _real_tiles(8, 16)
    model = UNet.from_preset("tiny", 1, learn_sigma=True, seed=1)
    config = TrainConfig(
        lr=2e-3,
        batch_size=8,
        train_steps=30,
        log_every=10,
        progress=False,
        timestep_draw="loss-second-moment",
        seed=1,
    )
    trainer = Trainer(model, NoiseSchedule("cosine", timesteps=1000), config, device="cpu")
    assert trainer.loss == "hybrid"
    history = trainer.fit(x)
    for record in history:
        assert all(math.isfinite(record[k]) for k in ("loss", "mse", "vlb", "grad_norm"))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    out = trainer.ema_model()(x, torch.full((8,), 500))
    assert out.shape == (8, 2, 16, 16) and torch.isfinite(out).all()


def _resume_setup(seed=3):
    model = UNet.from_preset("tiny", 1, num_classes=2, dropout=0.2, seed=seed)
    config = TrainConfig(
        lr=1e-3,
        warmup_steps=2,
        batch_size=4,
        grad_accum=2,
        train_steps=6,
        log_every=1,
        ema_decay=0.9,
        timestep_draw="loss-second-moment",
        class_dropout=0.3,
        noise=NoiseSpec("exponential", length=2.0),
        progress=False,
        seed=seed,
    )
    return model, NoiseSchedule("linear", timesteps=50), config


def test_resume_is_bit_identical(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, labels = torch.randn(10, 1, 8, 8, generator=g), torch.randint(0, 2, (10,), generator=g)

    full = Trainer(*_resume_setup(), device="cpu")
    full.fit(x, labels=labels)

    first = Trainer(*_resume_setup(), device="cpu")
    first.fit(x, labels=labels, train_steps=3)
    first.save(tmp_path / "ck")
    torch.manual_seed(123)  # the user's global RNG must not matter
    resumed = Trainer.from_checkpoint(tmp_path / "ck", device="cpu")
    assert resumed.step == 3
    resumed.fit(x, labels=labels)

    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    for k, v in full.ema.state_dict().items():
        assert torch.equal(v, resumed.ema.state_dict()[k])
    assert [r["loss"] for r in full.history] == [r["loss"] for r in resumed.history]
    assert [r["grad_norm"] for r in full.history] == [r["grad_norm"] for r in resumed.history]
    # Without the dropout state the continuation diverges: the test can fail.
    other = Trainer.from_checkpoint(tmp_path / "ck", device="cpu")
    other._dropout_rng = {"cpu": torch.manual_seed(9).get_state()}
    other.fit(x, labels=labels)
    assert not torch.equal(other.model.output.weight, full.model.output.weight)


def test_same_seed_same_run_and_user_rng_untouched():
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    runs = []
    for _ in range(2):
        state = torch.get_rng_state()
        trainer = Trainer(
            *_resume_setup(seed=5)[:2],
            TrainConfig(train_steps=3, batch_size=3, progress=False, seed=5, log_every=1),
            device="cpu",
        )
        trainer.fit(x)
        assert torch.equal(torch.get_rng_state(), state)
        runs.append([r["loss"] for r in trainer.history])
    assert runs[0] == runs[1]


def test_checkpoints_during_fit_callbacks_and_validation(tmp_path):
    x = torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    seen, previews = [], []
    config = TrainConfig(
        train_steps=8,
        batch_size=4,
        log_every=2,
        checkpoint_every=3,
        preview_every=4,
        checkpoint_dir=str(tmp_path / "ck"),
        val_fraction=0.3,
        progress=False,
    )
    trainer = Trainer(
        UNet.from_preset("tiny", 1, seed=0),
        NoiseSchedule("cosine", timesteps=100),
        config,
        device="cpu",
    )
    trainer.fit(
        x,
        callback=lambda r: seen.append(r["step"]) or r["step"] >= 6,
        preview_callback=lambda step, m: previews.append((step, m.training)),
    )
    assert seen == [2, 4, 6] and trainer.step == 6  # the callback stopped training
    assert previews == [(4, False), (6, False)]
    assert all("val_loss" in r and math.isfinite(r["val_loss"]) for r in trainer.history)
    assert load_checkpoint(tmp_path / "ck").state["step"] == 6


def test_length_and_config_round_trip():
    cfg = TrainConfig(epochs=2.5, batch_size=4, grad_accum=2, noise="white", progress=False)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    trainer = Trainer(
        UNet.from_preset("tiny", 1), NoiseSchedule("cosine", timesteps=10), cfg, device="cpu"
    )
    assert trainer.total_steps(100) == math.ceil(2.5 * 100 / 8)
    with pytest.raises(GeodiffError):
        TrainConfig(prediction="score")
    with pytest.raises(GeodiffError, match="hybrid"):
        Trainer(
            UNet.from_preset("tiny", 1),
            NoiseSchedule("cosine", timesteps=10),
            TrainConfig(loss="hybrid"),
            device="cpu",
        )


def test_bad_data_and_gpu_only_options():
    sched = NoiseSchedule("cosine", timesteps=10)
    trainer = Trainer(
        UNet.from_preset("tiny", 1), sched, TrainConfig(train_steps=1, progress=False), device="cpu"
    )
    bad = torch.zeros(4, 1, 8, 8)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(GeodiffError, match="NaN"):
        trainer.fit(bad)
    with pytest.warns(UserWarning, match="ignored on cpu"):
        t = Trainer(
            UNet.from_preset("tiny", 1),
            sched,
            TrainConfig(compile=True, channels_last=True),
            device="cpu",
        )
    assert t.forward_model is t.model and not t.channels_last and t.amp_dtype is None


def test_checkpoint_of_another_model_or_kind_is_refused(tmp_path):
    sched = NoiseSchedule("cosine", timesteps=10)
    small = Trainer(UNet.from_preset("tiny", 1), sched, TrainConfig(progress=False), device="cpu")
    small.save(tmp_path / "ck")
    wide = Trainer(
        UNet.from_preset("tiny", 1, base_channels=8),
        sched,
        TrainConfig(progress=False),
        device="cpu",
    )
    with pytest.raises(CheckpointError, match="from_checkpoint"):
        wide.load(tmp_path / "ck")
    with pytest.raises(CheckpointError):
        Trainer.from_checkpoint(tmp_path / "nothing")


def test_pick_device_order_and_unavailable_request(monkeypatch):
    # Each availability pattern is forced, so the order is checked on any machine.
    for cuda, mps, expected in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda mps=mps: mps)
        assert pick_device().type == expected
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(GeodiffError, match="CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(GeodiffError, match="MPS is not available"):
        pick_device("mps")


def test_super_resolution_conditioning_and_numpy_input():
    g = torch.Generator().manual_seed(4)
    high = torch.randn(6, 1, 8, 8, generator=g)
    low = torch.nn.functional.avg_pool2d(high, 2)
    model = UNet.from_preset("tiny", 1, cond_channels=1, seed=0)
    trainer = Trainer(
        model,
        NoiseSchedule("cosine", timesteps=20),
        TrainConfig(train_steps=3, batch_size=3, log_every=1, progress=False),
        device="cpu",
    )
    history = trainer.fit(
        high.numpy().astype(np.float64), cond=low.numpy(), val_data=high, val_cond=low
    )
    assert trainer.step == 3 and all(math.isfinite(r["val_loss"]) for r in history)
    assert model.output.weight.abs().sum() > 0  # the zero-initialised output layer has learned
    with pytest.raises(GeodiffError, match="cond has 2 entries"):
        trainer.fit(high, cond=low[:2], train_steps=4)


def test_time_budget_stops_training_and_the_bar_aims_at_it(monkeypatch, capsys):
    """A clock that advances 1 s per reading: with a 10.5 s budget and a 1000-step cap, the 11th
    step ends past the budget, and the bar counts to the 11 steps the budget allows, not to 1000."""
    import itertools

    import geodiff.diffusion.train.hooks as trainer_module

    ticks = itertools.count()
    monkeypatch.setattr(trainer_module, "_clock", lambda: float(next(ticks)))
    model = UNet.from_preset("tiny", 1, seed=0)
    config = TrainConfig(train_steps=1000, max_seconds=10.5, batch_size=2, log_every=1000, seed=0)
    trainer = Trainer(model, NoiseSchedule("cosine", timesteps=50), config, device="cpu")
    totals = []
    trainer.fit(torch.zeros(4, 1, 8, 8), callback=lambda record: totals.append(record["step"]))
    assert trainer.step == 11 and totals == [11]  # the last step is recorded and reported
    err = capsys.readouterr().err
    assert "11/11" in err and "/1000" not in err
    with pytest.raises(GeodiffError, match="max_seconds"):
        TrainConfig(train_steps=5, max_seconds=0)


def test_hooks_see_every_step_and_can_stop_the_run_and_restore_takes_a_model_factory(tmp_path):
    from geodiff.diffusion.train import Hook

    class StopAtThree(Hook):
        def __init__(self):
            self.seen = []

        def after_step(self, trainer, event):
            self.seen.append((event.step, trainer.step))
            event.stop = event.step == 3

    hook = StopAtThree()
    config = TrainConfig(train_steps=10, batch_size=2, log_every=1, seed=0, progress=False,
                         checkpoint_dir=str(tmp_path / "ck"))
    trainer = Trainer(UNet.from_preset("tiny", 1, seed=0), NoiseSchedule("cosine", timesteps=50), config, device="cpu")
    trainer.fit(torch.zeros(4, 1, 8, 8), hooks=[hook])
    assert hook.seen == [(1, 1), (2, 2), (3, 3)] and trainer.step == 3
    built = []

    def factory(model_config):
        built.append(model_config)
        return UNet.from_config(model_config)

    again = Trainer.from_checkpoint(tmp_path / "ck", device="cpu", model_factory=factory)
    assert again.step == 3 and built == [trainer.model.config]  # the checkpoint was written when the hook stopped


def test_an_iterable_of_batches_trains_as_the_same_batches_drawn_from_a_tensor():
    from geodiff.diffusion.train.batches import batch_items

    x = torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    def trainer():
        config = TrainConfig(train_steps=3, batch_size=4, log_every=1, seed=0, progress=False)
        return Trainer(UNet.from_preset("tiny", 1, seed=0), NoiseSchedule("cosine", timesteps=50), config,
                       device="cpu")

    from_tensor, from_batches = trainer(), trainer()
    from_tensor.fit(x)
    loader = torch.utils.data.DataLoader([x[batch_items(12, 4, 0, step)] for step in range(3)], batch_size=None)
    from_batches.fit(loader)
    assert [r["loss"] for r in from_batches.history] == [r["loss"] for r in from_tensor.history]
    with pytest.raises(GeodiffError, match="labels and cond belong in its batches"):
        trainer().fit(loader, labels=torch.zeros(12, dtype=torch.long))
    with pytest.raises(GeodiffError, match="no tile count"):
        Trainer(UNet.from_preset("tiny", 1), NoiseSchedule("cosine", timesteps=50),
                TrainConfig(epochs=1, progress=False), device="cpu").fit(iter([x[:4]]))
    # An epoch's last batch may be short: its timesteps and noise are drawn for its own size.
    short = trainer()
    short.fit(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:6]), batch_size=4))
    assert short.step == 3 and all(math.isfinite(r["loss"]) for r in short.history)


def _losses_with_gpu_paths(monkeypatch, compile_: bool | None) -> list[float]:
    """Three steps' losses, fp32 eager (``compile_`` None) or with bf16 autocast and
    channels-last forced on, compiled or not: the policy turns them on for CUDA only, and
    forced on here the same code runs on the CPU (torch's CPU autocast, NHWC convolutions,
    inductor)."""
    from geodiff.diffusion.train import loop

    forced = compile_ is not None
    if forced:
        monkeypatch.setattr(loop, "autocast_dtype", lambda amp, device: torch.bfloat16)
        monkeypatch.setattr(loop, "gpu_only", lambda name, value, default, device: name != "compile" or compile_)
    trainer = Trainer(UNet.from_preset("tiny", 1, attention_resolutions=(), seed=0), NoiseSchedule("sigmoid", 50),
                      TrainConfig(train_steps=3, batch_size=4, log_every=1, progress=False, seed=1), device="cpu")
    assert (trainer.amp_dtype is torch.bfloat16) == forced and trainer.channels_last == forced
    assert (trainer.forward_model is not trainer.model) == bool(compile_)
    return [r["loss"] for r in trainer.fit(torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)))]


def test_bf16_autocast_and_channels_last_train_on_the_cpu_as_fp32_does(monkeypatch):
    fp32 = _losses_with_gpu_paths(monkeypatch, None)
    forced = _losses_with_gpu_paths(monkeypatch, False)
    assert fp32 != forced  # bf16 did round
    # bf16 keeps 8 bits of mantissa: a few per cent on the losses, no more.
    np.testing.assert_allclose(forced, fp32, rtol=0.05)


@pytest.mark.slow
def test_the_compiled_model_trains_on_the_cpu_as_the_eager_one_does(monkeypatch):
    eager = _losses_with_gpu_paths(monkeypatch, False)
    compiled = _losses_with_gpu_paths(monkeypatch, True)
    np.testing.assert_allclose(compiled, eager, rtol=0.02)
