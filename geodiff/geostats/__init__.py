"""Geostatistics on gridded scenes: FFT semivariograms, models, ensembles, Gaussian random fields."""

from geodiff.geostats.fields import gaussian_random_field, power_law_field

__all__ = ["gaussian_random_field", "power_law_field"]
