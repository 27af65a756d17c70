"""EMA of weights against hand computations of the recurrence and its closed form."""

import pytest
import torch
from torch import nn

from geodiff.diffusion.ema import EMA


def _model(value: float) -> nn.Module:
    m = nn.Linear(1, 1, bias=False)
    nn.init.constant_(m.weight, value)
    return m


def _set(m: nn.Module, value: float) -> None:
    with torch.no_grad():
        m.weight.fill_(value)


def test_constant_decay_matches_closed_form():
    # s_n = d^n s_0 + (1 - d^n) p for a parameter held at p.
    model, d = _model(2.0), 0.9
    ema = EMA(model, decay=d, warmup=False)
    _set(model, -1.0)
    for _ in range(7):
        ema.update(model)
    expected = d**7 * 2.0 + (1 - d**7) * -1.0
    assert ema.shadow["weight"].item() == pytest.approx(expected, rel=1e-6)


def test_warmup_matches_hand_recurrence():
    model = _model(0.0)
    ema = EMA(model, decay=0.5, warmup=True)
    values, s = [1.0, 3.0, -2.0, 5.0], 0.0
    for n, v in enumerate(values):
        _set(model, v)
        ema.update(model)
        d = min(0.5, (1 + n) / (10 + n))  # 0.1, 2/11, 0.25, 4/13 stay under 0.5
        s = d * s + (1 - d) * v
    assert ema.shadow["weight"].item() == pytest.approx(s, rel=1e-6)
    assert ema.num_updates == 4


def test_state_round_trip_and_averaged_model():
    model = _model(1.0)
    ema = EMA(model, decay=0.99)
    _set(model, 4.0)
    ema.update(model)
    other = EMA(_model(0.0), decay=0.99)
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 1 and torch.equal(other.shadow["weight"], ema.shadow["weight"])
    avg = ema.averaged_model(model)
    assert torch.equal(avg.weight, ema.shadow["weight"]) and model.weight.item() == 4.0
    with pytest.raises(KeyError):
        other.load_state_dict({"num_updates": torch.tensor(1)})


def test_decay_out_of_range_rejected():
    with pytest.raises(ValueError):
        EMA(_model(0.0), decay=1.0)
