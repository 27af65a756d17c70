"""Exact empirical semivariograms of masked grids by FFT (Marcotte 1996).

(About 400 lines: the three estimators' kernels and the one public entry point that plans lags,
checks grids and labels the result; the lag planning itself is in :mod:`.lags`.)

With ``I`` the validity indicator and ``Z = I (z - mean)``, zero-padded past the largest lag
used, every lag vector ``h`` gets in a handful of FFTs

    N(h) = sum_x I(x) I(x+h)                 = IFFT(|FFT I|^2)
    S(h) = sum_x I(x) I(x+h) (z(x+h) - z(x))^2
         = IFFT(conj(FFT I) FFT Z^2 + conj(FFT Z^2) FFT I - 2 |FFT Z|^2)

(Marcotte 1996, Computers & Geosciences 22(10), 1175-1186). Summing ``N`` and ``S`` over the
half-plane lag vectors of a bin counts each unordered pair of valid pixels once, so the Matheron
estimate ``gamma = sum S / (2 sum N)`` equals the pairwise definition exactly (to float64
round-off). Robust estimators use :mod:`geodiff.geostats.robust`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft
import xarray as xr

from geodiff import units
from geodiff.errors import GeodiffError, SceneError
from geodiff.geostats import robust
from geodiff.geostats.lags import LagPlan, fft_shape, lag_plan, max_offsets, resolve_edges
from geodiff.geostats.spacing import GridSpacing, _crs, pixel_spacing
from geodiff.names import ESTIMATORS

__all__ = ["ESTIMATORS", "matheron_fft", "semivariogram", "semivariogram_array", "variogram_map"]

_CHUNK_BYTES = 16 * 2**20


def _fft_maps(
    z: np.ndarray, fft_shape: tuple[int, int], rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pair-count and squared-difference-sum maps ``N, S`` for row offsets ``0 <= iy < rows``.

    ``z`` is ``(batch, y, x)``; the maps are ``(batch, rows, fft_shape[1])`` with column offsets
    ``ix`` at index ``ix mod fft_shape[1]``. The other half-plane follows from
    ``N(-h) = N(h)``, ``S(-h) = S(h)``.
    """
    b, ny, nx = z.shape
    my, mx = fft_shape
    valid = np.isfinite(z)
    buf = np.empty((3, b, ny, nx))
    ind, zc, z2 = buf
    np.copyto(ind, valid)
    n = ind.sum(axis=(-2, -1), keepdims=True)
    np.copyto(zc, z)
    zc[~valid] = 0.0
    # Centring keeps the FFT round-off relative to the variance, not to the mean.
    mean = zc.sum(axis=(-2, -1), keepdims=True) / np.maximum(n, 1.0)
    zc -= mean
    zc *= ind
    # A constant tile leaves only the rounding of its mean: make its variogram exactly 0.
    flat_tile = np.abs(zc).max(axis=(-2, -1), keepdims=True) <= 8 * np.finfo(
        np.float64
    ).eps * np.abs(mean)
    if flat_tile.any():
        zc *= ~flat_tile
    np.multiply(zc, zc, out=z2)
    # Separable transforms: the x pass runs on the unpadded rows only.
    f = scipy.fft.rfft(buf, n=mx, axis=-1, workers=-1)
    fi, fz, fz2 = scipy.fft.fft(f, n=my, axis=-2, workers=-1, overwrite_x=True)
    # Both spectra are real (the maps are point-symmetric): |FI|^2 and
    # 2 Re(conj(FI) FZ2) - 2 |FZ|^2.
    spec = np.empty((2, b, my, mx // 2 + 1))
    np.multiply(fi.real, fi.real, out=spec[0])
    spec[0] += fi.imag**2
    np.multiply(fi.real, fz2.real, out=spec[1])
    spec[1] += fi.imag * fz2.imag
    spec[1] -= fz.real**2
    spec[1] -= fz.imag**2
    spec[1] *= 2.0
    # Inverse along y of real data: ifft(x)[k] = conj(rfft(x)[k]) / m, only the rows needed.
    g = scipy.fft.rfft(spec, axis=-2, workers=-1)[:, :, :rows]
    np.conjugate(g, out=g)
    g /= my
    maps = scipy.fft.irfft(g, n=mx, axis=-1, workers=-1)
    return maps[0], maps[1]


def matheron_fft(z: np.ndarray, plan: LagPlan) -> tuple[np.ndarray, np.ndarray]:
    """Matheron semivariogram per group of a batch ``z`` of shape ``(batch, y, x)``, NaN = invalid.

    The batch is processed in chunks whose spectra fit in about 16 MiB (cache-friendly, and
    bounded memory for long stacks).

    Returns
    -------
    gamma, npairs : numpy.ndarray
        ``(batch, n_groups)``, gamma NaN where a group has no pair.
    """
    b = z.shape[0]
    my, mx = plan.fft_shape
    chunk = max(1, _CHUNK_BYTES // (3 * my * (mx // 2 + 1) * 16))
    mt = plan.members.T
    npairs = np.empty((b, mt.shape[0]))
    ssum = np.empty((b, mt.shape[0]))
    for i in range(0, b, chunk):
        zi = z[i : i + chunk]
        nmap, smap = _fft_maps(zi, plan.fft_shape, plan.rows)
        k = zi.shape[0]
        npairs[i : i + k] = (mt @ nmap.reshape(k, -1)[:, plan.flat].T).T
        ssum[i : i + k] = (mt @ smap.reshape(k, -1)[:, plan.flat].T).T
    return _matheron(npairs, ssum)


def _matheron(npairs: np.ndarray, ssum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``gamma = S / (2 N)`` from FFT sums (rounded counts; gamma NaN where no pair)."""
    npairs = np.rint(npairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.maximum(ssum, 0.0) / (2.0 * npairs)
    return np.where(npairs > 0, gamma, np.nan), npairs.astype(np.int64)


_KERNELS = {"matheron": matheron_fft, "cressie": robust.cressie_hawkins, "dowd": robust.dowd}


def _kernel(z: np.ndarray, plan: LagPlan, estimator: str) -> tuple[np.ndarray, np.ndarray]:
    """Apply an estimator over arbitrary leading dims; output ``(..., n_dirs, n_bins)``."""
    lead = z.shape[:-2]
    # No float64 copy of the whole block here: the FFT path casts chunk by chunk into its buffers.
    flat = np.asarray(z).reshape((-1,) + z.shape[-2:])
    if flat.shape[0] == 0:
        shape = lead + (plan.n_dirs, plan.n_bins)
        return np.empty(shape), np.empty(shape, dtype=np.int64)
    gamma, npairs = _KERNELS[estimator](flat, plan)
    shape = lead + (plan.n_dirs, plan.n_bins)
    return gamma.reshape(shape), npairs.reshape(shape)


def _directions(direction) -> tuple[float, ...] | None:
    if direction is None:
        return None
    return tuple(float(d) for d in np.atleast_1d(direction))


def semivariogram_array(
    z: np.ndarray,
    spacing: tuple[float, float] = (1.0, 1.0),
    *,
    bins: int | Sequence[float] | np.ndarray | None = None,
    max_lag: float | None = None,
    direction: float | Sequence[float] | None = None,
    tolerance: float = 22.5,
    estimator: str = "matheron",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy core of :func:`semivariogram`: ``(gamma, npairs, edges)`` for ``z`` of shape ``(..., y, x)``.

    ``gamma`` and ``npairs`` have shape ``(..., n_bins)``, or ``(..., n_directions, n_bins)``
    when ``direction`` is a sequence. See :func:`semivariogram` for the arguments.
    """
    if estimator not in ESTIMATORS:
        raise GeodiffError(f"unknown estimator {estimator!r}; choose one of {ESTIMATORS}")
    z = np.asarray(z)
    if z.ndim < 2:
        raise GeodiffError(f"expected an array of shape (..., y, x), got shape {z.shape}")
    shape = z.shape[-2:]
    edges = resolve_edges(bins, shape, _given(spacing).step, max_lag)
    plan = lag_plan(shape, spacing, edges, _directions(direction), tolerance)
    gamma, npairs = _kernel(z, plan, estimator)
    if direction is None or np.ndim(direction) == 0:
        gamma, npairs = gamma[..., 0, :], npairs[..., 0, :]
    return gamma, npairs, edges


def _given(spacing) -> GridSpacing:
    sp = GridSpacing(float(spacing[0]), float(spacing[1]), "unit of spacing", "given spacing")
    if min(sp.step) <= 0 or not np.all(np.isfinite(sp.step)):
        raise GeodiffError(
            f"spacing must be two non-zero finite pixel sizes (dy, dx), got {spacing}"
        )
    return sp


def _as_dataarray(obj, spacing) -> tuple[xr.DataArray, GridSpacing]:
    if isinstance(obj, xr.Dataset):
        # Variables on one grid (e.g. VV, VH) are channels: one variogram each.
        names = [v for v in obj.data_vars if {"y", "x"} <= set(obj[v].dims)]
        if not names:
            raise SceneError(f"no variable with y/x dims among {list(obj.data_vars)}")
        stacked = obj[names].to_dataarray(dim="variable")
        stacked.attrs = dict(obj[names[0]].attrs)
        stacked.attrs["units"] = units.combine([obj[v].attrs.get("units") for v in names])
        obj = stacked
    if isinstance(obj, xr.DataArray):
        return obj, pixel_spacing(obj) if spacing is None else _given(spacing)
    arr = np.asarray(obj)
    if arr.ndim < 2:
        raise GeodiffError(f"expected an array of shape (..., y, x), got shape {arr.shape}")
    dims = tuple(f"dim_{i}" for i in range(arr.ndim - 2)) + ("y", "x")
    da = xr.DataArray(arr, dims=dims)
    if spacing is None:
        return da, GridSpacing(1.0, 1.0, "pixel", "pixel index (numpy input without spacing)")
    return da, _given(spacing)


def _check_not_all_nan(da: xr.DataArray) -> None:
    if da.chunks is None and da.size > 0 and not np.isfinite(da.values).any():
        raise SceneError(
            "the input has no valid (finite) pixel, so it has no variogram; check the nodata "
            "value and mask (e.g. open with rioxarray.open_rasterio(path, masked=True))"
        )


def _spatial_only(da: xr.DataArray) -> xr.DataArray:
    for dim in ("y", "x"):
        if dim not in da.dims:
            raise SceneError(
                f"expected dims (..., 'y', 'x'), got {da.dims}; rename or transpose the array"
            )
    return da.transpose(..., "y", "x")


def _common_attrs(da: xr.DataArray, sp: GridSpacing, estimator: str) -> dict:
    attrs = {
        "estimator": estimator,
        "spacing_dy": sp.dy,
        "spacing_dx": sp.dx,
        "lag_units": sp.unit,
        "spacing_method": sp.method,
    }
    if sp.scale_error is not None:
        attrs["spacing_max_relative_error"] = sp.scale_error
    if sp.warning is not None:
        attrs["spacing_warning"] = sp.warning
    crs = _crs(da)
    if crs is not None:
        attrs["crs"] = crs.to_wkt()
    return attrs


def semivariogram(
    obj: xr.DataArray | xr.Dataset | np.ndarray,
    *,
    bins: int | Sequence[float] | np.ndarray | None = None,
    max_lag: float | None = None,
    direction: float | Sequence[float] | None = None,
    tolerance: float = 22.5,
    estimator: str = "matheron",
    spacing: tuple[float, float] | None = None,
) -> xr.Dataset:
    """Empirical semivariogram of a masked grid, per leading index, exact.

    ``gamma(h) = 1 / (2 N(h)) sum (z_i - z_j)^2`` over the ``N(h)`` unordered pairs of valid
    (finite) pixels whose distance falls in the half-open bin ``[lo, hi)`` (Matheron), by FFT;
    ``"cressie"`` and ``"dowd"`` are the robust estimators of :mod:`geodiff.geostats.robust`.

    Parameters
    ----------
    obj : xarray.DataArray, xarray.Dataset or numpy.ndarray
        Dims ``(..., y, x)`` (a Dataset's gridded variables become a ``variable`` dim): every
        leading index (``sample``, ``time``, ``band``...) gets its own
        variogram, vectorised; dask-backed arrays stay lazy (one task per chunk of leading dims;
        ``y`` and ``x`` are gathered into one chunk). NaN marks invalid pixels. The spacing comes
        from the CRS (:func:`geodiff.geostats.spacing.pixel_spacing`: geographic CRSs in metres
        by local geodesic scale, the method and the largest relative error of that scale across
        the scene recorded in attrs); a NumPy array is in pixels unless ``spacing`` is given.
    bins : int or array-like, optional
        Number of equal-width bins from 0 to ``max_lag``, or explicit increasing edges in lag
        units. Default: up to 30 bins over ``[0, max_lag)``.
    max_lag : float, optional
        Largest lag (exclusive), in lag units. Default: half the extent of the shorter side.
    direction : float or sequence of float, optional
        Directional variogram(s): sector centre in degrees counter-clockwise from east (+x) in
        map axes, axial. A sequence adds a ``direction`` dimension. ``None``: isotropic.
    tolerance : float
        Sector half-width in degrees (inclusive).
    estimator : {"matheron", "cressie", "dowd"}
        Semivariance estimator.
    spacing : (float, float), optional
        Pixel size ``(dy, dx)`` overriding the CRS/coordinates (signs orient directions).

    Returns
    -------
    xarray.Dataset
        ``gamma`` (float64, unit of the data squared) and ``npairs`` (int64) over leading dims,
        [``direction``,] ``lag``. ``lag`` holds bin centres in the lag unit; ``lag_bounds``
        (``lag``, ``bound``) the half-open bin edges. Empty bins have gamma NaN and npairs 0.
        Attrs record the spacing (``spacing_dy``, ``spacing_dx``, ``lag_units``,
        ``spacing_method``), for geographic CRSs ``spacing_max_relative_error`` (fraction), and
        ``spacing_warning`` when a :class:`~geodiff.geostats.spacing.SpacingWarning` was emitted.

    Warns
    -----
    SpacingWarning
        If the input has no CRS (lags in coordinate units or pixels), or if one geodesic pixel
        size misstates the lags of a geographic scene by more than 1 % somewhere in it (near
        the poles, or on tall scenes): reproject such scenes to a metric CRS first.

    Raises
    ------
    SceneError
        If an in-memory input has no valid pixel at all (a lazy one gives NaN), or lacks y/x dims.
    """
    if estimator not in ESTIMATORS:
        raise GeodiffError(f"unknown estimator {estimator!r}; choose one of {ESTIMATORS}")
    da, sp = _as_dataarray(obj, spacing)
    da = _spatial_only(da)
    _check_not_all_nan(da)
    shape = (da.sizes["y"], da.sizes["x"])
    edges = resolve_edges(bins, shape, sp.step, max_lag)
    dirs = _directions(direction)
    plan = lag_plan(shape, (sp.dy, sp.dx), edges, dirs, tolerance)
    core_out = ["direction", "lag"]

    def kernel(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _kernel(values, plan, estimator)

    if da.chunks is not None:
        da = da.chunk({"y": -1, "x": -1})
    gamma, npairs = xr.apply_ufunc(
        kernel,
        da.drop_vars([c for c in da.coords if set(da[c].dims) & {"y", "x"} or c == "spatial_ref"]),
        input_core_dims=[["y", "x"]],
        output_core_dims=[core_out, core_out],
        dask="parallelized",
        output_dtypes=[np.float64, np.int64],
        dask_gufunc_kwargs={"output_sizes": {"direction": plan.n_dirs, "lag": plan.n_bins}},
        keep_attrs=False,
    )
    data_units = da.attrs.get("units")
    ds = xr.Dataset({"gamma": gamma, "npairs": npairs})
    ds = ds.assign_coords(
        lag=(
            "lag",
            0.5 * (edges[:-1] + edges[1:]),
            {"units": sp.unit, "bounds": "lag_bounds", "long_name": "lag distance (bin centre)"},
        ),
        lag_bounds=(
            ("lag", "bound"),
            np.column_stack([edges[:-1], edges[1:]]),
            {"units": sp.unit, "comment": "half-open bins [lo, hi)"},
        ),
    )
    if dirs is None or np.ndim(direction) == 0:
        ds = ds.isel(direction=0, drop=True)
        if dirs is not None:
            ds = ds.assign_coords(direction=dirs[0])
    else:
        ds = ds.assign_coords(direction=("direction", np.asarray(dirs)))
    if dirs is not None:
        ds["direction"].attrs.update(
            units="degree", long_name="sector centre, counter-clockwise from east, axial"
        )
        ds.attrs["tolerance"] = float(tolerance)
    gamma_units = units.squared(data_units)
    ds["gamma"].attrs.update(long_name="semivariance", **({"units": gamma_units} if gamma_units else {}))
    ds["npairs"].attrs.update(long_name="number of pixel pairs (each unordered pair once)")
    ds.attrs.update(_common_attrs(da, sp, estimator))
    return ds


def variogram_map(
    obj: xr.DataArray | np.ndarray,
    *,
    max_lag: float | None = None,
    spacing: tuple[float, float] | None = None,
) -> xr.Dataset:
    """Full 2-D Matheron variogram map ``gamma(h_y, h_x)`` for every lag vector up to ``max_lag``.

    Each cell is one lag vector, so the map is point-symmetric (``h`` and ``-h`` hold the same
    pairs). The centre (zero lag) has gamma 0 and counts each valid pixel once.

    Returns
    -------
    xarray.Dataset
        ``gamma`` and ``npairs`` over leading dims, ``lag_y``, ``lag_x`` (signed lags in the lag
        unit, along the coordinate directions). Loads dask input.
    """
    da, sp = _as_dataarray(obj, spacing)
    da = _spatial_only(da)
    _check_not_all_nan(da)
    ny, nx = da.sizes["y"], da.sizes["x"]
    if max_lag is None:
        max_lag = 0.5 * min(ny * sp.step[0], nx * sp.step[1])
    hy, hx = max_offsets((ny, nx), sp.step, max_lag)
    my, mx = fft_shape((ny, nx), (hy, hx))
    z = np.asarray(da.values)
    lead = z.shape[:-2]
    nmap, smap = _fft_maps(z.reshape((-1, ny, nx)), (my, mx), hy + 1)
    ix = np.arange(-hx, hx + 1) % mx
    # Rows of negative iy by point symmetry: M(-iy, ix) = M(iy, -ix).
    n = np.concatenate([nmap[:, :0:-1, (-ix) % mx], nmap[:, :, ix]], axis=1)
    s = np.concatenate([smap[:, :0:-1, (-ix) % mx], smap[:, :, ix]], axis=1)
    g, n = _matheron(n, s)
    out_shape = lead + g.shape[1:]
    lead_dims = da.dims[:-2]
    ds = xr.Dataset(
        {
            "gamma": (lead_dims + ("lag_y", "lag_x"), g.reshape(out_shape)),
            "npairs": (lead_dims + ("lag_y", "lag_x"), n.reshape(out_shape)),
        },
        coords={
            "lag_y": ("lag_y", np.arange(-hy, hy + 1) * sp.dy, {"units": sp.unit}),
            "lag_x": ("lag_x", np.arange(-hx, hx + 1) * sp.dx, {"units": sp.unit}),
        },
    )
    for c in lead_dims:
        if c in da.coords:
            ds = ds.assign_coords({c: da[c]})
    ds.attrs.update(_common_attrs(da, sp, "matheron"))
    return ds
