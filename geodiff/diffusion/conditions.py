"""What a sampler is told besides the noise: known pixels, a start step, labels, an image.

One value, :class:`Conditions`, carried from :func:`geodiff.diffusion.sample` through the model to
scene sampling, so that outpainting, inpainting, SDEdit-style editing and conditional networks
share one sampling path instead of a growing argument list.

Known pixels act on the denoiser's x_0 estimate: wherever ``mask`` is set the estimate is
replaced by ``known``. With ``states`` (the network inputs an earlier sample went through,
recorded by :func:`~geodiff.diffusion.sample`'s ``record``), the network also sees, on the
mask, the very states that sample had at each call: the known pixels then follow their own
reverse trajectory rather than a fresh forward noising, and the generated pixels next to them
see what the known ones saw while they were made (outpainting a block from its neighbours).
Otherwise: Every sampler here builds its next state from x_0 and the implied eps
(eps = (x_t - alpha x_0) / sigma), so on a known pixel the state stays the forward-noised known
value with the noise it started from, q(x_t | x_0 = known), at every step (RePaint's
replacement, Lugmayr et al. 2022, sec. 4, done through the estimate so that multistep solvers
see a consistent history), and the sample ends on ``known`` there exactly; the network meanwhile
sees the noisy known pixels as context for the unknown ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

__all__ = ["Conditions"]


@dataclass(frozen=True)
class Conditions:
    """Conditioning for one call of :func:`~geodiff.diffusion.sample`.

    Attributes
    ----------
    known : Tensor (B, C, H, W), optional
        Clean values (x_0, in the network's normalised space) of the pixels ``mask`` marks, or
        of every pixel for ``start``. Values outside the mask are ignored (NaN allowed there).
    mask : Tensor broadcastable to (B, C, H, W), optional
        True (or 1) where ``known`` holds; the sampler keeps those pixels and generates the rest.
    start : int, optional
        Trained timestep to start from instead of T-1 (SDEdit, Meng et al. 2022): the sampler
        visits only its timesteps at or below ``start`` and begins from ``known`` noised to the
        first of them. Needs ``known`` finite everywhere.
    noisy_start : bool
        With ``start``: ``known`` outside ``mask`` is already noisy at the first step's level (a
        noisy observation, such as an interferogram whose atmosphere is spatially correlated
        like the forward process's noise: Popescu et al.'s premise), so the sampler begins there
        from sqrt(abar) * known, with no fresh noise (denoising).
    labels : LongTensor (B,) or (B, H, W), or Tensor (B, classes), optional
        Class labels, passed to the network as ``y``: one class per sample, a float multi-hot
        row per sample (multi-label; all zeros is the null class), or for canvases a class per
        pixel (a label map: each window takes the class at its centre, see
        :func:`~geodiff.diffusion.windows.fused`).
    guidance : float
        Classifier-free guidance weight w (Ho & Salimans 2022): the network is also called with
        ``null_label`` and its output moved to ``uncond + (1 + w) (cond - uncond)``; 0 is plain
        conditional sampling.
    null_label : int, optional
        The network's null class (its ``num_classes``), needed for ``guidance``.
    image : Tensor (B, c, h, w), optional
        Conditioning image, passed to the network as ``cond`` (resized to the tile by the
        network): a low-resolution scene, a paired scene, or a tile's scale
        (:mod:`geodiff.scaling.condition`); for canvases, given on the canvas's pixels and cut
        with the windows.
    states : sequence of Tensor (B, C, H, W), optional
        One state per network call, in call order: what the network sees at that call wherever
        the state is finite (NaN elsewhere: the sampler's own state). Record them with the same
        sampler, steps and spacing.
    state_weight : Tensor broadcastable to (B, C, H, W), optional
        How much of the recorded state the network sees, per pixel (1: all of it; the rest is the
        sampler's own state).
    project : callable, optional
        A map of every x_0 estimate onto the samples consistent with an observation, applied
        before the known pixels are put back (e.g. fine pixels whose block means are a coarse
        scene, as DDNM's range-space projection, Wang et al. 2023).
    """

    known: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    start: int | None = None
    noisy_start: bool = False
    labels: torch.Tensor | None = None
    guidance: float = 0.0
    null_label: int | None = None
    image: torch.Tensor | None = None
    states: Sequence[torch.Tensor] | None = None
    state_weight: torch.Tensor | None = None
    project: Callable[[torch.Tensor], torch.Tensor] | None = None

    def check(self, shape: tuple[int, ...], num_timesteps: int) -> None:
        """Raise ValueError unless the conditions fit samples of ``shape``."""
        if self.mask is not None and self.known is None:
            raise ValueError("a mask needs the known values it marks")
        if self.known is not None and self.mask is None and self.start is None:
            raise ValueError("known values need a mask (pixels to keep) or a start timestep")
        if self.known is not None and tuple(self.known.shape) != tuple(shape):
            raise ValueError(f"known has shape {tuple(self.known.shape)}, expected {tuple(shape)}")
        if self.mask is not None:
            try:
                torch.broadcast_shapes(tuple(self.mask.shape), tuple(shape))
            except RuntimeError:
                raise ValueError(f"mask of shape {tuple(self.mask.shape)} does not broadcast to {tuple(shape)}") from None
        if self.noisy_start and self.start is None:
            raise ValueError("noisy_start describes the known values at a start timestep: it needs start")
        if self.start is not None:
            if self.known is None or not torch.isfinite(self.known).all():
                raise ValueError("start needs known values at every pixel")
            if not 0 <= int(self.start) < num_timesteps:
                raise ValueError(f"start must be a trained timestep 0..{num_timesteps - 1}, got {self.start}")
        if self.guidance and (self.labels is None or self.null_label is None):
            raise ValueError("guidance needs labels and the network's null_label")
        if self.labels is not None and self.labels.ndim == 3 and tuple(self.labels.shape[1:]) != tuple(shape[-2:]):
            raise ValueError(f"a label map of {tuple(self.labels.shape[1:])} pixels for a canvas of {tuple(shape[-2:])}")
        for name in ("labels", "image"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != shape[0]:
                raise ValueError(f"{name} has {value.shape[0]} entries for a batch of {shape[0]}")

    def rows(self, start: int, stop: int, batch: int) -> Conditions:
        """The conditions of samples ``start..stop`` of a batch of ``batch``: every tensor with
        ``batch`` rows is cut, broadcast ones (one row) are kept."""

        def cut(value):
            return value[start:stop] if value is not None and value.shape[0] == batch != 1 else value

        cut_states = None if self.states is None else [cut(state) for state in self.states]
        return replace(self, states=cut_states, state_weight=cut(self.state_weight),
                       **{name: cut(getattr(self, name)) for name in ("known", "mask", "labels", "image")})

    def network_kwargs(self, unconditional: bool = False) -> dict:
        """Keyword arguments for the network: ``y`` and ``cond`` where given (``y`` the null class
        with ``unconditional``, for guidance)."""
        out = {}
        if self.labels is not None:
            if not unconditional:
                out["y"] = self.labels
            elif self.labels.is_floating_point():
                out["y"] = torch.zeros_like(self.labels)
            else:
                out["y"] = torch.full_like(self.labels, self.null_label)
        if self.image is not None:
            out["cond"] = self.image
        return out

    def impose(self, x0: torch.Tensor) -> torch.Tensor:
        """``x0`` projected (with ``project``) and with the known pixels put back."""
        if self.project is not None:
            x0 = self.project(x0)
        return x0 if self.mask is None else self.impose_on(x0, self.known)

    def state_at(self, call: int, x: torch.Tensor) -> torch.Tensor:
        """``x`` with the recorded state of network call ``call`` wherever that is finite."""
        if call >= len(self.states):
            raise ValueError(f"states hold {len(self.states)} network calls and the sampler makes more: "
                             "record them with the same sampler, steps and spacing")
        state = self.states[call].to(device=x.device, dtype=x.dtype)
        finite = torch.isfinite(state)
        if self.state_weight is None:
            return torch.where(finite, state, x)
        weight = self.state_weight.to(device=x.device, dtype=x.dtype)
        return torch.where(finite, x + weight * (state.nan_to_num() - x), x)

    def impose_on(self, x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``x`` with ``values`` on the masked pixels (all of ``x`` without a mask)."""
        if self.mask is None:
            return x
        mask = self.mask.to(device=x.device, dtype=torch.bool)
        return torch.where(mask, values.to(device=x.device, dtype=x.dtype), x)
