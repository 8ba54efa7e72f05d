"""The reconstruction-error anomaly detector: fit, score, predict, threshold.

The detector is kept apart from the network it trains (built in :mod:`anomaly.models`) and
from the files it is saved as (:mod:`anomaly.model_directory`): it owns the scaling, the
training, the per-input error and the threshold rule.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import model_directory
from .choices import ModelFamily, ThresholdSource
from .exceptions import InputError, ModelError, NotFittedError, length_mismatch
from .runtimes import INFERENCE_BATCH

#: How far outside the training range (in multiples of it) a value may be and still be
#: scored: beyond, it would overflow the network's float32 arithmetic.
SCALED_LIMIT = 1e6


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
#: ``batch_size="auto"``: batches grow with the training set, so that an epoch is about
#: this many gradient steps once the set is past 64 x this many inputs (below, 64).
AUTO_BATCH_STEPS = 100
AUTO_BATCH_RANGE = (64, 4096)
#: Where the errors that set the threshold come from: the beats the network trained on,
#: or beats held out of training (``heldout_fraction`` of them).
THRESHOLD_SOURCES = tuple(source.value for source in ThresholdSource)
#: Fewest held-out beats a threshold is set from; with fewer, the training beats set it.
MIN_HELDOUT = 10


def auto_batch_size(n_inputs: int) -> int:
    """The batch size ``batch_size="auto"`` trains ``n_inputs`` with: 64 up to 6,400
    inputs, then the power of two nearest ``n_inputs / 100`` (at most 4,096)."""
    low, high = AUTO_BATCH_RANGE
    nearest = 2 ** round(math.log2(max(n_inputs, 1) / AUTO_BATCH_STEPS))
    return int(min(max(nearest, low), high))


def reconstruction_error(traces: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean absolute error of each trace (or image) over all its values, shape ``(n,)``."""
    difference = np.subtract(traces, reconstructions)
    np.abs(difference, out=difference)
    return difference.reshape(len(difference), -1).mean(axis=1)


def scaling_note(traces: np.ndarray) -> str | None:
    """A warning when a few extreme values set the min-max scaling, squeezing the rest
    of the training values into a sliver of the range; None otherwise."""
    values = np.asarray(traces, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    typical_low, typical_high = (float(v) for v in np.percentile(values, [0.1, 99.9]))
    span, typical = high - low, typical_high - typical_low
    if not typical > 0 or not math.isfinite(span) or span <= 100 * typical:
        return None  # (A span beyond a float is refused by fit itself.)
    return (f"the training values span {low:.6g} to {high:.6g}, but 99.8% of them lie within "
            f"{typical_low:.6g} to {typical_high:.6g}: a few extreme values set the min-max "
            f"scaling and squeeze the rest into {typical / span:.2g} of its range")


def context_error(traces: np.ndarray, reconstructions: np.ndarray, context_columns: int,
                  context_weight: float) -> np.ndarray:
    """Per-trace error of a trace whose last ``context_columns`` values are context:
    ``(1 - context_weight)`` x the MAE of the rest plus ``context_weight`` x the MAE of
    the context, shape ``(n,)``."""
    difference = np.abs(np.subtract(traces, reconstructions))
    return ((1.0 - context_weight) * difference[:, :-context_columns].mean(axis=1)
            + context_weight * difference[:, -context_columns:].mean(axis=1))


def _staged(on_epoch: Callable[[int, int, dict], None] | None, stage: str
            ) -> Callable[[int, int, dict], None] | None:
    """``on_epoch`` with ``fit: stage`` added to the logs it gets."""
    if on_epoch is None:
        return None
    return lambda epoch, epochs, logs: on_epoch(epoch, epochs, {**logs, "fit": stage})


def mean_plus_std_threshold(errors: np.ndarray, k: float = 1.0) -> float:
    """The threshold ``mean(errors) + k * std(errors)`` (population standard deviation)."""
    errors = np.asarray(errors, dtype=np.float64)
    return float(errors.mean() + k * errors.std())


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
    batch_size : int or "auto", default "auto"
        Traces per gradient step. ``"auto"``: 64 up to 6,400 training traces, then
        growing with them (:func:`auto_batch_size`), which keeps a large set's epochs
        cheap in steps.
    max_inputs_seen : int or None, default 5_000_000
        Most traces passed through the network in all (epochs x training traces): a
        large training set trains fewer epochs (100,000 beats: 50), so the fit's time is
        bounded. Below 25,000 traces it does not bind at 200 epochs. None: no bound.
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
        ``k`` in the threshold ``mean + k * std`` of the errors of ``threshold_source``.
    threshold_source : {"training", "heldout", "heldout-refit"}, default "heldout-refit"
        Whose errors set the threshold: the training beats' (the network has fitted
        them, so their errors run low), or those of ``heldout_fraction`` of the beats,
        held out of training. ``"heldout-refit"``: a first model, trained without the
        held-out beats, sets the threshold from their errors; the model kept is then
        trained on every beat (two fits). With fewer than 10 beats to hold out, the
        training beats' (``threshold_source_`` says which was used).
    heldout_fraction : float, default 0.2
    context : tuple of str, default ()
        Names of context values the last ``len(context)`` columns of each trace hold
        (a beat's RR context, :data:`anomaly.recordings.rhythm.RR_CONTEXT`). The network
        does not see them: they are blanked in its input, and it learns to predict them
        from the rest of the trace, so a beat of normal shape at an abnormal moment
        (a premature beat) is reconstructed with the rhythm of a normal one. Each context
        column is min-max scaled on its own. Dense family only.
    context_weight : float, default 0.25
        With ``context``, the share of the score the context carries: the score is
        ``(1 - context_weight)`` x the MAE of the trace plus ``context_weight`` x the MAE
        of the context (0.25 ranked MIT-BIH's beats better than 0.5, see
        docs/benchmarks.md).
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
        Reconstruction errors of the traces trained on (all but the held-out ones).
    threshold_source_ : str
        ``"training"`` or ``"heldout"``: whose errors set the threshold.
    threshold_errors_ : ndarray
        The errors that set the threshold.
    train_error_mean_, train_error_std_ : float
        Mean and standard deviation of ``threshold_errors_`` (the names are the model
        format's).
    network_parameters_ : int
        Weights of the network (its size).
    scale_min_, scale_range_ : float
        Min-max scaling fitted on the training traces (without their context).
    context_min_, context_range_ : ndarray of shape (len(context),)
        Each context column's min-max scaling (with ``context``).
    history_ : dict
        Keras training history (loss per epoch).
    epochs_trained_ : int
    batch_size_ : int
        The batch size trained with (``batch_size`` resolved).
    epochs_planned_ : int
        The most epochs this fit could train: ``epochs``, fewer when
        ``max_inputs_seen`` binds (early stopping may end it sooner still).
    model_ : keras.Model
        Set by ``fit``, and by ``load`` with the Keras runtime.
    runtime_ : anomaly.runtimes.Runtime
        What runs the model forward when scoring: Keras after ``fit``, the runtime
        chosen by ``load`` after it (``runtime_.name`` is ``"keras"`` or ``"onnx"``).
    metadata_ : dict
        What ``save`` writes to ``metadata.json`` (set by ``fit`` and ``load``).

    Notes
    -----
    Follows scikit-learn's estimator contract (``get_params``, ``set_params``, every
    constructor parameter stored unchanged, so ``sklearn.base.clone`` works) without
    inheriting ``BaseEstimator``: importing scikit-learn costs over a second and 150 MB,
    which every scoring run would pay for nothing.
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
        batch_size: int | str = "auto",
        max_inputs_seen: int | None = 5_000_000,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.0,
        patience: int = 30,
        threshold_k: float = 1.0,
        threshold_source: str = "heldout-refit",
        heldout_fraction: float = 0.2,
        context: tuple[str, ...] = (),
        context_weight: float = 0.25,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.model_options = model_options
        self.hidden_units = hidden_units
        self.loss = loss
        self.noise_factor = noise_factor
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_inputs_seen = max_inputs_seen
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.threshold_k = threshold_k
        self.threshold_source = threshold_source
        self.heldout_fraction = heldout_fraction
        self.context = context
        self.context_weight = context_weight
        self.seed = seed

    # -- parameters (scikit-learn's contract) -------------------------------------------

    @classmethod
    def _parameter_names(cls) -> tuple[str, ...]:
        return tuple(name for name, parameter in inspect.signature(cls.__init__).parameters.items()
                     if parameter.kind is parameter.KEYWORD_ONLY)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters and their values.

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn; no parameter is itself an estimator.

        Returns
        -------
        dict
            Parameter name to value, for every keyword of the constructor.
        """
        return {name: getattr(self, name) for name in self._parameter_names()}

    def set_params(self, **params: Any) -> "AutoencoderDetector":
        """Set constructor parameters by name; refit for them to take effect."""
        names = self._parameter_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters are {', '.join(names)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {name: parameter.default for name, parameter
                    in inspect.signature(type(self).__init__).parameters.items()}
        changed = [f"{name}={value!r}" for name, value in self.get_params().items()
                   if value != defaults[name]]
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- fitting -----------------------------------------------------------------------

    def fit(self, traces: np.ndarray, y: None = None, *, verbose: int = 0,
            on_epoch: Callable[[int, int, dict], None] | None = None) -> "AutoencoderDetector":
        """Train on normal traces, then set the threshold from their errors.

        Parameters
        ----------
        traces : array-like of shape (n_traces, n_samples) or (n_images, height, width)
            Normal inputs only.
        y : ignored
        verbose : int, default 0
            Keras's progress output (0 silent, 2 one line per epoch).
        on_epoch : callable, optional
            Called after each epoch with its 0-based number, ``epochs_planned_`` and the
            epoch's logs (``loss``, and ``val_loss`` with a validation fraction; with
            ``threshold_source="heldout-refit"``, ``fit``: ``"1/2"`` for the first model's
            epochs, ``"2/2"`` for the kept one's): a progress display.

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

        from .models import keras

        keras.utils.set_random_seed(self.seed)
        started = time.perf_counter()
        self.input_shape_ = tuple(int(size) for size in traces.shape[1:])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        self._fit_scaling(traces)
        scaled = self._scale(traces)

        order, heldout = self._heldout_split(len(scaled))
        calibration = None
        if self.threshold_source == "heldout-refit" and heldout is not None:
            # The first model's held-out errors; the model kept trains on every beat.
            first = type(self)(**{**self.get_params(), "threshold_source": "heldout"})
            calibration = first.fit(traces, on_epoch=_staged(on_epoch, "1/2")).threshold_errors_
            on_epoch = _staged(on_epoch, "2/2")
            order, heldout = np.random.default_rng(self.seed).permutation(len(scaled)), None
            keras.utils.set_random_seed(self.seed)
        self._train(scaled, order, verbose=verbose, on_epoch=on_epoch)

        self.network_parameters_ = int(self.model_.count_params())
        self.train_errors_ = self._errors_of_scaled(
            scaled if heldout is None else scaled[np.sort(order)])
        if calibration is not None:
            self.threshold_source_, self.threshold_errors_ = "heldout-refit", calibration
        elif heldout is not None:
            self.threshold_source_ = "heldout"
            self.threshold_errors_ = self._errors_of_scaled(scaled[heldout])
        else:
            self.threshold_source_, self.threshold_errors_ = "training", self.train_errors_
        self.train_error_mean_ = float(self.threshold_errors_.mean())
        self.train_error_std_ = float(self.threshold_errors_.std())
        self.threshold_ = mean_plus_std_threshold(self.threshold_errors_, self.threshold_k)
        if not math.isfinite(self.threshold_):
            raise InputError("training gave reconstruction errors that are not finite "
                             f"(threshold {self.threshold_}); nothing was saved")
        self.fit_seconds_ = time.perf_counter() - started
        self.metadata_ = model_directory.build_metadata(self, n_train=len(traces))
        return self

    def _heldout_split(self, n_traces: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows to train on, in the seed's order, and the rows held out to set the
        threshold (None: the training beats set it, by choice or for want of beats)."""
        order = np.random.default_rng(self.seed).permutation(n_traces)
        n_heldout = (int(round(n_traces * self.heldout_fraction))
                     if self.threshold_source != "training" else 0)
        if n_heldout >= MIN_HELDOUT and n_traces - n_heldout >= 2:
            return order[:-n_heldout], order[-n_heldout:]
        return order, None

    def _train(self, scaled: np.ndarray, order: np.ndarray, *, verbose: int,
               on_epoch: Callable[[int, int, dict], None] | None) -> None:
        """Build the network and train it on the rows ``order`` of ``scaled`` (the first
        ``validation_fraction`` of them watched for early stopping instead), on the
        schedule the parameters give: sets ``model_``, ``runtime_``, ``history_``,
        ``epochs_trained_``, ``batch_size_``, ``epochs_planned_``."""
        from .models import build_autoencoder, keras
        from .runtimes.keras_runtime import KerasRuntime

        n_validation = int(round(len(order) * self.validation_fraction))
        if n_validation and len(order) - n_validation >= 1:
            validation, training = scaled[order[:n_validation]], scaled[order[n_validation:]]
            validation_data, monitor = (self._network_input(validation), validation), "val_loss"
        else:
            training, validation_data, monitor = scaled[order], None, "loss"
        self.batch_size_ = (auto_batch_size(len(training)) if self.batch_size == "auto"
                            else int(self.batch_size))
        self.epochs_planned_ = self.epochs
        if self.max_inputs_seen is not None:
            self.epochs_planned_ = max(1, min(self.epochs, self.max_inputs_seen // len(training)))
        callbacks = [
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=self.patience, restore_best_weights=True
            )
        ]
        if on_epoch is not None:
            callbacks.append(keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: on_epoch(epoch, self.epochs_planned_,
                                                          dict(logs or {}))))

        options = self.builder_options()
        if self.model == "vae":
            options.setdefault("seed", self.seed)
        self.model_ = build_autoencoder(self.model, self.input_shape_, **options)
        self.model_.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                            loss=None if self.model == "vae" else self.loss)
        if self.noise_factor > 0:
            from .denoising import noisy_batches

            data = dict(x=noisy_batches(training, noise_factor=self.noise_factor,
                                        batch_size=self.batch_size_, seed=self.seed))
        else:
            data = dict(x=self._network_input(training), y=training,
                        batch_size=self.batch_size_, shuffle=True)
        history = self.model_.fit(
            **data,
            epochs=self.epochs_planned_,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
        )
        self.runtime_ = KerasRuntime(self.model_)
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        self.epochs_trained_ = len(self.history_["loss"])

    def _fit_scaling(self, traces: np.ndarray) -> None:
        """Min-max scaling of the traces' values, and of each context column on its own."""
        n_context = len(self.context)
        if n_context and (traces.ndim != 2 or traces.shape[1] <= n_context):
            raise ValueError(f"with {n_context} context column(s), expected traces as a 2-D "
                             f"array with more columns than that, got shape {traces.shape}")
        body = traces[:, :-n_context] if n_context else traces
        self.scale_min_ = float(body.min())
        # Python floats: a span beyond the largest float is inf, without a warning.
        self.scale_range_ = (float(body.max()) - self.scale_min_) or 1.0
        if not math.isfinite(self.scale_range_):
            raise InputError(f"the training values span {self.scale_min_:.6g} to "
                             f"{float(body.max()):.6g}, more than a 64-bit float can hold")
        if n_context:
            context = traces[:, -n_context:]
            self.context_min_ = context.min(axis=0)
            spread = context.max(axis=0) - self.context_min_
            self.context_range_ = np.where(spread > 0, spread, 1.0)
            if not np.isfinite(self.context_range_).all():
                raise InputError("the training context values span more than a 64-bit "
                                 "float can hold")

    def builder_options(self) -> dict[str, Any]:
        """The keyword arguments the family's builder gets."""
        options = dict(DEFAULT_MODEL_OPTIONS[self.model])
        if self.model == "dense":
            options["hidden_units"] = tuple(self.hidden_units)
        options.update(self.model_options or {})
        return options

    def _validate_parameters(self) -> None:
        """Raise a ValueError naming the first parameter that cannot be used."""
        try:
            self._check_parameters()
        except TypeError as error:
            raise ValueError(f"a parameter has the wrong type ({error})") from None

    def _check_parameters(self) -> None:
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
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size != "auto" and (isinstance(self.batch_size, (str, bool))
                                          or self.batch_size < 1):
            raise ValueError(f"batch_size must be 'auto' or at least 1, got {self.batch_size!r}")
        if self.max_inputs_seen is not None and self.max_inputs_seen < 1:
            raise ValueError(f"max_inputs_seen must be None or at least 1, got "
                             f"{self.max_inputs_seen}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if not math.isfinite(self.threshold_k):
            raise ValueError(f"threshold_k must be a finite number, got {self.threshold_k}")
        if self.threshold_source not in THRESHOLD_SOURCES:
            raise ValueError(f"threshold_source must be one of {THRESHOLD_SOURCES}, got "
                             f"{self.threshold_source!r}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        if self.patience < 0:
            raise ValueError(f"patience must be at least 0, got {self.patience}")
        if (not isinstance(self.context, (tuple, list))
                or not all(isinstance(name, str) and name for name in self.context)
                or len(set(self.context)) != len(self.context)):
            raise ValueError(f"context must be a tuple of distinct column names, got "
                             f"{self.context!r}")
        if self.context and self.model != "dense":
            raise ValueError(f"context needs the dense family, got model={self.model!r}")
        if self.context and self.noise_factor > 0:
            raise ValueError("context and noise_factor cannot be combined")
        if not 0.0 < self.context_weight < 1.0:
            raise ValueError(f"context_weight must be in (0, 1), got {self.context_weight}")

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
        reconstructions = self._reconstruct_scaled(self._network_input(scaled))
        return self._unscale(reconstructions.astype(np.float64))

    @property
    def n_samples_(self) -> int:
        """Values per trace without its context (``n_features_in_`` less ``context``)."""
        return self.n_features_in_ - len(self.context)

    @property
    def code_size(self) -> int:
        """Numbers per code (2 for a code you can plot), from the encoder's output shape."""
        from .models import encoder_of

        return math.prod(encoder_of(self._keras_model()).output_shape[1:])

    def encode(self, traces: np.ndarray) -> np.ndarray:
        """Codes of the inputs (the code's mean for the variational family), ``(n, ...)``."""
        from .models import encoder_of

        scaled = self._network_input(self._scale(self._as_inputs(traces)))
        return encoder_of(self._keras_model()).predict(scaled, batch_size=INFERENCE_BATCH,
                                                       verbose=0)

    def _keras_model(self):
        self._check_fitted()
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this detector was loaded with the {self.runtime_.name} "
                                 "runtime, which only reconstructs; load it with "
                                 "runtime='keras' to reach its encoder")
        return self.model_

    def _as_inputs(self, traces: np.ndarray) -> np.ndarray:
        """Inputs shaped ``(n, *input_shape_)``, or an InputError saying what was expected."""
        self._check_fitted()
        traces = np.asarray(traces, dtype=np.float64)
        if traces.ndim >= 2 and traces.shape[1:] == self.input_shape_:
            return traces
        if traces.ndim == 2 and traces.shape[1] == self.n_features_in_:
            return traces.reshape(len(traces), *self.input_shape_)
        if traces.ndim == 2:  # Rows of values, as a CSV file holds them.
            raise InputError(length_mismatch(self.n_features_in_, traces.shape[1]))
        raise InputError(f"expected inputs of shape {self.input_shape_} (the model's input "
                         f"shape), got inputs of shape {traces.shape[1:]}")

    def value_range(self) -> tuple[float, float]:
        """The values the detector can score: the training range widened
        ``SCALED_LIMIT`` times on each side. Beyond it values are clipped to it."""
        self._check_fitted()
        return (self.scale_min_ - SCALED_LIMIT * self.scale_range_,
                self.scale_min_ + (1 + SCALED_LIMIT) * self.scale_range_)

    def _scale(self, traces: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.subtract(traces, self.scale_min_, dtype=np.float64)
            scaled /= self.scale_range_
            if self.context:
                n_context = len(self.context)
                scaled[:, -n_context:] = ((traces[:, -n_context:] - self.context_min_)
                                          / self.context_range_)
        np.clip(scaled, -SCALED_LIMIT, 1 + SCALED_LIMIT, out=scaled)
        return scaled.astype(np.float32)

    def _unscale(self, scaled: np.ndarray) -> np.ndarray:
        values = scaled * self.scale_range_ + self.scale_min_
        if self.context:
            n_context = len(self.context)
            values[:, -n_context:] = (scaled[:, -n_context:] * self.context_range_
                                      + self.context_min_)
        return values

    def _network_input(self, scaled: np.ndarray) -> np.ndarray:
        """What the network sees of scaled traces: their context blanked (zeros)."""
        if not self.context:
            return scaled
        blanked = scaled.copy()
        blanked[:, -len(self.context):] = 0.0
        return blanked

    def _reconstruct_scaled(self, scaled: np.ndarray) -> np.ndarray:
        return self.runtime_.reconstruct(scaled)

    def _errors_of_scaled(self, scaled: np.ndarray) -> np.ndarray:
        reconstructions = self._reconstruct_scaled(self._network_input(scaled))
        if self.context:
            errors = context_error(scaled, reconstructions, len(self.context),
                                   self.context_weight)
        else:
            errors = reconstruction_error(scaled, reconstructions)
        return errors.astype(np.float64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(
                "this AutoencoderDetector is not fitted yet; call fit or load first"
            )

    # -- persistence -------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, *, training_file: str | os.PathLike | None = None,
             extra: dict[str, Any] | None = None, companions: tuple[str, ...] = ()) -> Path:
        """Write ``model.keras``, ``model.onnx`` and ``metadata.json`` into ``directory``,
        atomically.

        The directory appears complete or not at all (see :mod:`anomaly.model_directory`).
        An existing model directory is replaced; any other non-empty directory is refused.

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

        Raises
        ------
        InputError
            The destination is not a model directory, is the working directory, or its
            parent cannot be written (see :func:`anomaly.model_directory.check_destination`).
        """
        from .io.writers import file_sha256

        self._check_fitted()
        metadata = dict(self.metadata_, training=dict(self.metadata_["training"]))
        if training_file is not None:
            metadata["training"]["file"] = str(training_file)
            metadata["training"]["file_sha256"] = file_sha256(training_file)
        metadata["training"].update(extra or {})
        self.metadata_ = model_directory.write_model_directory(
            directory, self._keras_model(), metadata, companions=companions)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, runtime: str = "auto") -> "AutoencoderDetector":
        """Load a model directory written by :meth:`save`.

        The metadata is validated first, then the parameters it records. Each model file
        must match the SHA-256 recorded in it; ``model.keras`` is loaded with Keras safe
        mode (no arbitrary code, no pickle), ``model.onnx`` with onnxruntime.

        Parameters
        ----------
        directory : path
        runtime : {"auto", "onnx", "keras"}, default "auto"
            What runs the model when scoring (see :mod:`anomaly.runtimes`): ``auto``
            takes ``model.onnx`` when the directory has one, and imports no TensorFlow.

        Raises
        ------
        ModelError
            If the directory is missing or incomplete, the metadata is malformed or from
            a newer format, or a model file does not match its recorded hash or does not
            load.
        MissingDependencyError
            The Keras runtime in an installation without TensorFlow.
        """
        from .runtimes import load_runtime

        metadata = model_directory.read_metadata(directory)
        try:
            detector = cls(**model_directory.detector_params(metadata))
            detector._validate_parameters()
        except (TypeError, ValueError) as error:
            raise ModelError(f"{Path(directory) / model_directory.METADATA_FILE}: "
                             f"bad detector parameters ({error})") from None
        detector.runtime_ = load_runtime(directory, metadata, runtime)
        if detector.runtime_.name == "keras":
            detector.model_ = detector.runtime_.model
        for name, value in model_directory.fitted_state(metadata).items():
            setattr(detector, name, value)
        detector.metadata_ = metadata
        return detector
