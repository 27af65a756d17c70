"""Physical units of scenes whose bands differ (VV in dB beside coherence in 1).

A scene's ``units`` attribute is one string when every band shares it, and a list with one
string per band, in band order, when they differ (``""`` for a band of unknown units). These
functions read and write that convention, so every layer keeps units per band from the file
to the model, the samples and the exports.
"""

from __future__ import annotations

from collections.abc import Sequence

from geodiff.errors import GeodiffError

Units = str | list[str] | None


def combine(units: Sequence[str | None]) -> Units:
    """The ``units`` attribute of bands with these units: one string when they agree (``None`` when
    all are unknown), else the per-band list."""
    units = [u or None for u in units]
    if all(u == units[0] for u in units):
        return units[0]
    return [u or "" for u in units]


def per_band(units: Units, n: int) -> list[str | None]:
    """The units of each of ``n`` bands from a ``units`` attribute (a string applies to all)."""
    if units is None or isinstance(units, str):
        return [units or None] * n
    units = list(units)
    if len(units) != n:
        raise GeodiffError(f"{len(units)} units {units} given for {n} bands; give one per band")
    return [u or None for u in units]


def label(units: Units) -> str:
    """Units for people: ``"mm/yr"``, ``"dB, 1"``, or ``"unknown"``."""
    if not units:
        return "unknown"
    if isinstance(units, str):
        return units
    return ", ".join(u or "unknown" for u in units)


def squared(units: Units) -> Units:
    """Units of a semivariance of data in ``units``: ``"(u)^2"``, per band when they differ."""
    if isinstance(units, str) or units is None:
        return f"({units})^2" if units else None
    return [f"({u})^2" if u else "" for u in units]
