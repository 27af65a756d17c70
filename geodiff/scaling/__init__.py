"""Normalisation of tiles for the network and back to physical units; dB for backscatter."""

from geodiff.scaling.coefficients import Coefficients
from geodiff.scaling.condition import ScaleCondition
from geodiff.scaling.db import DB_FLOOR, from_db, to_db
from geodiff.scaling.scaler import Scaler

__all__ = ["DB_FLOOR", "Coefficients", "ScaleCondition", "Scaler", "from_db", "to_db"]
