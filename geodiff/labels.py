"""Class labels of training tiles: from scene attrs, from a JSON sidecar, or from labelled polygons.

Labels are names (``"sea"``, ``"Coniferous forest"``); a tile may carry several (BigEarthNet is
multi-label). The vocabulary is the sorted set of names seen, so it does not depend on the order
of the scenes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from geodiff.collection import Member, sidecar
from geodiff.errors import SceneError

#: BigEarthNet's per-patch metadata file, next to its band files.
LABELS_SIDECAR = "_labels_metadata.json"


@dataclass(frozen=True)
class LabelSource:
    """Where tile labels come from.

    Attributes
    ----------
    kind
        ``"attrs"`` (the scene's ``labels`` or ``label`` attribute: a name, a list of names or a
        JSON list), ``"json"`` (a ``<scene id>_labels_metadata.json`` sidecar with a ``labels``
        list) or ``"polygons"`` (a GeoDataFrame rasterised on every tile).
    polygons
        The labelled polygons, for ``"polygons"``.
    column
        The polygons' column holding class names.
    rule
        ``"majority"``: a tile takes the class covering most of its pixels; ``"fraction"``: every
        class covering at least ``min_fraction`` of it.
    min_fraction
        Smallest covered fraction that gives a tile a class under ``"fraction"``.
    """

    kind: str
    polygons: object = None
    column: str = "label"
    rule: str = "majority"
    min_fraction: float = 0.05

    def __post_init__(self):
        if self.kind not in ("attrs", "json", "polygons"):
            raise SceneError(f"labels come from 'attrs', 'json' or a GeoDataFrame, got {self.kind!r}")
        if self.rule not in ("majority", "fraction"):
            raise SceneError(f"label rule must be 'majority' or 'fraction', got {self.rule!r}")
        if self.kind == "polygons" and self.column not in self.polygons.columns:
            raise SceneError(f"the label polygons have no column {self.column!r}; "
                             f"columns: {list(self.polygons.columns)}")


def label_source(labels, *, column: str = "label", rule: str = "majority") -> LabelSource | None:
    """A :class:`LabelSource` from what :func:`geodiff.fit` takes: None, ``"attrs"``, ``"json"``
    or a GeoDataFrame of labelled polygons."""
    if labels is None or isinstance(labels, LabelSource):
        return labels
    if isinstance(labels, str):
        return LabelSource(labels, rule=rule)
    import geopandas as gpd

    if isinstance(labels, gpd.GeoDataFrame):
        if labels.crs is None:
            raise SceneError("the label polygons have no CRS; set one with gdf.set_crs(...)")
        return LabelSource("polygons", labels, column, rule)
    raise SceneError(f"labels must be 'attrs', 'json' or a GeoDataFrame, got {type(labels).__name__}")


def scene_labels(source: LabelSource, member: Member, scene: xr.DataArray) -> list[str] | None:
    """The labels of a whole scene (``"attrs"`` and ``"json"``), or None when it has none."""
    if source.kind == "attrs":
        value = scene.attrs.get("labels", scene.attrs.get("label"))
        if isinstance(value, str) and value.startswith("["):
            value = json.loads(value)
    else:
        path = sidecar(member, LABELS_SIDECAR)
        if path is None:
            return None
        value = json.loads(Path(path).read_text()).get("labels")
    if value is None:
        return None
    return sorted({str(v) for v in ([value] if isinstance(value, str) else value)})


def tile_labels(source: LabelSource, scene: xr.DataArray, transforms, size: tuple[int, int]) -> list[list[str]]:
    """Labels of each tile of ``scene`` (tile transforms in its CRS) from labelled polygons."""
    from rasterio.features import rasterize

    polygons = source.polygons.to_crs(scene.rio.crs)
    names = sorted({str(v) for v in polygons[source.column]})
    codes = {name: i + 1 for i, name in enumerate(names)}
    shapes = [(geom, codes[str(v)]) for geom, v in zip(polygons.geometry, polygons[source.column])
              if geom is not None and not geom.is_empty]
    out = []
    for transform in transforms:
        burned = rasterize(shapes, out_shape=size, transform=transform, fill=0, dtype="int32") if shapes else \
            np.zeros(size, np.int32)
        counts = np.bincount(burned.ravel(), minlength=len(names) + 1)[1:] / burned.size
        if not counts.any():
            out.append([])
        elif source.rule == "majority":
            out.append([names[int(np.argmax(counts))]])
        else:
            out.append([n for n, f in zip(names, counts) if f >= source.min_fraction])
    return out


def vocabulary(label_lists) -> list[str]:
    """The sorted class names found in ``label_lists``."""
    return sorted({name for labels in label_lists if labels is not None for name in labels})


def multi_hot(labels: list[str], classes: list[str]) -> np.ndarray:
    """``(len(classes),)`` float32 indicator of ``labels``."""
    out = np.zeros(len(classes), np.float32)
    for name in labels:
        out[classes.index(name)] = 1.0
    return out
