"""The reconstruction-error anomaly detector: fit, score, threshold, save, load.

The detector is kept apart from the network it trains (built in :mod:`anomaly.models`):
it owns the scaling, the threshold rule and the model directory format.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .choices import ModelFamily
from .exceptions import ModelError, NotFittedError

#: Version of the model directory layout; load refuses newer ones.
FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
#: Rows scored per call to the network: large batches run far faster than Keras's default 32.
INFERENCE_BATCH = 8192


#: The autoencoder families and the options each gets unless ``model_options`` says
#: otherwise. The dense family's options come from ``hidden_units``. A convolutional or
#: variational code of 16 numbers gives the anomaly score a real bottleneck (without one
#: a convolutional autoencoder learns the identity).
MODEL_FAMILIES = tuple(family.value for family in ModelFamily)
DEFAULT_MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "dense": {},
    "conv": {"filters": (32, 64), "latent_dim": 16},
    "vae": {"latent_dim": 16},
}
LOSSES = ("mae", "mse", "binary_crossentropy")


def reconstruction_error(traces: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean absolute error of each trace (or image) over all its values, shape ``(n,)``."""
    difference = np.subtract(traces, reconstructions)
    np.abs(difference, out=difference)
    return difference.reshape(len(difference), -1).mean(axis=1)


def mean_plus_std_threshold(errors: np.ndarray, k: float = 1.0) -> float:
    """The threshold ``mean(errors) + k * std(errors)`` (population standard deviation)."""
    errors = np.asarray(errors, dtype=np.float64)
    return float(errors.mean() + k * errors.std())


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AutoencoderDetector:
    """Flag traces whose autoencoder reconstruction error exceeds mean + k * std.

    Trains an autoencoder (dense, convolutional or variational, see
    :mod:`anomaly.models`) on normal traces only. Inputs are traces of shape
    ``(n, length)`` or images of shape ``(n, height, width)``; they are min-max scaled
    with the minimum and range of all training values, and the score of an input is the
    mean absolute error of its reconstruction in that scaled space.

    Parameters
    ----------
    model : {"dense", "conv", "vae"}, default "dense"
        The autoencoder family.
    model_options : dict, optional
        Keyword arguments for the family's builder, over ``DEFAULT_MODEL_OPTIONS``
        (for example ``{"latent_dim": 2}``).
    hidden_units : tuple of int, default (128, 64, 16)
        The dense family's encoder widths; the last is the code size. The decoder
        mirrors the encoder.
    loss : {"mae", "mse", "binary_crossentropy"}, default "mae"
        Training loss of the dense and convolutional families (the variational family
        always minimises its negative ELBO).
    noise_factor : float, default 0.0
        With a positive value, train as a denoising autoencoder: each epoch the inputs
        get fresh Gaussian noise of this standard deviation (in scaled units, clipped to
        [0, 1]) and the targets stay clean.
    epochs : int, default 200
        Most passes over the training traces.
    batch_size : int, default 64
    learning_rate : float, default 1e-3
        Adam's learning rate.
    validation_fraction : float, default 0.0
        Share of the training traces held back to watch for early stopping. With 0,
        early stopping watches the training loss instead: on ECG5000 this scored better
        and fitted twice as fast (Keras's per-epoch validation pass is costly).
    patience : int, default 30
        Epochs without improvement of the watched loss before training stops; the best
        weights are kept.
    threshold_k : float, default 1.0
        ``k`` in the threshold ``mean + k * std`` of the training errors.
    seed : int, default 0
        Seeds weight initialisation, shuffling and the validation split: two fits with
        the same seed and data give the same model and threshold.

    Attributes
    ----------
    threshold_ : float
        Scores above this are anomalies.
    n_features_in_ : int
        Values per input the model was trained on (samples per trace, pixels per image).
    input_shape_ : tuple of int
        Shape of one input, e.g. ``(140,)`` or ``(28, 28)``.
    train_errors_ : ndarray of shape (n_train,)
        Reconstruction errors of the training traces.
    train_error_mean_, train_error_std_ : float
    scale_min_, scale_range_ : float
        Min-max scaling fitted on the training traces.
    history_ : dict
        Keras training history (loss per epoch).
    epochs_trained_ : int
    model_ : keras.Model
    metadata_ : dict
        What ``save`` writes to ``metadata.json`` (set by ``fit`` and ``load``).
    """

    def __init__(
        self,
        *,
        model: str = "dense",
        model_options: dict[str, Any] | None = None,
        hidden_units: tuple[int, ...] = (128, 64, 16),
        loss: str = "mae",
        noise_factor: float = 0.0,
        epochs: int = 200,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.0,
        patience: int = 30,
        threshold_k: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.model_options = model_options
        self.hidden_units = hidden_units
        self.loss = loss
        self.noise_factor = noise_factor
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.threshold_k = threshold_k
        self.seed = seed

    # -- fitting -----------------------------------------------------------------------

    def fit(self, traces: np.ndarray, y: None = None, *, verbose: int = 0) -> "AutoencoderDetector":
        """Train on normal traces, then set the threshold from their errors.

        Parameters
        ----------
        traces : array-like of shape (n_traces, n_samples) or (n_images, height, width)
            Normal inputs only.
        y : ignored
        verbose : int, default 0
            Keras's progress output (0 silent, 2 one line per epoch).

        Returns
        -------
        self
        """
        self._validate_parameters()
        traces = np.asarray(traces, dtype=np.float64)
        if not 2 <= traces.ndim <= 4 or len(traces) < 2:
            raise ValueError(
                f"expected at least 2 traces as a 2-D array (or images as a 3-D array), "
                f"got shape {traces.shape}"
            )
        if not np.isfinite(traces).all():
            raise ValueError("traces contain NaN or infinite values")

        from .models import build_autoencoder, keras

        keras.utils.set_random_seed(self.seed)
        started = time.perf_counter()
        self.input_shape_ = tuple(int(size) for size in traces.shape[1:])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        self.scale_min_ = float(traces.min())
        self.scale_range_ = float(traces.max() - traces.min()) or 1.0
        scaled = self._scale(traces)

        order = np.random.default_rng(self.seed).permutation(len(scaled))
        n_validation = int(round(len(scaled) * self.validation_fraction))
        if n_validation and len(scaled) - n_validation >= 1:
            validation, training = scaled[order[:n_validation]], scaled[order[n_validation:]]
            validation_data, monitor = (validation, validation), "val_loss"
        else:
            training, validation_data, monitor = scaled[order], None, "loss"
        callbacks = [
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=self.patience, restore_best_weights=True
            )
        ]

        options = self._builder_options()
        if self.model == "vae":
            options.setdefault("seed", self.seed)
        self.model_ = build_autoencoder(self.model, self.input_shape_, **options)
        self.model_.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                            loss=None if self.model == "vae" else self.loss)
        if self.noise_factor > 0:
            from .denoising import noisy_batches

            data = dict(x=noisy_batches(training, noise_factor=self.noise_factor,
                                        batch_size=self.batch_size, seed=self.seed))
        else:
            data = dict(x=training, y=training, batch_size=self.batch_size, shuffle=True)
        history = self.model_.fit(
            **data,
            epochs=self.epochs,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
        )
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        self.epochs_trained_ = len(self.history_["loss"])

        self.train_errors_ = self._errors_of_scaled(scaled)
        self.train_error_mean_ = float(self.train_errors_.mean())
        self.train_error_std_ = float(self.train_errors_.std())
        self.threshold_ = mean_plus_std_threshold(self.train_errors_, self.threshold_k)
        self.fit_seconds_ = time.perf_counter() - started
        self.metadata_ = self._metadata(n_train=len(traces))
        return self

    def _builder_options(self) -> dict[str, Any]:
        """The keyword arguments the family's builder gets."""
        options = dict(DEFAULT_MODEL_OPTIONS[self.model])
        if self.model == "dense":
            options["hidden_units"] = tuple(self.hidden_units)
        options.update(self.model_options or {})
        return options

    def _validate_parameters(self) -> None:
        if self.model not in MODEL_FAMILIES:
            raise ValueError(f"model must be one of {MODEL_FAMILIES}, got {self.model!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not math.isfinite(self.noise_factor) or self.noise_factor < 0:
            raise ValueError(f"noise_factor must be a finite number >= 0, got {self.noise_factor}")
        if self.model_options is not None and not isinstance(self.model_options, dict):
            raise ValueError(f"model_options must be a dict, got {self.model_options!r}")
        if not self.hidden_units or any(int(u) < 1 for u in self.hidden_units):
            raise ValueError(f"hidden_units must be positive widths, got {self.hidden_units}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}"
            )
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if not math.isfinite(self.threshold_k):
            raise ValueError(f"threshold_k must be a finite number, got {self.threshold_k}")

    # -- scoring -----------------------------------------------------------------------

    def score(self, traces: np.ndarray) -> np.ndarray:
        """Reconstruction error (MAE in scaled units) of each input, shape ``(n,)``.

        Images may also be given flattened, one row of ``height * width`` values each.
        """
        return self._errors_of_scaled(self._scale(self._as_inputs(traces)))

    def predict(self, traces: np.ndarray) -> np.ndarray:
        """1 for an anomaly (score above ``threshold_``), 0 for normal."""
        return (self.score(traces) > self.threshold_).astype(np.int8)

    def reconstruct(self, traces: np.ndarray) -> np.ndarray:
        """Reconstructions in the inputs' own units, shape ``(n, *input_shape_)``."""
        scaled = self._scale(self._as_inputs(traces))
        return self._reconstruct_scaled(scaled) * self.scale_range_ + self.scale_min_

    @property
    def code_size(self) -> int:
        """Numbers per code (2 for a code you can plot), from the encoder's output shape."""
        from .models import encoder_of

        self._check_fitted()
        return math.prod(encoder_of(self.model_).output_shape[1:])

    def encode(self, traces: np.ndarray) -> np.ndarray:
        """Codes of the inputs (the code's mean for the variational family), ``(n, ...)``."""
        from .models import encoder_of

        return encoder_of(self.model_).predict(self._scale(self._as_inputs(traces)),
                                               batch_size=INFERENCE_BATCH, verbose=0)

    def _as_inputs(self, traces: np.ndarray) -> np.ndarray:
        """Inputs shaped ``(n, *input_shape_)``, or a ValueError saying what was expected."""
        self._check_fitted()
        traces = np.asarray(traces, dtype=np.float64)
        if traces.ndim >= 2 and traces.shape[1:] == self.input_shape_:
            return traces
        if traces.ndim == 2 and traces.shape[1] == self.n_features_in_:
            return traces.reshape(len(traces), *self.input_shape_)
        if len(self.input_shape_) == 1:
            got = traces.shape[1] if traces.ndim == 2 else f"an array of shape {traces.shape}"
            raise ValueError(f"expected {self.n_features_in_} samples per trace (the model's "
                             f"input length), got {got}")
        raise ValueError(f"expected inputs of shape {self.input_shape_} (the model's input "
                         f"shape), got an array of shape {traces.shape}")

    def _scale(self, traces: np.ndarray) -> np.ndarray:
        scaled = np.subtract(traces, self.scale_min_, dtype=np.float64)
        scaled /= self.scale_range_
        return scaled.astype(np.float32)

    def _reconstruct_scaled(self, scaled: np.ndarray) -> np.ndarray:
        # predict_on_batch runs Keras's compiled predict step: over twice as fast as
        # calling the model eagerly, and without predict's per-call setup.
        out = np.empty_like(scaled)
        for start in range(0, len(scaled), INFERENCE_BATCH):
            stop = start + INFERENCE_BATCH
            out[start:stop] = self.model_.predict_on_batch(
                scaled[start:stop].astype(np.float32, copy=False))
        return out

    def _errors_of_scaled(self, scaled: np.ndarray) -> np.ndarray:
        return reconstruction_error(scaled, self._reconstruct_scaled(scaled)).astype(np.float64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(
                "this AutoencoderDetector is not fitted yet; call fit or load first"
            )

    # -- persistence -------------------------------------------------------------------

    def _metadata(self, n_train: int) -> dict[str, Any]:
        from ._tensorflow import versions

        return {
            "format_version": FORMAT_VERSION,
            "detector": "AutoencoderDetector",
            "architecture": {
                "model": self.model,
                "hidden_units": [int(u) for u in self.hidden_units],
                "options": _jsonable(self._builder_options()),
            },
            "input_length": int(self.n_features_in_),
            "input_shape": list(self.input_shape_),
            "scaling": {"method": "minmax", "min": self.scale_min_, "range": self.scale_range_},
            "threshold": self.threshold_,
            "threshold_k": float(self.threshold_k),
            "train_error_mean": self.train_error_mean_,
            "train_error_std": self.train_error_std_,
            "training": {
                "rows": int(n_train),
                "epochs": int(self.epochs_trained_),
                "max_epochs": int(self.epochs),
                "batch_size": int(self.batch_size),
                "learning_rate": float(self.learning_rate),
                "validation_fraction": float(self.validation_fraction),
                "seed": int(self.seed),
                "loss": "negative_elbo" if self.model == "vae" else self.loss,
                "noise_factor": float(self.noise_factor),
                "fit_seconds": round(self.fit_seconds_, 3),
            },
            "versions": {"anomaly": __version__, "python": platform.python_version(), **versions()},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, directory: str | os.PathLike, *, training_file: str | os.PathLike | None = None,
             extra: dict[str, Any] | None = None, companions: tuple[str, ...] = ()) -> Path:
        """Write ``model.keras`` and ``metadata.json`` into ``directory``, atomically.

        The directory appears complete or not at all: it is written beside the target
        and renamed into place. An existing model directory is replaced; any other
        non-empty directory is left alone and refused.

        Parameters
        ----------
        directory : path
        training_file : path, optional
            Recorded in the metadata with its SHA-256.
        extra : dict, optional
            More metadata under ``"training"`` (for example rows skipped).
        companions : tuple of str, default ()
            Names of other files the caller keeps in the model directory (pictures): a
            directory holding them too is still a model directory, and is replaced.

        Returns
        -------
        Path
            The model directory.
        """
        self._check_fitted()
        target = Path(directory)
        if target.exists() and not _is_replaceable_model_dir(target, companions):
            raise ModelError(
                f"{target}: exists and is not a model directory; refusing to overwrite it"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        metadata = json.loads(json.dumps(self.metadata_))
        if training_file is not None:
            metadata["training"]["file"] = str(training_file)
            metadata["training"]["file_sha256"] = file_sha256(training_file)
        metadata["training"].update(extra or {})

        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            self.model_.save(staging / MODEL_FILE)
            metadata["model_sha256"] = file_sha256(staging / MODEL_FILE)
            _write_json_durably(staging / METADATA_FILE, metadata)
            _replace_directory(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.metadata_ = metadata
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "AutoencoderDetector":
        """Load a model directory written by :meth:`save`.

        The metadata is validated first; ``model.keras`` must match the SHA-256 recorded
        in it and is loaded with Keras safe mode (no arbitrary code, no pickle).

        Raises
        ------
        ModelError
            If the directory is missing or incomplete, the metadata is malformed or from
            a newer format, or ``model.keras`` does not match its recorded hash.
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ModelError(f"{directory}: a file, not a model directory (model.keras + "
                             "metadata.json)")
        if not directory.is_dir():
            raise ModelError(f"{directory}: no model directory here (run 'anomaly fit' first)")
        metadata_path, model_path = directory / METADATA_FILE, directory / MODEL_FILE
        for required in (metadata_path, model_path):
            if not required.is_file():
                raise ModelError(f"{directory}: incomplete model directory, {required.name} is missing")
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            # A RecursionError is JSON nested deeper than the parser's stack.
            raise ModelError(f"{metadata_path}: unreadable metadata ({error})") from error
        validate_metadata(metadata, metadata_path)
        if file_sha256(model_path) != metadata["model_sha256"]:
            raise ModelError(
                f"{model_path}: does not match the SHA-256 recorded in {METADATA_FILE} "
                "(modified or replaced since it was saved)"
            )

        from .models import input_shape_of, keras

        try:
            model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises many types for a corrupt archive.
            raise ModelError(f"{model_path}: cannot be loaded ({error})") from error
        # Model directories from before the convolutional and variational families hold
        # a dense model of 1-D traces and no input_shape, loss or noise_factor.
        input_shape = tuple(metadata.get("input_shape", [metadata["input_length"]]))
        if input_shape_of(model) != (None, *input_shape):
            raise ModelError(
                f"{model_path}: input shape {input_shape_of(model)} does not match the "
                f"metadata's input shape {input_shape}"
            )

        training = metadata["training"]
        architecture = metadata["architecture"]
        detector = cls(
            model=architecture["model"],
            model_options=_tuples(architecture.get("options", {})),
            hidden_units=tuple(architecture["hidden_units"]),
            loss=training.get("loss", "mae") if architecture["model"] != "vae" else "mae",
            noise_factor=training.get("noise_factor", 0.0),
            epochs=training["max_epochs"],
            batch_size=training["batch_size"],
            learning_rate=training["learning_rate"],
            validation_fraction=training["validation_fraction"],
            threshold_k=metadata["threshold_k"],
            seed=training["seed"],
        )
        detector.model_ = model
        detector.n_features_in_ = metadata["input_length"]
        detector.input_shape_ = input_shape
        detector.scale_min_ = metadata["scaling"]["min"]
        detector.scale_range_ = metadata["scaling"]["range"]
        detector.threshold_ = metadata["threshold"]
        detector.train_error_mean_ = metadata["train_error_mean"]
        detector.train_error_std_ = metadata["train_error_std"]
        detector.epochs_trained_ = training["epochs"]
        detector.metadata_ = metadata
        # Trace the compiled predict step now, for a batch of any size (the second call
        # generalises the first's shape), so the first block scored does not pay for it.
        for rows in (1, 2):
            model.predict_on_batch(np.zeros((rows, *input_shape), dtype=np.float32))
        return detector


# -- metadata schema ------------------------------------------------------------------

_NUMBER = (int, float)
#: Required keys and their types; nested dicts are checked the same way.
_SCHEMA: dict[str, Any] = {
    "format_version": int,
    "architecture": {"model": str, "hidden_units": list},
    "input_length": int,
    "scaling": {"method": str, "min": _NUMBER, "range": _NUMBER},
    "threshold": _NUMBER,
    "threshold_k": _NUMBER,
    "train_error_mean": _NUMBER,
    "train_error_std": _NUMBER,
    "training": {
        "rows": int,
        "epochs": int,
        "max_epochs": int,
        "batch_size": int,
        "learning_rate": _NUMBER,
        "validation_fraction": _NUMBER,
        "seed": int,
    },
    "model_sha256": str,
}


def validate_metadata(metadata: Any, source: str | os.PathLike = METADATA_FILE) -> None:
    """Check a model's metadata against the schema: keys, types, finite numbers, version.

    Raises
    ------
    ModelError
        Naming the file and the first problem found.
    """
    def fail(problem: str) -> None:
        raise ModelError(f"{source}: {problem}")

    def check(value: Any, schema: Any, where: str) -> None:
        if isinstance(schema, dict):
            if not isinstance(value, dict):
                fail(f"{where or 'the metadata'} should be a JSON object")
            for key, sub_schema in schema.items():
                if key not in value:
                    fail(f"missing key {where + key!r}")
                check(value[key], sub_schema, f"{where}{key}.")
            return
        name = where.rstrip(".")
        # bool is an int in Python, but true/false is never a valid count or number here.
        if isinstance(value, bool) or not isinstance(value, schema):
            fail(f"{name!r} has the wrong type ({type(value).__name__})")
        if schema is _NUMBER and not _is_finite(value):
            fail(f"{name!r} is not a finite number")

    if isinstance(metadata, dict) and isinstance(metadata.get("format_version"), int):
        # Checked first: a newer format may well have other keys.
        if metadata["format_version"] > FORMAT_VERSION:
            fail(
                f"model format version {metadata['format_version']} is newer than this "
                f"anomaly supports ({FORMAT_VERSION}); upgrade anomaly"
            )
    check(metadata, _SCHEMA, "")
    if metadata["format_version"] < 1:
        fail(f"unknown model format version {metadata['format_version']}")
    if metadata["architecture"]["model"] not in MODEL_FAMILIES:
        fail(f"unknown model architecture {metadata['architecture']['model']!r}")
    _validate_optional_metadata(metadata, fail)
    if metadata["scaling"]["method"] != "minmax" or metadata["scaling"]["range"] <= 0:
        fail("scaling must be 'minmax' with a positive range")
    if metadata["input_length"] < 1:
        fail("'input_length' must be at least 1")
    units = metadata["architecture"]["hidden_units"]
    if not units or not all(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in units):
        fail("'architecture.hidden_units' must be a list of positive integers")
    if len(metadata["model_sha256"]) != 64:
        fail("'model_sha256' is not a SHA-256 hex digest")


def _is_finite(number: int | float) -> bool:
    """Whether a JSON number is a finite float: an integer may be too large for one."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _validate_optional_metadata(metadata: dict[str, Any], fail) -> None:
    """Keys added with the model families; older model directories lack them."""
    if "input_shape" in metadata:
        shape = metadata["input_shape"]
        if (not isinstance(shape, list) or not 1 <= len(shape) <= 3
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            fail("'input_shape' must be a list of 1 to 3 positive integers")
        if math.prod(shape) != metadata["input_length"]:
            fail(f"'input_shape' {shape} does not hold 'input_length' "
                 f"{metadata['input_length']} values")
    if not isinstance(metadata["architecture"].get("options", {}), dict):
        fail("'architecture.options' should be a JSON object")
    training = metadata["training"]
    if training.get("loss", "mae") not in (*LOSSES, "negative_elbo"):
        fail(f"unknown training loss {training['loss']!r}")
    noise = training.get("noise_factor", 0.0)
    if isinstance(noise, bool) or not isinstance(noise, _NUMBER) or not 0 <= noise < math.inf:
        fail("'training.noise_factor' must be a finite number >= 0")


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in options.items()}


def _tuples(options: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value
            for key, value in options.items()}


# -- file helpers -----------------------------------------------------------------------

def _is_replaceable_model_dir(path: Path, companions: tuple[str, ...] = ()) -> bool:
    """An empty directory, or one holding nothing but a model's files and its companions."""
    return path.is_dir() and all(
        p.name in (MODEL_FILE, METADATA_FILE) or (p.name in companions and p.is_file())
        for p in path.iterdir())


def _write_json_durably(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2, sort_keys=True)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())


def _replace_directory(staging: Path, target: Path) -> None:
    """Move a fully written directory into place, replacing any old one."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
