"""Synthetic scenes: deformation sources, atmosphere, noise, labelled interferograms and the demo scene."""

from geodiff.synth.atmosphere import stratified, turbulent
from geodiff.synth.config import Atmosphere, Mogi, Okada, Shapes, Sill
from geodiff.synth.dataset import KINDS, dataset, random_source
from geodiff.synth.decorrelation import (
    cramer_rao_std,
    phase_noise,
    phase_pdf,
    phase_std,
    unwrapping_errors,
)
from geodiff.synth.demo import demo_dem, demo_scene
from geodiff.synth.frame import LocalFrame, local_frame
from geodiff.synth.grid import template
from geodiff.synth.ramps import ramp, random_ramp
from geodiff.synth.scene import deformation, interferogram
from geodiff.synth.shapes import (
    distorted_gaussian,
    ellipse,
    gaussian_bubble,
    random_shapes,
    rectangle,
    triangle,
)
from geodiff.synth.sources import mogi, okada, penny_crack, point_crack, sneddon_volume

__all__ = [
    "KINDS",
    "Atmosphere",
    "LocalFrame",
    "Mogi",
    "Okada",
    "Shapes",
    "Sill",
    "cramer_rao_std",
    "dataset",
    "deformation",
    "demo_dem",
    "demo_scene",
    "distorted_gaussian",
    "ellipse",
    "gaussian_bubble",
    "interferogram",
    "local_frame",
    "mogi",
    "okada",
    "penny_crack",
    "phase_noise",
    "phase_pdf",
    "phase_std",
    "point_crack",
    "ramp",
    "random_ramp",
    "random_shapes",
    "random_source",
    "rectangle",
    "sneddon_volume",
    "stratified",
    "template",
    "triangle",
    "turbulent",
    "unwrapping_errors",
]
