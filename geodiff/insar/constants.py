"""Radar constants (SI units) for the missions geodiff simulates."""

from __future__ import annotations

__all__ = [
    "DAYS_PER_YEAR",
    "SENTINEL1_FREQUENCY",
    "SENTINEL1_HEADING_ASCENDING",
    "SENTINEL1_HEADING_DESCENDING",
    "SENTINEL1_INCIDENCE",
    "SENTINEL1_WAVELENGTH",
    "SPEED_OF_LIGHT",
]

SPEED_OF_LIGHT = 299_792_458.0
"""Speed of light in vacuum, m/s."""

SENTINEL1_WAVELENGTH = 0.0554658
"""Sentinel-1 C-band radar wavelength, m (ESA Sentinel-1 product specification)."""

SENTINEL1_FREQUENCY = SPEED_OF_LIGHT / SENTINEL1_WAVELENGTH
"""Sentinel-1 C-band centre frequency, Hz (about 5.405 GHz)."""

SENTINEL1_HEADING_ASCENDING = -12.0
"""Typical Sentinel-1 ascending-track heading, degrees clockwise from north (mid latitudes)."""

SENTINEL1_HEADING_DESCENDING = -168.0
"""Typical Sentinel-1 descending-track heading, degrees clockwise from north (mid latitudes)."""

SENTINEL1_INCIDENCE = 39.0
"""Mid-swath Sentinel-1 IW incidence angle, degrees (the swath spans about 29-46)."""

DAYS_PER_YEAR = 365.25
"""Julian year in days, used to turn rates per year into phase over a time span in days."""
