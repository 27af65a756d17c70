"""Analytic deformation sources in an elastic half-space (surface displacement, metres)."""

from geodiff.synth.sources.mogi import mogi
from geodiff.synth.sources.okada import okada
from geodiff.synth.sources.sill import penny_crack, point_crack, sneddon_volume

__all__ = ["mogi", "okada", "penny_crack", "point_crack", "sneddon_volume"]
