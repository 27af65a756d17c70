"""UNet: shapes, conditioning, errors, presets, and its attention and embedding against closed forms."""

import json
import math

import pytest
import torch

from geodiff.diffusion.unet import Attention, UNet, timestep_embedding
from geodiff.errors import GeodiffError


def _perturb(model: UNet) -> UNet:
    """Zero-initialised output convolutions make every fresh UNet output 0; give them weights."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.abs().sum() == 0 and "weight" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return model


def test_fresh_output_is_zero_as_in_improved_ddpm():
    model = UNet.from_preset("tiny", 2)
    out = model(torch.randn(3, 2, 16, 16), torch.tensor([0, 10, 999]))
    assert out.shape == (3, 2, 16, 16)
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize("shape", [(16, 24), (8, 40), (32, 16)])
def test_non_square_multichannel_learn_sigma_shapes(shape):
    model = _perturb(
        UNet(
            3,
            3,
            base_channels=8,
            channel_mult=(1, 2, 2),
            num_res_blocks=1,
            attention_resolutions=(2, 4),
            num_heads=2,
            learn_sigma=True,
            seed=0,
        )
    )
    x = torch.randn(2, 3, *shape)
    out = model(x, torch.tensor([3, 700]))
    assert out.shape == (2, 6, *shape)
    assert torch.isfinite(out).all() and out.abs().sum() > 0


def test_in_and_out_channels_may_differ():
    model = UNet.from_preset("tiny", 4, out_channels=1)
    assert model(torch.randn(1, 4, 8, 8), 5).shape == (1, 1, 8, 8)


def test_sides_not_divisible_raise_clear_error():
    model = UNet(
        1,
        1,
        base_channels=8,
        channel_mult=(1, 2, 2),
        num_res_blocks=1,
        attention_resolutions=(),
        num_heads=1,
    )
    with pytest.raises(GeodiffError, match="divisible by 4"):
        model(torch.randn(1, 1, 16, 18), torch.tensor([1]))
    with pytest.raises(GeodiffError, match="expects"):
        model(torch.randn(1, 2, 16, 16), torch.tensor([1]))


def test_bad_attention_factor_and_heads_raise():
    with pytest.raises(GeodiffError, match="downsampling factors"):
        UNet(1, 1, base_channels=8, channel_mult=(1, 2), attention_resolutions=(16,), num_heads=1)
    with pytest.raises(GeodiffError, match="heads"):
        UNet(1, 1, base_channels=8, channel_mult=(1, 2), attention_resolutions=(2,), num_heads=3)


def test_class_embedding_and_null_class():
    model = _perturb(UNet.from_preset("tiny", 1, num_classes=3, seed=0))
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([50, 50])
    a = model(x, t, y=torch.tensor([0, 0]))
    b = model(x, t, y=torch.tensor([1, 1]))
    null = model(x, t, y=torch.tensor([3, 3]))
    assert not torch.allclose(a, b)
    torch.testing.assert_close(model(x, t), null)  # no labels means the null class
    with pytest.raises(GeodiffError, match="num_classes"):
        UNet.from_preset("tiny", 1)(x, t, y=torch.tensor([0, 0]))


def test_a_multi_hot_label_embeds_as_the_sum_of_its_classes():
    model = _perturb(UNet.from_preset("tiny", 1, num_classes=3, seed=0))
    table = model.class_embed.weight
    both = model._class_embedding(torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(both[0], table[0] + table[2])
    torch.testing.assert_close(both[1], table[3])  # no class: the null class
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([50, 50])
    one_hot = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(model(x, t, y=one_hot), model(x, t, y=torch.tensor([1, 3])))
    with pytest.raises(GeodiffError, match="multi-hot"):
        model(x, t, y=torch.ones(2, 4))


def test_low_resolution_conditioning_is_resized_bilinearly():
    model = _perturb(UNet.from_preset("tiny", 1, cond_channels=2, seed=0))
    x, t = torch.randn(2, 1, 16, 24), torch.tensor([5, 9])
    low = torch.randn(2, 2, 8, 12)
    # Oracle: the same image resized beforehand by torch's own bilinear interpolation.
    full = torch.nn.functional.interpolate(low, size=(16, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(model(x, t, cond=low), model(x, t, cond=full))
    assert not torch.allclose(model(x, t, cond=low), model(x, t, cond=torch.zeros_like(low)))
    with pytest.raises(GeodiffError, match="conditioning"):
        model(x, t)


def test_presets_parameter_counts():
    def count(m):
        return sum(p.numel() for p in m.parameters())
    assert count(UNet.from_preset("tiny", 1)) < 100_000
    assert 1_000_000 <= count(UNet.from_preset("small", 1)) <= 3_000_000
    base = UNet.from_preset("base", 1)
    assert base.config["base_channels"] == 128 and count(base) > 50_000_000
    with pytest.raises(GeodiffError, match="preset"):
        UNet.from_preset("huge", 1)


def test_config_round_trip_through_json():
    model = _perturb(
        UNet.from_preset("tiny", 2, learn_sigma=True, num_classes=4, cond_channels=1, seed=3)
    )
    clone = UNet.from_config(json.loads(json.dumps(model.config)))
    clone.load_state_dict(model.state_dict())
    x, t, y, c = (
        torch.randn(2, 2, 8, 8),
        torch.tensor([1, 2]),
        torch.tensor([0, 4]),
        torch.randn(2, 1, 4, 4),
    )
    torch.testing.assert_close(clone(x, t, y, c), model(x, t, y, c), rtol=0, atol=0)
    with pytest.raises(GeodiffError, match="not a UNet config"):
        UNet.from_config({"in_channels": 1, "out_channels": 1, "width": 3})


def test_seed_makes_init_reproducible_without_touching_global_rng():
    state = torch.get_rng_state()
    a, b = UNet.from_preset("tiny", 1, seed=7), UNet.from_preset("tiny", 1, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_timestep_embedding_closed_form():
    t = torch.tensor([0.0, 1.0, 17.5])
    emb = timestep_embedding(t, 6)
    for i, ti in enumerate(t.tolist()):
        for k in range(3):
            w = 10000.0 ** (-k / 3)
            assert emb[i, k].item() == pytest.approx(math.cos(ti * w), abs=1e-6)
            assert emb[i, 3 + k].item() == pytest.approx(math.sin(ti * w), abs=1e-6)


def test_attention_matches_explicit_softmax_attention():
    torch.manual_seed(0)
    block = Attention(8, num_heads=2)
    torch.nn.init.normal_(block.proj.weight)
    x = torch.randn(2, 8, 3, 5)
    h = block.norm(x)
    q, k, v = block.qkv(h).reshape(2, 3, 8, 15).unbind(1)
    heads = []
    for i in range(2):  # softmax(q k^T / sqrt(d)) v, Vaswani et al. (2017) eq. 1
        qi, ki, vi = (z[:, 4 * i : 4 * i + 4] for z in (q, k, v))
        w = torch.softmax(qi.transpose(1, 2) @ ki / math.sqrt(4), dim=-1)
        heads.append((w @ vi.transpose(1, 2)).transpose(1, 2))
    expected = x + block.proj(torch.cat(heads, 1).reshape(2, 8, 3, 5))
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_gradients_reach_every_parameter():
    model = _perturb(
        UNet.from_preset("tiny", 1, num_classes=2, cond_channels=1, learn_sigma=True, seed=0)
    )
    out = model(
        torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), torch.tensor([0, 1]), torch.randn(2, 1, 4, 4)
    )
    out.square().sum().backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
    ]
    assert not missing
