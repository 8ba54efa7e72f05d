"""The named choices a user makes: model family, error metric, code distance, output format, bad-row
policy, log format, engine, runtime. Shared by the library and the command line, which shows them;
nothing here imports Typer."""

from __future__ import annotations

from enum import Enum


class ModelFamily(str, Enum):
    """The autoencoder families of :mod:`anomaly.model.networks`."""

    dense = "dense"
    conv = "conv"
    vae = "vae"


class ErrorMetric(str, Enum):
    """How a beat's score counts its values' differences from their reconstruction: the
    mean absolute error (the TensorFlow tutorial's), the mean squared error, or (auto) the
    squared with the code's distance and the absolute without."""

    auto = "auto"
    mae = "mae"
    mse = "mse"


class CodeDistance(str, Enum):
    """Whether a beat's score is multiplied by its code's and its samples' distances from
    the training beats': always, never, or (auto) when the network trains on at least
    :data:`CODE_DISTANCE_MIN_BEATS` beats."""

    auto = "auto"
    on = "on"
    off = "off"


#: The most beats a calibration is of: no training set comes near it (a number of 4,000
#: digits in a model's metadata is not a count of beats), nor a count of its scores.
MAX_CALIBRATION_BEATS = 10**12
#: The largest seed: NumPy's and Keras's random generators take seeds under 2**32.
MAX_SEED = 2**32 - 1

#: Fewest training beats for which ``code_distance="auto"`` uses the codes: below it they
#: are too few to rank by (measured: docs/benchmarks.md, issue 25's tables).
CODE_DISTANCE_MIN_BEATS = 200


class ThresholdSource(str, Enum):
    """Whose reconstruction errors set the threshold: the training beats', those of
    beats held out of training, held-out beats' with the model then refitted on all, or
    every beat's, each held out of one of five first models, with the model then refitted
    on all."""

    training = "training"
    heldout = "heldout"
    heldout_refit = "heldout-refit"
    heldout_folds = "heldout-folds"


class OutputFormat(str, Enum):
    """Format of scores files."""

    csv = "csv"
    parquet = "parquet"


class BadRowPolicy(str, Enum):
    """What scoring does with a malformed row: stop the input, or reject the row."""

    fail = "fail"
    skip = "skip"


class LogFormat(str, Enum):
    """How messages on stderr are written: for people, or as JSON lines."""

    text = "text"
    json = "json"


class EngineName(str, Enum):
    """Where inputs are scored: in this process, or on a Dask cluster."""

    local = "local"
    dask = "dask"


#: The most worker processes of a local Dask cluster (``--workers``).
MAX_LOCAL_WORKERS = 256


class RuntimeName(str, Enum):
    """What runs the model when scoring: ``model.onnx`` when the model directory has one
    (auto), onnxruntime on it (onnx), or Keras and TensorFlow (keras)."""

    auto = "auto"
    onnx = "onnx"
    keras = "keras"
