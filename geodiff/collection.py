"""Training data of any shape as a list of scenes: DataArrays, files, globs, stacks and bands.

:func:`collect` turns what a user hands to :func:`geodiff.fit` into :class:`Member` scenes, each
``(band, y, x)`` with its own CRS and grid, opened lazily. A ``(time, y, x)`` stack means more
scenes (one per date or interferogram), never more channels; the variables of a Dataset (VV,
VH) are the bands of one scene, and so are files whose names differ only by a band name
(``band_files=("VV", "VH")``).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from geodiff.errors import SceneError
from geodiff.io import open_scene

_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Member:
    """One training scene.

    Attributes
    ----------
    id
        Unique name: the file stem (without the band name for band files), or ``scene-<i>`` for
        an in-memory scene, with ``[label]`` for a slice of a stack.
    sources
        The files it was read from (one per band for band files), empty for in-memory scenes.
    opener
        Reopens the scene lazily; files are opened in each process that reads them, so a member
        pickles without its data.
    """

    id: str
    sources: tuple[str, ...]
    opener: _Opener = field(repr=False, compare=False)

    def open(self) -> xr.DataArray:
        """The scene as a lazy ``(band, y, x)`` DataArray.

        Raises
        ------
        geodiff.errors.SceneError
            A file cannot be opened; the message names it.
        """
        try:
            return self.opener()
        except FileNotFoundError as err:
            raise SceneError(str(err)) from err
        except SceneError as err:
            if not self.sources:
                raise
            raise SceneError(f"{', '.join(self.sources)}: {err}") from err
        except Exception as err:  # a driver's own error type: name the file it came from
            if not self.sources:
                raise
            raise SceneError(f"{', '.join(self.sources)} could not be opened: {err}") from err


@dataclass(frozen=True)
class _Opener:
    """How to reopen a member: files with open options, or a DataArray held as it is."""

    paths: tuple[str, ...] = ()
    bands: tuple[str, ...] | None = None
    options: dict = field(default_factory=dict)
    scene: xr.DataArray | None = None

    def __call__(self) -> xr.DataArray:
        if self.scene is not None:
            return self.scene
        if self.bands is None:
            return _with_band(open_scene(self.paths[0], **self.options))
        parts = [open_scene(p, **self.options) for p in self.paths]
        for path, part in zip(self.paths, parts):
            if "band" in part.dims:
                raise SceneError(f"{path} has {part.sizes['band']} bands; band files must each hold one")
        units = [part.attrs.get("units") for part in parts]
        if len(set(units)) > 1:
            raise SceneError(f"band files {', '.join(self.paths)} have different units {units}")
        stacked = xr.concat(parts, dim="band", join="exact", combine_attrs="drop_conflicts")
        return stacked.assign_coords(band=list(self.bands))


def collect(scenes, *, band_files: Sequence[str] | None = None, band=None, nodata: float | None = None,
            units: str | None = None, chunks="auto") -> list[Member]:
    """The training scenes in ``scenes``, in order.

    Parameters
    ----------
    scenes
        A DataArray ``([band,] y, x)``; a ``(stack, [band,] y, x)`` DataArray whose leading
        dimension (``time``, ``pair``, ...) holds separate scenes; a Dataset whose variables are
        bands; a path or glob (``"dir/*.tif"``); or a list of any of these, each with its own CRS
        and grid.
    band_files
        Band names, e.g. ``("VV", "VH")``: files whose names differ only by these names (as a
        ``_``, ``-`` or ``.`` separated part) become the bands of one scene, in this order.
    band, nodata, units, chunks
        As in :func:`geodiff.open_scene`, for every file.

    Raises
    ------
    geodiff.errors.SceneError
        Nothing to collect (an empty list, a glob that matches nothing, a missing path), a band
        file without its partners, or two members with one id. Files are opened when their tiles
        are indexed (:meth:`Member.open` names any that fails).
    """
    options = {"band": band, "nodata": nodata, "units": units, "chunks": chunks}
    items = list(scenes) if isinstance(scenes, (list, tuple)) else [scenes]
    if not items:
        raise SceneError("no scenes given: pass a DataArray, a Dataset, paths or a glob")
    members: list[Member] = []
    paths: list[Path] = []
    for item in items:
        if isinstance(item, (xr.DataArray, xr.Dataset)):
            members.extend(_from_xarray(item, len(members)))
        else:
            paths.extend(_expand(item))
    members.extend(_from_files(paths, band_files, options))
    ids = [m.id for m in members]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise SceneError(f"scenes {repeated} are given more than once")
    return members


def _expand(item) -> list[Path]:
    text = os.fspath(item)
    if not _GLOB.search(text):
        if not Path(text).exists():
            raise SceneError(f"no such file or directory: {text}")
        return [Path(text)]
    matched = sorted(glob.glob(text, recursive=True))
    if not matched:
        raise SceneError(f"the pattern {text!r} matches no file")
    return [Path(p) for p in matched]


def _from_xarray(obj, offset: int) -> list[Member]:
    if isinstance(obj, xr.Dataset):
        obj = open_scene(obj, chunks="auto" if obj.chunks else None)
    stack = [d for d in obj.dims if d not in ("y", "x", "band", "lat", "lon")]
    name = str(obj.name) if obj.name is not None else f"scene-{offset}"
    if not stack:
        scene = _with_band(open_scene(obj, chunks="auto" if obj.chunks else None))
        return [Member(name, (), _Opener(scene=scene))]
    if len(stack) > 1:
        raise SceneError(f"a stack has one dimension of scenes besides y, x and band, got {stack}")
    dim = stack[0]
    members = []
    for i in range(obj.sizes[dim]):
        label = obj[dim].values[i] if dim in obj.coords else i
        one = obj.isel({dim: i}, drop=True).assign_attrs(obj.attrs)
        scene = _with_band(open_scene(one, chunks="auto" if one.chunks else None))
        members.append(Member(f"{name}[{label}]", (), _Opener(scene=scene)))
    return members


def _from_files(paths: list[Path], band_files, options: dict) -> list[Member]:
    if not band_files:
        return [_file_member(p.stem, (p,), None, options) for p in paths]
    bands = tuple(str(b) for b in band_files)
    groups: dict[str, dict[str, Path]] = {}
    for path in paths:
        key, found = _band_key(path, bands)
        if found is None:
            raise SceneError(f"{path.name} has none of the band names {list(bands)} in its name")
        groups.setdefault(key, {})[found] = path
    members = []
    for key, group in groups.items():
        missing = [b for b in bands if b not in group]
        if missing:
            raise SceneError(f"{next(iter(group.values()))} has no partner file for band(s) {missing}")
        members.append(_file_member(Path(key).name, tuple(group[b] for b in bands), bands, options))
    return members


def _band_key(path: Path, bands: tuple[str, ...]) -> tuple[str, str | None]:
    """The file's path with its band name taken out, and that band name."""
    parts = re.split(r"([_.-])", path.stem)
    for i, part in enumerate(parts):
        if part in bands:
            # The band name goes with its separator: the one before it, or after it at the start.
            rest = parts[:i - 1] + parts[i + 1:] if i > 0 else parts[i + 2:]
            return str(path.with_name("".join(rest))), part
    return str(path), None


def _file_member(name: str, paths: tuple[Path, ...], bands, options: dict) -> Member:
    opener = _Opener(tuple(str(p) for p in paths), bands, options)
    return Member(name, opener.paths, opener)


def _with_band(scene: xr.DataArray) -> xr.DataArray:
    return scene if "band" in scene.dims else scene.expand_dims("band", 0)


def sidecar(member: Member, suffix: str) -> Path | None:
    """The file beside a member's first source named ``<id><suffix>``, if it exists (BigEarthNet's
    ``_labels_metadata.json``)."""
    if not member.sources:
        return None
    path = Path(member.sources[0]).with_name(member.id + suffix)
    return path if path.exists() else None
