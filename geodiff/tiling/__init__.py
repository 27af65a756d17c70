"""Lazy, chunk-aligned tiles over scenes: grids, filters, gap filling, augmentation, stitching."""

from geodiff.tiling.augment import dihedral, multiscale, random_shift
from geodiff.tiling.fill import fill_gaps
from geodiff.tiling.filters import nodata_filter, patch_filter, select, valid_fraction
from geodiff.tiling.grid import Tile, TileGrid
from geodiff.tiling.stitch import blend_weights, untile

__all__ = [
    "Tile", "TileGrid", "blend_weights", "dihedral", "fill_gaps", "multiscale", "nodata_filter",
    "patch_filter", "random_shift", "select", "untile", "valid_fraction",
]
