"""The denoising UNet: residual blocks with adaptive GroupNorm, self-attention, class and low-res conditioning.

One network in one module (about 430 lines, a third of them docstrings): its blocks, embeddings,
presets and config round trip are read together when the architecture is.

Architecture after Ho et al. (2020), *Denoising Diffusion Probabilistic Models*, with the changes of
Nichol & Dhariwal (2021), *Improved DDPM* (scale-shift time conditioning, learned variance output,
zero-initialised residual and output convolutions) and Dhariwal & Nichol (2021), *Diffusion Models
Beat GANs* (class embedding added to the time embedding, bilinear low-resolution conditioning for
super-resolution).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geodiff.errors import GeodiffError

__all__ = ["PRESETS", "UNet", "timestep_embedding"]

# Named sizes. "base" follows improved DDPM's 64x64 model (128 channels, mult 1-2-3-4, three
# residual blocks per level, attention at 16 and 8 pixels of a 64-pixel tile).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "base_channels": 16,
        "channel_mult": (1, 1),
        "num_res_blocks": 1,
        "attention_resolutions": (2,),
        "num_heads": 1,
        "dropout": 0.0,
    },
    "small": {
        "base_channels": 32,
        "channel_mult": (1, 2, 2, 2),
        "num_res_blocks": 2,
        "attention_resolutions": (4,),
        "num_heads": 4,
        "dropout": 0.0,
    },
    "base": {
        "base_channels": 128,
        "channel_mult": (1, 2, 3, 4),
        "num_res_blocks": 3,
        "attention_resolutions": (4, 8),
        "num_heads": 4,
        "dropout": 0.1,
    },
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, Vaswani et al. (2017) section 3.5.

    Parameters
    ----------
    t : Tensor (B,)
        Timesteps, in steps of the trained schedule.
    dim : int
        Embedding width (even).

    Returns
    -------
    Tensor (B, dim), float32: ``[cos(t w_k), sin(t w_k)]`` with ``w_k = max_period^(-k / (dim/2))``.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _groups(channels: int) -> int:
    """Largest group count <= 32 dividing ``channels`` (32 is the standard of improved DDPM)."""
    return next(g for g in range(min(32, channels), 0, -1) if channels % g == 0)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def resized(image: torch.Tensor, size) -> torch.Tensor:
    """A conditioning image ``(B, c, h, w)`` resized bilinearly to ``size`` as the network sees
    it (``align_corners=False``; the identity at its own size)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=tuple(size), mode="bilinear", align_corners=False)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time embedding entering as scale and shift of the second norm."""

    def __init__(self, in_ch: int, out_ch: int, emb_ch: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_ch, 2 * out_ch)
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch, affine=False)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        # Adaptive GroupNorm (improved DDPM, "use_scale_shift_norm"): norm(h) * (1 + s) + b.
        h = torch.addcmul(shift, self.norm2(h), scale + 1)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over all pixels of a feature map, residual and zero-initialised."""

    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        if channels % num_heads:
            raise GeodiffError(
                f"attention over {channels} channels cannot be split into {num_heads} heads; "
                "choose num_heads dividing every channel count at the attention resolutions"
            )
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, HW, head_dim)
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One residual block plus its optional attention, the unit of both UNet paths."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_ch: int, dropout: float, attention: bool, num_heads: int
    ):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_ch, dropout)
        self.attn = Attention(out_ch, num_heads) if attention else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.res(x, emb)
        return x if self.attn is None else self.attn(x)


class UNet(nn.Module):
    """Denoising UNet for (B, C, H, W) tiles of any channel count and any shape divisible by 2^(levels-1).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the data (``out_channels`` is usually ``in_channels``).
    base_channels : int
        Width of the first level; level ``i`` has ``base_channels * channel_mult[i]`` channels.
    channel_mult : sequence of int
        Width multipliers, one per resolution level; each level after the first halves H and W.
    num_res_blocks : int
        Residual blocks per level on the way down (one more on the way up, as in improved DDPM).
    attention_resolutions : sequence of int
        Downsampling factors (1, 2, 4, ...) at which self-attention follows each residual block;
        factors rather than pixel sizes so that non-square tiles are handled.
    num_heads : int
        Attention heads.
    dropout : float
        Dropout probability inside residual blocks.
    num_classes : int, optional
        Enables a class embedding; index ``num_classes`` is the null class used for
        classifier-free guidance (and when ``y`` is omitted).
    cond_channels : int
        Channels of an optional low-resolution conditioning image, bilinearly resized to the tile
        and concatenated to the input (super-resolution).
    learn_sigma : bool
        Output ``2 * out_channels`` channels: the prediction, then the variance interpolation
        value ``v`` of improved DDPM eq. 15.
    seed : int, optional
        Seed of the weight initialisation (the global RNG is left untouched); not part of
        ``config``.

    Notes
    -----
    For inference, ``model.to(memory_format=torch.channels_last)`` makes oneDNN's CPU
    convolutions about 15-20 % faster (:meth:`Trainer.ema_model` returns the model so); keep the
    default layout for CPU training, where the NHWC backward is slower.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        base_channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 2, 4),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (8,),
        num_heads: int = 4,
        dropout: float = 0.0,
        num_classes: int | None = None,
        cond_channels: int = 0,
        learn_sigma: bool = False,
        seed: int | None = None,
    ):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise GeodiffError(
                f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}"
            )
        if not channel_mult or num_res_blocks < 1 or base_channels < 1:
            raise GeodiffError(
                "channel_mult must be non-empty, num_res_blocks and base_channels >= 1"
            )
        levels = len(channel_mult)
        factors = {2**i for i in range(levels)}
        unknown = sorted({int(a) for a in attention_resolutions} - factors)
        if unknown:
            raise GeodiffError(
                f"attention_resolutions {unknown} are not downsampling factors of this UNet "
                f"(possible: {sorted(factors)}); give factors (1 = full tile), not pixel sizes"
            )
        self.config: dict[str, Any] = {
            "in_channels": int(in_channels),
            "out_channels": int(out_channels),
            "base_channels": int(base_channels),
            "channel_mult": [int(m) for m in channel_mult],
            "num_res_blocks": int(num_res_blocks),
            "attention_resolutions": sorted(int(a) for a in attention_resolutions),
            "num_heads": int(num_heads),
            "dropout": float(dropout),
            "num_classes": None if num_classes is None else int(num_classes),
            "cond_channels": int(cond_channels),
            "learn_sigma": bool(learn_sigma),
        }
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_classes, self.cond_channels, self.learn_sigma = (
            num_classes,
            cond_channels,
            learn_sigma,
        )
        self.divisor = 2 ** (levels - 1)

        with torch.random.fork_rng(devices=[]) if seed is not None else nullcontext():
            if seed is not None:
                torch.manual_seed(seed)
            self._build(
                base_channels,
                channel_mult,
                num_res_blocks,
                set(self.config["attention_resolutions"]),
                num_heads,
                dropout,
            )

    def _build(self, base, mult, nres, attn, heads, dropout):
        emb_ch = 4 * base
        self.time_embed = nn.Sequential(
            nn.Linear(base, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch)
        )
        self.class_embed = nn.Embedding(self.num_classes + 1, emb_ch) if self.num_classes else None
        self.input = nn.Conv2d(self.in_channels + self.cond_channels, base, 3, padding=1)

        self.down = nn.ModuleList()
        skips, ch = [base], base
        for i, m in enumerate(mult):
            for _ in range(nres):
                self.down.append(Level(ch, base * m, emb_ch, dropout, 2**i in attn, heads))
                ch = base * m
                skips.append(ch)
            if i < len(mult) - 1:
                self.down.append(Downsample(ch))
                skips.append(ch)
        self.middle = nn.ModuleList(
            [
                Level(ch, ch, emb_ch, dropout, True, heads),
                Level(ch, ch, emb_ch, dropout, False, heads),
            ]
        )
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mult))):
            for j in range(nres + 1):
                self.up.append(
                    Level(ch + skips.pop(), base * m, emb_ch, dropout, 2**i in attn, heads)
                )
                ch = base * m
            if i > 0:
                self.up.append(Upsample(ch))
        self.out_norm = nn.GroupNorm(_groups(ch), ch)
        out = self.out_channels * (2 if self.learn_sigma else 1)
        self.output = _zero(nn.Conv2d(ch, out, 3, padding=1))

    @classmethod
    def from_preset(
        cls, name: str, in_channels: int, *, learn_sigma: bool = False, **overrides: Any
    ) -> UNet:
        """Build a named size: "tiny" (tests, < 100k parameters), "small" (CPU demos, ~2M), "base" (paper).

        ``out_channels`` defaults to ``in_channels``; any constructor argument may be overridden.
        """
        if name not in PRESETS:
            raise GeodiffError(f"unknown UNet preset {name!r}; choose one of {sorted(PRESETS)}")
        kwargs = {**PRESETS[name], "out_channels": in_channels, **overrides}
        return cls(in_channels, learn_sigma=learn_sigma, **kwargs)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UNet:
        """Rebuild a UNet from its ``config`` dict (weights are loaded separately)."""
        unknown = set(config) - _CONFIG_KEYS
        missing = {"in_channels", "out_channels"} - set(config)
        if unknown or missing:
            raise GeodiffError(
                f"not a UNet config: unknown keys {sorted(unknown)}, missing {sorted(missing)}"
            )
        kwargs = dict(config)
        return cls(kwargs.pop("in_channels"), kwargs.pop("out_channels"), **kwargs)

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"{n / 1e6:.2f}M parameters, config={self.config}"

    def _check(self, x: torch.Tensor, y, cond) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise GeodiffError(
                f"UNet expects (B, {self.in_channels}, H, W) input, got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % self.divisor or w % self.divisor:
            raise GeodiffError(
                f"tile sides ({h} x {w}) must be divisible by {self.divisor} = 2^(levels-1) for a UNet "
                f"with {len(self.config['channel_mult'])} levels; crop or pad the tile, or use fewer levels"
            )
        if y is not None and self.class_embed is None:
            raise GeodiffError("class labels given to a UNet built without num_classes")
        if y is not None and y.is_floating_point() and (y.ndim != 2 or y.shape[1] != self.num_classes):
            raise GeodiffError(f"multi-hot labels must be (B, {self.num_classes}), got {tuple(y.shape)}")
        if self.cond_channels and cond is None:
            raise GeodiffError(
                f"this UNet needs a {self.cond_channels}-channel conditioning image (cond=)"
            )
        if cond is not None and (
            not self.cond_channels or cond.ndim != 4 or cond.shape[1] != self.cond_channels
        ):
            raise GeodiffError(
                f"cond must be (B, {self.cond_channels}, h, w) for this UNet, got "
                f"{None if cond is None else tuple(cond.shape)}"
            )

    def _class_embedding(self, y: torch.Tensor) -> torch.Tensor:
        if not y.is_floating_point():
            return self.class_embed(y)
        table = self.class_embed.weight
        null = (y.sum(1, keepdim=True) == 0).to(table.dtype)
        return y.to(table.dtype) @ table[:-1] + null * table[-1]

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict from noisy tiles.

        Parameters
        ----------
        x : Tensor (B, in_channels, H, W)
            Noisy tiles.
        t : Tensor (B,) or scalar
            Timesteps of the trained schedule (0..T-1; fractional values allowed).
        y : LongTensor (B,) or Tensor (B, num_classes), optional
            Class labels in ``0..num_classes``; ``num_classes`` (or omitting ``y``) is the null class.
            Multi-label: a float multi-hot ``(B, num_classes)``, embedded as the sum of its
            classes' embeddings; an all-zero row is the null class.
        cond : Tensor (B, cond_channels, h, w), optional
            Low-resolution conditioning image, resized bilinearly to (H, W).

        Returns
        -------
        Tensor (B, out_channels * (2 if learn_sigma else 1), H, W)
        """
        self._check(x, y, cond)
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(t, self.config["base_channels"]))
        if self.class_embed is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self._class_embedding(y)
        if cond is not None:
            x = torch.cat([x, resized(cond.to(x.dtype), x.shape[-2:])], dim=1)

        h = self.input(x)
        skips = [h]
        for block in self.down:
            h = block(h, emb) if isinstance(block, Level) else block(h)
            skips.append(h)
        for block in self.middle:
            h = block(h, emb)
        for block in self.up:
            h = (
                block(torch.cat([h, skips.pop()], dim=1), emb)
                if isinstance(block, Level)
                else block(h)
            )
        return self.output(F.silu(self.out_norm(h)))


_CONFIG_KEYS = {
    "in_channels",
    "out_channels",
    "base_channels",
    "channel_mult",
    "num_res_blocks",
    "attention_resolutions",
    "num_heads",
    "dropout",
    "num_classes",
    "cond_channels",
    "learn_sigma",
}
