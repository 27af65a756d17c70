"""Exceptions geodiff raises for bad input: each message says what went wrong and what to do."""


class GeodiffError(ValueError):
    """Base class of geodiff's input errors (a ValueError, so generic handlers still catch it)."""


class SceneError(GeodiffError):
    """A scene cannot be used as given: no data, bad dimensions, unsupported encoding."""


class TilingError(GeodiffError):
    """A tile geometry does not fit the scene."""


class CheckpointError(GeodiffError):
    """A model or checkpoint file is corrupt, foreign or from an incompatible version."""


class OutputError(GeodiffError):
    """An output cannot or must not be written: its folder is missing or read-only, it is an input of
    the same call, or it exists and geodiff did not write it (pass ``overwrite=True`` to replace it)."""


class EmbeddingError(GeodiffError):
    """A circulant embedding of a covariance is not non-negative definite: enlarge its padding."""
