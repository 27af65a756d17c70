"""Safe writing: every file and folder geodiff writes goes through here.

Three promises, kept in one place:

- Nothing a user made is lost. A target that exists is replaced only when geodiff wrote it (a
  model, checkpoint, feature-extractor or report folder holding its geodiff description and
  nothing geodiff did not put there; a Zarr store, GeoTIFF, NetCDF or PNG that names geodiff as its writer in its metadata) or when the caller passes ``overwrite=True``.
  Outputs are also refused when they name one of the call's own inputs.
- Nothing half-written appears under the final name. Work happens under a hidden temporary
  sibling, ``.<name>.<host>.<pid>-<hex>.tmp<suffix>``, renamed into place on success; temporaries
  left by a killed process of this host (its pid is gone) are removed on the next write to the
  same target.
- Permissions follow the user's umask, as for any file the user's own tools create.

This module uses the standard library only (format readers are imported when a file is
inspected), so every layer can use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from geodiff.errors import OutputError

# geodiff's folders by the description file that marks them and every file they may hold: a
# folder with anything more in it holds something of the user's.
_FOLDERS = {
    "model.json": ("geodiff-model", {"model.json", "model.safetensors"}),
    "trainer.json": ("geodiff-checkpoint", {"trainer.json", "model.safetensors", "ema.safetensors",
                                            "optimizer.safetensors"}),
    "dataset.json": ("geodiff-dataset", {"dataset.json", "tiles.zarr", "index.parquet"}),
    "extractor.json": ("geodiff-feature-extractor", {"extractor.json", "extractor.safetensors"}),
    "report.json": ("geodiff-report", {"report.json", "report.html", "tiles.png", "variogram.png", "psd.png",
                                       "histogram.png", "tsne.png", "extractor"}),
}


def check_destination(path, *, overwrite: bool = False, inputs: Iterable = (), parents: bool = False) -> Path:
    """Fail early, before any work, when ``path`` cannot or must not be written.

    Parameters
    ----------
    path
        The file or folder about to be written.
    overwrite
        Replace an existing target even if geodiff did not write it.
    inputs
        Paths the same call reads; writing onto one of them is always refused.
    parents
        Missing parent folders will be created (they must be creatable).

    Raises
    ------
    geodiff.errors.OutputError
        The folder is missing or not writable, the target is an input of the call, or it exists
        and was not written by geodiff (without ``overwrite``).
    """
    path = Path(path)
    for source in inputs:
        if source is not None and _same(path, Path(source)):
            raise OutputError(f"{path} is an input of this call; writing onto it would destroy it: "
                              "choose another output path")
    folder = path.parent
    if parents:
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"output folder {path.parent} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable")
    if path.exists() or path.is_symlink():
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{path} exists and is not writable")
        if not overwrite and not written_by_geodiff(path):
            kind = "folder" if path.is_dir() else "file"
            raise OutputError(f"{path} is an existing {kind} that geodiff did not write; choose another "
                              "path, or pass overwrite=True (--overwrite on the command line) to replace it")
    return path


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def written_by_geodiff(path) -> bool:
    """Whether the file or folder at ``path`` was written by geodiff (so replacing it loses
    nothing a user made)."""
    path = Path(path)
    if path.is_symlink():
        return False
    if path.is_dir():
        if _zarr_source(path).startswith("geodiff"):
            return True
        names = {entry.name for entry in path.iterdir()}
        return any(_describes(path / name, fmt) and names <= allowed for name, (fmt, allowed) in _FOLDERS.items())
    if not path.is_file():
        return False
    try:
        return "geodiff" in _software(path)
    except (OSError, ValueError):  # unreadable in its format: a damaged or foreign file, not ours
        return False


def _zarr_source(path: Path) -> str:
    """The ``source`` attribute of a Zarr store's root group (v3 or v2 layout), '' if none.

    A marker file would be reported by zarr as a foreign object on every open."""
    for name, key in (("zarr.json", "attributes"), (".zattrs", None)):
        try:
            doc = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        attrs = doc.get(key, {}) if key else doc
        return str(attrs.get("source", "")) if isinstance(attrs, dict) else ""
    return ""


def _describes(path: Path, fmt: str) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == fmt
    except (OSError, ValueError, AttributeError):
        return False


def _software(path: Path) -> str:
    """The writer a file names in its own metadata ('' when it names none)."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import rasterio

        with rasterio.open(path) as src:
            return src.tags().get("history", "")
    if suffix in (".nc", ".nc4"):
        import netCDF4

        with netCDF4.Dataset(path) as ds:
            return str(getattr(ds, "source", ""))
    if suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            return str(image.info.get("Software", ""))
    return ""


def _host() -> str:
    # A pid means something only on its own host: on a shared file system another host's live
    # write must not look stale. A short digest keeps odd host names out of file names.
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temporary_name(path: Path, kind: str = "tmp") -> Path:
    """A fresh hidden name beside ``path`` for geodiff's work in progress on it (``kind`` "tmp"
    or "old"), which :func:`remove_stale` recognises once the process that took it is gone."""
    path = Path(path)
    tail = f".tmp{path.suffix}" if kind == "tmp" else ".old"
    return path.parent / f".{path.name}.{_host()}.{os.getpid()}-{uuid.uuid4().hex[:8]}{tail}"


def _is_temporary_of(entry: Path, path: Path) -> int | None:
    """The pid of the process that took ``entry`` as a temporary of ``path`` on this host, or None
    when ``entry`` is not exactly such a name (anything else is never touched)."""
    pattern = (rf"\.{re.escape(path.name)}\.{_host()}\.(?P<pid>\d+)-[0-9a-f]{{8}}"
               rf"(\.tmp{re.escape(path.suffix)}|\.old)")
    match = re.fullmatch(pattern, entry.name)
    return int(match["pid"]) if match else None


def remove_stale(path: Path) -> list[Path]:
    """Remove temporaries of ``path`` left behind by geodiff processes of this host that are gone.

    Only names :func:`temporary_name` makes for this very ``path`` qualify."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        pid = _is_temporary_of(entry, path)
        if pid is None or _alive(pid):
            continue
        _remove(entry)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some platforms (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path, *, overwrite: bool = False, inputs: Iterable = (), parents: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write a file or folder at; on success it takes
    ``path``'s place in one rename (two for a folder, which POSIX cannot rename over).

    The temporary is not created: the writer creates it, so it gets the user's umask. On failure
    the temporary is removed and an existing ``path`` is untouched. The target is checked
    (:func:`check_destination`) before the work and again just before it is replaced, since a
    long write leaves time for someone to put something else there. ``parents`` creates missing
    parent folders once the target is accepted.
    """
    path = check_destination(path, overwrite=overwrite, inputs=inputs, parents=parents)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if tmp.is_dir():
            _fsync_dir(tmp)
        check_destination(path, overwrite=overwrite, inputs=inputs)
        _replace(tmp, path)
        _fsync_dir(path.parent)
    except PermissionError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err} (is the folder writable?)") from err
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


@contextmanager
def atomic_directory(path, *, overwrite: bool = False) -> Iterator[Path]:
    """As :func:`atomic_path` for a folder: missing parents are created and the temporary folder
    already exists (umask permissions), ready to be filled."""
    with atomic_path(path, overwrite=overwrite, parents=True) as tmp:
        tmp.mkdir()
        yield tmp


def _replace(tmp: Path, path: Path) -> None:
    """Put ``tmp`` in ``path``'s place; an old folder (or a symlink, never what it points to) is
    moved aside and removed only once the new one is in."""
    if not (tmp.is_dir() or (path.is_dir() and not path.is_symlink())):
        os.replace(tmp, path)  # a file over a file: one atomic rename
        return
    if not (path.exists() or path.is_symlink()):
        os.replace(tmp, path)
        return
    # A folder cannot be renamed over a folder or a file: readers see the complete old or the
    # complete new one, never a mixture.
    old = temporary_name(path, "old")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except OSError:
        os.replace(old, path)
        raise
    _remove(old)


@contextmanager
def atomic_file(path, *, overwrite: bool = False) -> Iterator[Path]:
    """As :func:`atomic_path` for one file, flushed to disk before the rename."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


def check_format(doc, source: Path, fmt: str, version: int, what: str) -> None:
    """Raise :class:`~geodiff.errors.CheckpointError` unless ``doc`` (a parsed JSON description)
    carries geodiff's ``format`` marker ``fmt`` and an integer ``format_version`` this geodiff
    reads (at most ``version``); ``what`` names the kind of file in the message."""
    from geodiff._version import __version__
    from geodiff.errors import CheckpointError

    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise CheckpointError(f"{source} is not a geodiff {what} (no format={fmt!r} marker)")
    found = doc.get("format_version")
    if not isinstance(found, int):
        raise CheckpointError(f"{source} has no integer format_version; the file is corrupt")
    if found > version:
        made_by = doc.get("versions", {}).get("geodiff", "a newer geodiff")
        raise CheckpointError(f"{source} has {what} format {found}, this geodiff ({__version__}) reads up to "
                              f"{version}; it was written by geodiff {made_by}: upgrade geodiff to load it")
