"""Radar physics: interferometric phase, line-of-sight geometry and mission constants."""

from geodiff.insar.constants import (
    DAYS_PER_YEAR,
    SENTINEL1_FREQUENCY,
    SENTINEL1_HEADING_ASCENDING,
    SENTINEL1_HEADING_DESCENDING,
    SENTINEL1_INCIDENCE,
    SENTINEL1_WAVELENGTH,
    SPEED_OF_LIGHT,
)
from geodiff.insar.geometry import los_vector, project_los
from geodiff.insar.phase import (
    displacement_to_phase,
    phase_to_displacement,
    phase_to_rate,
    rate_to_phase,
    wrap,
)

__all__ = [
    "DAYS_PER_YEAR",
    "SENTINEL1_FREQUENCY",
    "SENTINEL1_HEADING_ASCENDING",
    "SENTINEL1_HEADING_DESCENDING",
    "SENTINEL1_INCIDENCE",
    "SENTINEL1_WAVELENGTH",
    "SPEED_OF_LIGHT",
    "displacement_to_phase",
    "los_vector",
    "phase_to_displacement",
    "phase_to_rate",
    "project_los",
    "rate_to_phase",
    "wrap",
]
