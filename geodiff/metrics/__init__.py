"""How close synthetic tiles are to real ones: each metric a function, each beside its real-vs-real floor.

Structure (:mod:`~geodiff.metrics.structure`): mean semivariograms, radially averaged power
spectra. Distributions (:mod:`~geodiff.metrics.distribution`): per-tile std and range, pixel
values. Features (:mod:`~geodiff.metrics.features`, :mod:`~geodiff.metrics.fid`): FID, KID and
improved precision/recall on a feature extractor geodiff trains on the real data itself. Scenes
(:mod:`~geodiff.metrics.seams`): the seam statistic of tile grids.
:func:`evaluate` runs them all with their floors (:func:`real_floor`); :func:`write_report` writes
what a person reads.
"""

from geodiff.metrics.distribution import pixel_wasserstein, tile_statistics
from geodiff.metrics.evaluate import Evaluation, evaluate, floors, fraction_within
from geodiff.metrics.features import FeatureExtractor, load_extractor, train_extractor
from geodiff.metrics.fid import feature_scores, fid, kid, precision_recall
from geodiff.metrics.floor import Floor, real_floor
from geodiff.metrics.report import write_report
from geodiff.metrics.seams import SeamScore, seam_statistic
from geodiff.metrics.structure import psd_log_ratio, radial_psd, variogram_score

__all__ = [
    "Evaluation", "FeatureExtractor", "Floor", "SeamScore", "evaluate", "feature_scores", "fid", "floors", "fraction_within", "kid",
    "load_extractor", "pixel_wasserstein", "precision_recall", "psd_log_ratio", "radial_psd", "real_floor",
    "seam_statistic", "tile_statistics", "train_extractor", "variogram_score", "write_report",
]
