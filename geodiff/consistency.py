"""Data consistency: projections of the sampler's x_0 estimates onto what is observed.

Super-resolution (:func:`block_mean_projection`): a fine scene and the coarse scene it came from
are tied exactly: each coarse pixel is the mean of its ``f x f`` fine pixels (in linear power
for backscatter). Projecting every x_0 estimate of the sampler onto the fine scenes that keep
this tie (the range-space projection of DDNM, Wang, Yu and Zhang 2023) leaves the network only
the detail within each coarse pixel to make, and the projection onto a set that holds the truth
never moves an estimate away from it. For additive units the projection adds each block's mean
error back; for power it rescales each block, so that the power stays positive.

Inpainting (:func:`harmonic_projection`): known pixels put back into an estimate (RePaint's
replacement) change it on those pixels only, so a gap whose estimate sits off the level of the
pixels around it keeps that step until the network, a step later, sees and mends it; at a few
sampler steps it is never mended, and fills drift. The projection instead carries the
estimate's mismatch on the known pixels into the gap as its Laplace fill: of all the estimates
that meet the known pixels, the one whose change from the network's is smoothest (least
Dirichlet energy), which is Poisson image editing (Perez, Gangnet and Blake 2003) of every x_0
estimate. The change is harmonic, so the network's texture in the gap is kept.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _cells(first: int, length: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the coarse cells that rows ``first .. first + length`` of the fine
    grid fall in (the first and last may be cut by the canvas)."""
    rows = np.arange(first, first + length)
    starts = np.flatnonzero(np.r_[True, (rows[1:] // factor) != (rows[:-1] // factor)])
    return starts, np.diff(np.r_[starts, length])


def block_mean_projection(target: np.ndarray, loc: np.ndarray, scale: np.ndarray, scaler, factor: int,
                          first: tuple[int, int], offset: np.ndarray | None = None) -> Callable:
    """A ``project`` for :class:`~geodiff.diffusion.conditions.Conditions` on one canvas.

    Parameters
    ----------
    target
        ``(C, H, W)`` the coarse scene repeated onto the canvas's fine pixels, physical units.
    loc, scale
        ``(n, C, H, W)`` the canvas's per-pixel coefficients (its normalised space).
    scaler
        The model's :class:`~geodiff.scaling.Scaler` (``db``: the tie is in linear power).
    factor
        Fine pixels per coarse pixel, along each axis.
    first
        Scene row and column of the canvas's first pixel (cells are aligned on the scene).
    offset
        ``(n, C, H, W)`` added to the sampler's state to give the normalised values (a residual
        model's resized conditioning), None for none.

    Cells cut by the canvas's edges, and coarse pixels without data, are left as they are.
    """
    (r_start, r_len), (c_start, c_len) = (_cells(first[k], target.shape[-2 + k], factor) for k in (0, 1))
    coarse = target[:, r_start][:, :, c_start].astype(np.float64)
    full = (r_len == factor)[:, None] & (c_len == factor)[None, :]
    usable = full & np.isfinite(coarse) & (coarse > 0 if scaler.db else True)
    area = float(factor * factor)

    def spread(cells: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(cells, r_len, axis=-2), c_len, axis=-1)

    def project(x0: torch.Tensor) -> torch.Tensor:
        z = x0.detach().to("cpu", torch.float64).numpy()
        if offset is not None:
            z = z + offset
        values = scaler.inverse_field(z, loc, scale)
        means = np.add.reduceat(np.add.reduceat(values, r_start, axis=-2), c_start, axis=-1) / area
        with np.errstate(divide="ignore", invalid="ignore"):
            if scaler.db:
                values = values * spread(np.where(usable, coarse / means, 1.0))
            else:
                values = values + spread(np.where(usable, coarse - means, 0.0))
        out = scaler.transform_field(values, loc, scale)
        if offset is not None:
            out = out - offset
        return torch.from_numpy(out).to(device=x0.device, dtype=x0.dtype)

    return project


def harmonic_projection(known: np.ndarray, mask: np.ndarray) -> Callable:
    """A ``project`` for :class:`~geodiff.diffusion.conditions.Conditions` on one canvas with
    known pixels.

    Parameters
    ----------
    known
        ``(n, C, H, W)`` the known values in the sampler's normalised space (ignored off ``mask``).
    mask
        ``(n, C, H, W)`` True on the known pixels.

    Each estimate plane gets ``known - x_0`` on its known pixels, Laplace-filled onto the others,
    added to its unknown pixels (the known ones are put back afterwards). Planes with no known
    pixel, or no unknown one, are left as they are; planes sharing a mask share one factorised
    system.
    """
    from geodiff.tiling.fill import harmonic_fill

    h, w = mask.shape[-2:]
    planes = mask.reshape(-1, h, w)
    groups: dict[bytes, list[int]] = {}
    for i, plane in enumerate(planes):
        if plane.any() and not plane.all():
            groups.setdefault(np.packbits(plane).tobytes(), []).append(i)
    fills = [(np.asarray(index), harmonic_fill(~planes[index[0]])) for index in groups.values()]
    target = np.where(mask, known, 0.0).reshape(-1, h, w).astype(np.float64)

    def project(x0: torch.Tensor) -> torch.Tensor:
        if not fills:
            return x0
        z = x0.detach().to("cpu", torch.float64).numpy().reshape(-1, h, w)
        out = z.copy()
        for index, fill in fills:
            unknown = ~planes[index[0]]
            out[index] += np.where(unknown, fill(np.where(unknown, 0.0, target[index] - z[index])), 0.0)
        return torch.from_numpy(out.reshape(x0.shape)).to(device=x0.device, dtype=x0.dtype)

    return project
