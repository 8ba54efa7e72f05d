"""The autoencoder anomaly detector: fit, score, predict, threshold.

The detector composes the pieces of :mod:`anomaly.model`, each the one owner of its fact:
its parameters' rules (:mod:`.parameters`), the input scaling (:mod:`.scaling`), the
training of a network (:mod:`.training`, builders in :mod:`.networks`), the score
(:mod:`.errors`) and the threshold (:mod:`.threshold`). The files it is saved as are
:mod:`.directory`'s; what runs it forward when scoring, :mod:`.runtimes`'.
"""

from __future__ import annotations

import copy
import inspect
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import ModelError, NotFittedError, shortened
from .code_memory import CodeMemory, uses_code_distance
from .errors import input_errors
from .parameters import validate_params, with_python_numbers
from .provenance import Provenance
from .runtimes import INFERENCE_BATCH
from .scaling import Scaling
from .threshold import Calibrated, calibrate
from .training import NetworkSpec, OnEpoch, Schedule, TrainedNetwork, TrainingSummary

if TYPE_CHECKING:
    from .directory import ModelRecord


#: The autoencoder families' builder options unless ``model_options`` says otherwise.
#: The dense family's options come from ``hidden_units``. A convolutional or variational
#: code of 16 numbers gives the anomaly score a real bottleneck (without one a
#: convolutional autoencoder learns the identity).
DEFAULT_MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "dense": {},
    "conv": {"filters": (32, 64), "latent_dim": 16},
    "vae": {"latent_dim": 16},
}


class AutoencoderDetector:
    """Flag traces whose score, the autoencoder's reconstruction error (times their
    distance from the training traces, in the code and in the samples, from 200 training
    traces), exceeds mean + k * std.

    Trains an autoencoder (dense, convolutional or variational, see
    `anomaly.model.networks`) on normal traces only. Inputs are traces of shape
    ``(n, length)`` or images of shape ``(n, height, width)``; they are min-max scaled
    with the minimum and range of all training values, and the score of an input is the
    mean absolute (or, with ``error_metric="mse"``, squared) error of its reconstruction
    in that scaled space; with ``code_distance``, that error times how far the input's code
    lies from the training inputs' codes and how far its scaled samples lie from theirs
    (see :mod:`anomaly.model.code_memory`).

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
    error_metric : {"auto", "mae", "mse"}, default "auto"
        The score: the mean over an input's scaled values of their absolute (``"mae"``,
        the tutorial's) or squared (``"mse"``) differences from the reconstruction (see
        :mod:`anomaly.model.errors`). The threshold is mean + k x std of this score.
        ``"auto"``: the squared error when the score has the code's factor (see
        ``code_distance``), the absolute error without it, as measured best each way.
    code_distance : {"auto", "on", "off"}, default "auto"
        ``"on"``: the score is the error over its median on the training inputs, times the
        mean distance of the input's code to the nearest k-means centroids of the training
        inputs' codes, times that of its scaled samples to the centroids of theirs, each
        over its median (1 for a typical training input;
        :mod:`anomaly.model.code_memory`). ``"auto"``: so when a dense network is fitted
        on at least :data:`anomaly.choices.CODE_DISTANCE_MIN_BEATS` inputs (not all the
        same), the error alone otherwise. ``"on"`` needs the dense family. ``memory_``
        says which was used.
    noise_factor : float, default 0.0
        With a positive value, train as a denoising autoencoder: each epoch the inputs
        get fresh Gaussian noise of this standard deviation (in scaled units, clipped to
        [0, 1]) and the targets stay clean.
    epochs : int, default 200
        Most passes over the training traces.
    batch_size : int or "auto", default "auto"
        Traces per gradient step. ``"auto"``: 64 up to 6,400 training traces, then
        growing with them (:func:`anomaly.model.training.auto_batch_size`), which keeps a large set's epochs
        cheap in steps.
    max_inputs_seen : int or None, default 5_000_000
        Most traces passed through each network trained (epochs x training traces): a
        large training set trains fewer epochs (100,000 beats: 50), so the fit's time is
        bounded. Below 25,000 traces it does not bind at 200 epochs. It also bounds the
        first models of ``threshold_source="heldout-folds"``, all of them together.
        None: no bound.
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
    threshold_winsorise : int, default 0
        How many of the largest of those errors count as the largest of the others
        before mean + k x std (winsorised): with 1, no one beat, however high its score,
        moves the threshold. 0: every error as it is, the tutorial's rule. 1 steadied a
        model of many patients' threshold and flagged more abnormal and more normal beats,
        at a lower F1 patient by patient and at 50 training beats, so it is not the
        default (measured on every protocol: docs/benchmarks.md, stop 59).
    threshold_source : {"training", "heldout", "heldout-refit", "heldout-folds"}
        Default ``"heldout-folds"``. Whose scores set the threshold: ``"training"``, the
        training beats' (the network has fitted them, so their errors run low);
        ``"heldout"``, those of ``heldout_fraction`` of the beats, held out of training.
        ``"heldout-refit"``: a first model, trained without the held-out beats, sets the
        threshold from their errors; the model kept is then trained on every beat (two
        fits).
        ``"heldout-folds"``: every beat's score under one of ``round(1 /
        heldout_fraction)`` first models, each trained without its fold of the beats,
        sets it; the model kept is then trained on every beat (six fits), unless the
        first models would together see more than ``max_inputs_seen`` inputs (over 6,250
        beats at 200 epochs: then ``"heldout-refit"``'s). With fewer than 10 beats to
        hold out, the training beats' (``calibration_.source`` says which was used).
    heldout_fraction : float, default 0.2
        Share of the beats held out: by ``"heldout"`` and ``"heldout-refit"``, and in each
        fold of ``"heldout-folds"`` (five folds at 0.2).
    context : tuple of str, default ()
        Names of context values the last ``len(context)`` columns of each trace hold
        (a beat's RR context, :data:`anomaly.recordings.rhythm.RR_CONTEXT`). The network
        does not see them: they are blanked in its input, and it learns to predict them
        from the rest of the trace, so a beat of normal shape at an abnormal moment
        (a premature beat) is reconstructed with the rhythm of a normal one. Each context
        column is min-max scaled on its own. Dense family only.
    context_weight : float, default 0.25
        With ``context``, the share of the score the context carries: the score is
        ``(1 - context_weight)`` x the error of the trace plus ``context_weight`` x the
        error of the context (0.25 ranked MIT-BIH's beats better than 0.5, see
        docs/benchmarks.md).
    seed : int, default 0
        Seeds weight initialisation, shuffling and the validation split: two fits with
        the same seed and data give the same model and threshold.

    Attributes
    ----------
    threshold_ : float
        Scores above this are anomalies (``calibration_.threshold``).
    params_ : dict
        The parameters the model was fitted with (``get_params()`` at ``fit``; what
        ``save`` records and scoring uses, whatever ``set_params`` changed since).
    calibration_ : Calibration
        Where the threshold comes from: ``source`` (``"training"``, ``"heldout"``,
        ``"heldout-refit"`` or ``"heldout-folds"``, whichever was used), ``n``, ``mean``
        and ``std`` of the errors that set it, and after ``fit`` those ``errors`` (see
        :mod:`anomaly.model.threshold`).
    scaling_ : Scaling
        What an input holds and how it is scaled: ``input_shape``, ``n_samples`` (values
        per input without the context), the min-max scaling of the samples and of each
        context column (see :mod:`anomaly.model.scaling`).
    n_features_in_ : int
        Values per input the model was trained on (samples and context, pixels).
    input_shape_ : tuple of int
        Shape of one input, e.g. ``(140,)`` or ``(28, 28)``.
    train_errors_ : ndarray of shape (n_train,)
        After ``fit``: scores of the inputs the kept network trained on.
    memory_ : CodeMemory or None
        The centroids of the kept network's training codes and training samples, and the
        medians the score is scaled by, when the score uses the code's distance; None
        when it is the error.
    error_metric_ : {"mae", "mse"}
        The error the score is made of (``error_metric``, ``"auto"`` resolved).
    training_ : TrainingSummary
        How the fit went: ``rows``, ``epochs`` trained, ``epochs_planned`` (``epochs``,
        fewer when ``max_inputs_seen`` binds), ``batch_size`` (resolved),
        ``network_parameters``, ``fit_seconds`` and after ``fit`` Keras's ``history``.
    provenance_ : Provenance
        Where the training beats came from, as the model directory records it (empty
        after ``fit``; ``save`` records the provenance it is given).
    model_ : keras.Model
        Set by ``fit``, and by ``load`` with the Keras runtime.
    runtime_ : anomaly.model.runtimes.Runtime
        What runs the model forward when scoring: Keras after ``fit``, the runtime
        chosen by ``load`` after it (``runtime_.name`` is ``"keras"`` or ``"onnx"``).
    model_sha256_ : str
        After ``load``: the SHA-256 of the directory's ``model.keras``, which names the
        model in run reports.

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
        error_metric: str = "auto",
        code_distance: str = "auto",
        noise_factor: float = 0.0,
        epochs: int = 200,
        batch_size: int | str = "auto",
        max_inputs_seen: int | None = 5_000_000,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.0,
        patience: int = 30,
        threshold_k: float = 1.0,
        threshold_winsorise: int = 0,
        threshold_source: str = "heldout-folds",
        heldout_fraction: float = 0.2,
        context: tuple[str, ...] = (),
        context_weight: float = 0.25,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.model_options = model_options
        self.hidden_units = hidden_units
        self.loss = loss
        self.error_metric = error_metric
        self.code_distance = code_distance
        self.noise_factor = noise_factor
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_inputs_seen = max_inputs_seen
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.threshold_k = threshold_k
        self.threshold_winsorise = threshold_winsorise
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

    def builder_options(self) -> dict[str, Any]:
        """The keyword arguments the family's builder gets."""
        return _builder_options(with_python_numbers(self.get_params()))

    # -- fitting -----------------------------------------------------------------------

    def fit(self, traces: np.ndarray, y: None = None, *, verbose: int = 0,
            on_epoch: OnEpoch | None = None) -> "AutoencoderDetector":
        """Train on normal traces, then set the threshold from normal traces' errors.

        The steps: the parameters are checked; the scaling is fitted; the network is
        trained, once or more as ``threshold_source`` says, and the threshold set
        (:func:`anomaly.model.threshold.calibrate`).

        Parameters
        ----------
        traces : array-like of shape (n_traces, n_values) or (n_images, height, width)
            Normal inputs only (with ``context``, each trace's samples then its context).
        y : ignored
        verbose : int, default 0
            Keras's progress output (0 silent, 2 one line per epoch).
        on_epoch : callable, optional
            Called after each epoch with its 0-based number, the most epochs planned and
            the epoch's logs (``loss``, and ``val_loss`` with a validation fraction; with
            ``threshold_source="heldout-refit"``, ``fit``: ``"1/2"`` for the first model's
            epochs, ``"2/2"`` for the kept one's; ``"1/6"`` to ``"6/6"`` with
            ``"heldout-folds"``): a progress display.

        Returns
        -------
        self
        """
        # The fit reads these, checked and as Python's numbers, never the attributes.
        params = with_python_numbers(copy.deepcopy(self.get_params()))
        validate_params(params)
        traces = np.asarray(traces, dtype=np.float64)
        if not 2 <= traces.ndim <= 4 or len(traces) < 2:
            raise ValueError(
                f"expected at least 2 traces as a 2-D array (or images as a 3-D array), "
                f"got shape {traces.shape}"
            )
        if not np.isfinite(traces).all():
            raise ValueError("traces contain NaN or infinite values")
        started = time.perf_counter()
        scaling = Scaling.fit(traces, tuple(params["context"]))
        scaled = scaling.transform(traces)
        spec = NetworkSpec(params["model"], scaling.input_shape, _builder_options(params),
                           params["loss"], params["learning_rate"])
        uses_codes = uses_code_distance(params, traces)

        def train(rows: np.ndarray, stage: str | None) -> _Scorer:
            network = _train(spec, scaling, scaled[rows], params, _with_stage(on_epoch, stage),
                             verbose)
            return _Scorer.of(network, scaling, scaled[rows], params, uses_codes)

        # So that a large set's fit costs what it did with one fold, the first models of
        # heldout-folds may together see one fit's budget of inputs, no more.
        max_first_fit_rows = (None if params["max_inputs_seen"] is None
                              else params["max_inputs_seen"] // params["epochs"])
        fitted: Calibrated[_Scorer] = calibrate(
            train, lambda scorer, rows: scorer.scores(scaling, scaled[rows], params),
            len(scaled), source=params["threshold_source"], fraction=params["heldout_fraction"],
            seed=params["seed"], k=params["threshold_k"],
            winsorise=params["threshold_winsorise"],
            max_first_fit_rows=max_first_fit_rows)
        # Every fitted value is set at once, here: a fit that fails leaves none of them.
        self.params_ = params
        self.scaling_ = scaling
        self.model_ = fitted.network.network.model
        self.runtime_ = fitted.network.runtime
        self.memory_ = fitted.network.memory
        self.calibration_ = fitted.calibration
        self.train_errors_ = fitted.train_errors
        self.training_ = TrainingSummary.of(fitted.network.network, rows=len(traces),
                                            fit_seconds=time.perf_counter() - started)
        self.provenance_ = Provenance()
        self.__dict__.pop("model_sha256_", None)  # Not the model loaded before, if any.
        return self

    # -- scoring -----------------------------------------------------------------------

    def score(self, traces: np.ndarray) -> np.ndarray:
        """The score of each input, shape ``(n,)``: its reconstruction error
        (``error_metric``, in scaled units), times its code's and samples' distances with a
        code memory (``memory_``).

        Images may also be given flattened, one row of ``height * width`` values each.
        """
        scaled = self.scale(traces)
        return _scores(self.scaling_, scaled, self.runtime_, self.params_, self.memory_)

    def predict(self, traces: np.ndarray) -> np.ndarray:
        """1 for an anomaly (score above ``threshold_``), 0 for normal."""
        return (self.score(traces) > self.threshold_).astype(np.int8)

    def reconstruct(self, traces: np.ndarray) -> np.ndarray:
        """Reconstructions in the inputs' own units, shape ``(n, *input_shape_)``."""
        scaled = self.scale(traces)
        reconstructions = self.runtime_.reconstruct(self.scaling_.blank_context(scaled))
        return self.scaling_.inverse(reconstructions.astype(np.float64))

    def encode(self, traces: np.ndarray) -> np.ndarray:
        """Codes of the inputs (the code's mean for the variational family), ``(n, ...)``."""
        from .networks import encoder_of

        scaled = self.scale(traces)
        scaled = self.scaling_.blank_context(scaled)
        return encoder_of(self._keras_model()).predict(scaled, batch_size=INFERENCE_BATCH,
                                                       verbose=0)

    @property
    def code_size(self) -> int:
        """Numbers per code (2 for a code you can plot), from the encoder's output shape."""
        from .networks import code_size_of

        return code_size_of(self._keras_model())

    @property
    def score_name(self) -> str:
        """What the score is, in a few words: ``"mae"``, ``"mse"``, ``"mse x code
        distance x sample distance"`` (the resolved ``error_metric``, with the distances'
        factors if it has them), or ``"mse x code distance"`` (a memory of the codes
        alone)."""
        metric = self.error_metric_
        if self.memory_ is None:
            return metric
        if self.memory_.sample_centroids is None:
            return f"{metric} x code distance"
        return f"{metric} x code distance x sample distance"

    @property
    def score_description(self) -> str:
        """What the score is, in a sentence for people (what ``anomaly fit`` prints)."""
        error = f"the {ERROR_WORDS[self.error_metric_]} of the reconstruction"
        if self.scaling_.context:
            weight = self.params_["context_weight"]
            error += (f" (weighing the beat's samples {1 - weight:g} and its RR context "
                      f"{weight:g})")
        if self.memory_ is None:
            return error
        samples = ("" if self.memory_.sample_centroids is None else
                   " and the samples' distance from the training beats' samples")
        return (f"{error} times the code's distance from the training beats' codes{samples}, "
                "each over its training median")

    @property
    def error_metric_(self) -> str:
        """The error the score is made of, ``"mae"`` or ``"mse"``: ``error_metric`` with
        ``"auto"`` resolved by whether the score has the code's factor."""
        self._check_fitted()
        return error_metric_of(self.params_, self.memory_ is not None)

    @property
    def threshold_(self) -> float:
        """Scores above this are anomalies (``calibration_.threshold``)."""
        self._check_fitted()
        return self.calibration_.threshold

    @property
    def input_shape_(self) -> tuple[int, ...]:
        """Shape of one input (``scaling_.input_shape``)."""
        self._check_fitted()
        return self.scaling_.input_shape

    @property
    def n_features_in_(self) -> int:
        """Values per input (``scaling_.n_values``)."""
        self._check_fitted()
        return self.scaling_.n_values

    def scale(self, traces: np.ndarray) -> np.ndarray:
        """Inputs as the network takes them: shaped ``(n, *input_shape_)``, min-max
        scaled, float32 (see :class:`anomaly.model.scaling.Scaling`).

        Raises
        ------
        InputError
            Inputs of another shape, saying what was expected and what was got.
        """
        self._check_fitted()
        return self.scaling_.transform(self.scaling_.shaped(traces))

    def _keras_model(self):
        self._check_fitted()
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this detector was loaded with the {self.runtime_.name} "
                                 "runtime, which only reconstructs; load it with "
                                 "runtime='keras' to reach its encoder")
        return self.model_

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibration_"):
            raise NotFittedError(
                "this AutoencoderDetector is not fitted yet; call fit or load first"
            )

    # -- persistence -------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, *, provenance: Provenance | None = None,
             companions: tuple[str, ...] = ()) -> Path:
        """Write ``model.keras``, ``model.onnx`` and ``metadata.json`` into ``directory``,
        atomically.

        The directory appears complete or not at all (see :mod:`anomaly.model.directory`).
        An existing model directory is replaced; any other non-empty directory is refused.

        Parameters
        ----------
        directory : path
        provenance : Provenance, optional
            Where the training beats came from (for example
            ``Provenance.of_file("normal.csv")``, which records the file's SHA-256).
            Default ``provenance_``: none after ``fit``, the directory's after ``load``.
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
            parent cannot be written (see :func:`anomaly.model.directory.check_destination`).
        """
        from .directory import ModelRecord, write_model

        self._check_fitted()
        record = ModelRecord(self.params_, self.scaling_, self.calibration_, self.training_,
                             self.provenance_ if provenance is None else provenance,
                             code_memory=self.memory_)
        write_model(directory, self._keras_model(), record, companions=companions)
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
            What runs the model when scoring (see :mod:`anomaly.model.runtimes`):
            ``auto`` takes ``model.onnx`` when the directory has one, and imports no
            TensorFlow.

        Raises
        ------
        ModelError
            If the directory is missing or incomplete, the metadata is malformed or from
            a newer format, its parameters cannot be used or its threshold is not mean +
            k x std of its calibration, or a model file does not match its recorded hash
            or does not load.
        MissingDependencyError
            The Keras runtime in an installation without TensorFlow.
        """
        from .directory import METADATA_FILE, read_model
        from .runtimes import load_runtime

        record = read_model(directory)
        detector = detector_of(record, Path(directory) / METADATA_FILE)
        detector.runtime_ = load_runtime(directory, record, runtime)
        if detector.runtime_.name == "keras":
            detector.model_ = detector.runtime_.model
        detector.params_ = copy.deepcopy(detector.get_params())
        detector.scaling_, detector.calibration_ = record.scaling, record.calibration
        detector.memory_ = record.code_memory
        detector.training_, detector.provenance_ = record.training, record.provenance
        detector.model_sha256_ = record.model_sha256
        return detector


def detector_of(record: ModelRecord, source: Path) -> AutoencoderDetector:
    """An unfitted detector of a model directory's parameters, those a format did not
    record at their defaults, each checked as a fit checks it; else a ModelError naming
    ``source``."""
    unknown = sorted(set(record.params) - set(AutoencoderDetector._parameter_names()))
    if unknown:
        raise ModelError(f"{source}: bad detector parameters (unknown parameter "
                         f"{shortened(repr(unknown[0]))})")
    detector = AutoencoderDetector(**record.params)
    try:
        validate_params(detector.get_params())
    except ValueError as error:
        raise ModelError(f"{source}: bad detector parameters ({error})") from None
    return detector


def _builder_options(params: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments the family's builder gets, of a detector's parameters."""
    options = dict(DEFAULT_MODEL_OPTIONS[params["model"]])
    if params["model"] == "dense":
        options["hidden_units"] = tuple(params["hidden_units"])
    options.update(params["model_options"] or {})
    if params["model"] == "vae":
        options.setdefault("seed", params["seed"])
    return options


def _train(spec: NetworkSpec, scaling: Scaling, targets: np.ndarray, params: dict[str, Any],
           on_epoch: OnEpoch | None, verbose: int) -> TrainedNetwork:
    """A network trained on the scaled ``targets`` (their first ``validation_fraction``
    watched for early stopping instead), on the schedule the parameters give."""
    from .networks import keras
    from .training import train_network

    keras.utils.set_random_seed(params["seed"])
    validation = None
    n_validation = int(round(len(targets) * params["validation_fraction"]))
    if n_validation and len(targets) - n_validation >= 1:
        held = targets[:n_validation]
        validation, targets = (scaling.blank_context(held), held), targets[n_validation:]
    schedule = Schedule.of(len(targets), epochs=params["epochs"],
                           batch_size=params["batch_size"],
                           max_inputs_seen=params["max_inputs_seen"],
                           patience=params["patience"])
    return train_network(spec, targets, inputs=scaling.blank_context(targets),
                         validation=validation, schedule=schedule,
                         noise_factor=params["noise_factor"], seed=params["seed"],
                         on_epoch=on_epoch, verbose=verbose)


def _with_stage(on_epoch: OnEpoch | None, stage: str | None) -> OnEpoch | None:
    """``on_epoch`` with ``fit: stage`` added to the logs it gets (as it is without a
    stage)."""
    if on_epoch is None or stage is None:
        return on_epoch
    return lambda epoch, epochs, logs: on_epoch(epoch, epochs, {**logs, "fit": stage})


@dataclass(frozen=True)
class _Scorer:
    """A network trained by :meth:`AutoencoderDetector.fit`, with what scores by it: its
    Keras runtime and, with the code's distance, the memory of its training codes and
    samples."""

    network: TrainedNetwork
    runtime: Any
    memory: CodeMemory | None

    @classmethod
    def of(cls, network: TrainedNetwork, scaling: Scaling, trained_on: np.ndarray,
           params: dict[str, Any], uses_codes: bool) -> "_Scorer":
        """The scorer of ``network``, trained on the scaled inputs ``trained_on``."""
        runtime = _keras_runtime(network.model)
        if not uses_codes:
            return cls(network, runtime, None)
        from .networks import code_size_of

        errors, codes = _errors_and_codes(scaling, trained_on, runtime, params, True,
                                          code_size_of(network.model))
        return cls(network, runtime,
                   CodeMemory.fit(codes, errors, scaling.samples(trained_on),
                                  seed=params["seed"]))

    def scores(self, scaling: Scaling, scaled: np.ndarray, params: dict[str, Any]
               ) -> np.ndarray:
        return _scores(scaling, scaled, self.runtime, params, self.memory)


#: The errors a score is made of, in words.
ERROR_WORDS = {"mae": "mean absolute error", "mse": "mean squared error"}


def error_metric_of(params: dict[str, Any], uses_codes: bool) -> str:
    """The error a detector's score is made of: its ``error_metric``, ``"auto"`` resolved
    by whether the score has the code's factor (the squared error if so)."""
    if params["error_metric"] == "auto":
        return "mse" if uses_codes else "mae"
    return params["error_metric"]


def _errors_and_codes(scaling: Scaling, scaled: np.ndarray, runtime, params: dict[str, Any],
                      uses_codes: bool, code_size: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """The reconstruction errors of inputs scaled by ``scaling``, reconstructed by
    ``runtime``, as the parameters ``params`` say (``error_metric``, ``context_weight``)
    for a score with the code's factor or without (``uses_codes``), with their codes of
    ``code_size`` values if asked for (else None)."""
    inputs = scaling.blank_context(scaled)
    if code_size is None:
        reconstructions, codes = runtime.reconstruct(inputs), None
    else:
        reconstructions, codes = runtime.reconstruct_and_encode(inputs, code_size)
    errors = input_errors(scaled, reconstructions, metric=error_metric_of(params, uses_codes),
                          context_columns=len(scaling.context),
                          context_weight=params["context_weight"])
    return errors, codes


def _scores(scaling: Scaling, scaled: np.ndarray, runtime, params: dict[str, Any],
            memory: CodeMemory | None) -> np.ndarray:
    """The scores of scaled inputs: their errors, times their codes' and samples'
    distances with a ``memory``."""
    if memory is None:
        return _errors_and_codes(scaling, scaled, runtime, params, False)[0]
    errors, codes = _errors_and_codes(scaling, scaled, runtime, params, True, memory.code_size)
    return memory.scores(errors, codes, scaling.samples(scaled))


def _keras_runtime(model):
    from .runtimes.keras_runtime import KerasRuntime

    return KerasRuntime(model)
