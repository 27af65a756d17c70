"""Geostatistics on gridded scenes: FFT semivariograms, models, ensembles, Gaussian random fields.

The geo layer is numpy/scipy/xarray only; matplotlib is imported when a figure is drawn.
"""

from geodiff.geostats.ensemble import compare, ensemble
from geodiff.geostats.fields import gaussian_random_field, power_law_field
from geodiff.geostats.fit import FitResult, fit_model
from geodiff.geostats.models import (
    MODELS,
    Exponential,
    Gaussian,
    Matern,
    Model,
    Nugget,
    Power,
    Spherical,
    Stable,
    Sum,
)
from geodiff.geostats.plot import plot
from geodiff.geostats.spacing import GridSpacing, SpacingWarning, pixel_spacing
from geodiff.geostats.variogram import semivariogram, semivariogram_array, variogram_map

__all__ = [
    "MODELS",
    "Exponential",
    "FitResult",
    "Gaussian",
    "GridSpacing",
    "Matern",
    "Model",
    "Nugget",
    "Power",
    "SpacingWarning",
    "Spherical",
    "Stable",
    "Sum",
    "compare",
    "ensemble",
    "fit_model",
    "gaussian_random_field",
    "pixel_spacing",
    "plot",
    "power_law_field",
    "semivariogram",
    "semivariogram_array",
    "variogram_map",
]
