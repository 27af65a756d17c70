"""Training checkpoints as safetensors plus JSON, written atomically, never unpickled.

A checkpoint is a directory::

    model.safetensors       weights of the trained model
    ema.safetensors         EMA weights and their update count
    optimizer.safetensors   optimizer state flattened to named tensors (param groups in metadata)
    trainer.json            format + version, library versions, configs, step, history, RNG
                            states and importance-sampler state

It is built in a temporary directory beside the target and renamed into place
(:mod:`geodiff.files`), so a crash leaves either the old checkpoint or the new one, never a
mixture, and a folder geodiff did not write is never replaced without ``overwrite=True``. Only safetensors and json read it:
a checkpoint from an untrusted source cannot execute code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from geodiff import files
from geodiff._version import __version__
from geodiff.errors import CheckpointError
from geodiff.files import atomic_directory, atomic_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "check_format",
    "content_id",
    "decode_state",
    "encode_state",
    "flatten_optimizer_state",
    "load_checkpoint",
    "load_tensors",
    "read_json",
    "save_checkpoint",
    "save_tensors_atomic",
    "unflatten_optimizer_state",
    "versions",
    "write_json_atomic",
]

FORMAT = "geodiff-checkpoint"
FORMAT_VERSION = 1

MODEL_FILE, EMA_FILE, OPTIMIZER_FILE, STATE_FILE = (
    "model.safetensors",
    "ema.safetensors",
    "optimizer.safetensors",
    "trainer.json",
)


def content_id(state: dict[str, torch.Tensor], description: dict) -> str:
    """SHA-256 (16 hex digits) of weights and of the JSON description that goes with them.

    Canonical JSON and CPU bytes keep it equal across processes and save/load round trips, so a
    file whose weights or description were changed no longer matches the id it records.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps(description, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()[:16]


def versions() -> dict[str, str]:
    """Library versions recorded in every file geodiff writes."""
    return {"geodiff": __version__, "torch": torch.__version__}


def save_tensors_atomic(
    tensors: dict[str, torch.Tensor],
    path: str | os.PathLike,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write named tensors to a safetensors file atomically (temp file + rename).

    Tensors are moved to CPU and made contiguous; ``metadata`` is a str -> str mapping stored in
    the file header.
    """
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_file(path) as tmp:
        save_file(clean, str(tmp), metadata=metadata)
    return Path(path)


def write_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically (temp file + rename); NaN/inf are refused."""
    text = json.dumps(obj, indent=1, sort_keys=False, allow_nan=False)
    with atomic_file(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def load_tensors(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file: (tensors, header metadata). Unreadable files raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing; the checkpoint is incomplete or not a geodiff checkpoint"
        )
    try:
        with safe_open(str(path), "pt", device=str(device)) as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (not iterable)
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error type for corrupt headers
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({err}); "
            "it is corrupt or truncated: restore it or train again"
        ) from err
    return tensors, metadata


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; missing or malformed files raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the directory is not a geodiff checkpoint")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path} is not valid JSON ({err}); the file is corrupt or truncated"
        ) from err


# -- optimizer state ---------------------------------------------------------------------------


def flatten_optimizer_state(
    state: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Split ``optimizer.state_dict()`` into named tensors and JSON metadata for safetensors.

    Tensor entries of parameter ``i`` become ``state.<i>.<name>``; non-tensor entries and the
    parameter groups go to the metadata as JSON.
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    meta = {"param_groups": json.dumps(state["param_groups"]), "scalars": json.dumps(scalars)}
    return tensors, meta


def unflatten_optimizer_state(
    tensors: dict[str, torch.Tensor], meta: dict[str, str]
) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer_state`, ready for ``optimizer.load_state_dict``."""
    try:
        groups = json.loads(meta["param_groups"])
        scalars = json.loads(meta.get("scalars", "{}"))
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(f"optimizer state has no readable parameter groups ({err})") from err
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        prefix, idx, name = key.split(".", 2)
        if prefix != "state":
            raise CheckpointError(f"unexpected optimizer tensor {key!r}; the checkpoint is foreign")
        state.setdefault(int(idx), {})[name] = value
    for idx, entry in scalars.items():
        state.setdefault(int(idx), {}).update(entry)
    for group in groups:  # JSON turns tuples (Adam's betas) into lists
        for k, v in group.items():
            if isinstance(v, list) and k != "params":
                group[k] = tuple(v)
    return {"state": state, "param_groups": groups}


# -- JSON-friendly tensors (RNG states, sampler histories) ---------------------------------------


def encode_state(obj: Any) -> Any:
    """Make nested dicts/lists holding tensors JSON-serialisable, bit-exactly (tensor bytes in base64)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        return {
            "__tensor__": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
            "data": base64.b64encode(raw).decode("ascii"),
        }
    if isinstance(obj, dict):
        return {str(k): encode_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode_state(v) for v in obj]
    return obj


def decode_state(obj: Any) -> Any:
    """Inverse of :func:`encode_state` (dict keys stay strings)."""
    if isinstance(obj, dict) and "__tensor__" in obj:
        dtype = getattr(torch, obj["__tensor__"], None)
        if not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"unknown tensor dtype {obj['__tensor__']!r} in checkpoint state")
        raw = bytearray(base64.b64decode(obj["data"]))
        flat = (
            torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        )
        return flat.view(dtype).reshape(obj["shape"]).clone()
    if isinstance(obj, dict):
        return {k: decode_state(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_state(v) for v in obj]
    return obj


# -- whole checkpoints ---------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Contents of a checkpoint directory, tensors on the requested device."""

    model: dict[str, torch.Tensor]
    state: dict[str, Any]
    ema: dict[str, torch.Tensor] | None = None
    optimizer: dict[str, Any] | None = None
    path: Path | None = field(default=None)


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: dict[str, torch.Tensor],
    state: dict[str, Any],
    ema: dict[str, torch.Tensor] | None = None,
    optimizer: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint directory atomically.

    Parameters
    ----------
    path : path-like
        Target directory; an existing one is replaced if geodiff wrote it (or with ``overwrite``).
    model, ema : dict of Tensor
        Model and EMA state dicts.
    optimizer : dict, optional
        ``optimizer.state_dict()``.
    state : dict
        JSON-serialisable trainer state; tensors inside are encoded by :func:`encode_state`.
        ``format``, ``format_version`` and ``versions`` are added.
    overwrite : bool
        Replace an existing directory that geodiff did not write.
    """
    path = Path(path)
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": versions(),
        **encode_state(state),
    }
    with atomic_directory(path, overwrite=overwrite) as tmp:
        save_tensors_atomic(model, tmp / MODEL_FILE, header)
        if ema is not None:
            save_tensors_atomic(ema, tmp / EMA_FILE, header)
        if optimizer is not None:
            tensors, meta = flatten_optimizer_state(optimizer)
            save_tensors_atomic(tensors, tmp / OPTIMIZER_FILE, {**header, **meta})
        write_json_atomic(doc, tmp / STATE_FILE)
    return path


def check_format(doc: Any, source: Path) -> None:
    """Raise CheckpointError unless ``doc`` is a geodiff checkpoint this version can read."""
    files.check_format(doc, source, FORMAT, FORMAT_VERSION, "checkpoint")


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint directory written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        The directory is missing, foreign, corrupt, truncated or from a newer format version.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(
            f"{path} is not a directory; a geodiff checkpoint is a directory "
            f"holding {STATE_FILE} and {MODEL_FILE}"
        )
    doc = read_json(path / STATE_FILE)
    check_format(doc, path / STATE_FILE)
    state = decode_state({k: v for k, v in doc.items() if k not in ("format", "format_version")})
    model, _ = load_tensors(path / MODEL_FILE, device)
    ema = load_tensors(path / EMA_FILE, device)[0] if (path / EMA_FILE).exists() else None
    optimizer = None
    if (path / OPTIMIZER_FILE).exists():
        tensors, meta = load_tensors(path / OPTIMIZER_FILE, device)
        optimizer = unflatten_optimizer_state(tensors, meta)
    return Checkpoint(model=model, state=state, ema=ema, optimizer=optimizer, path=path)
