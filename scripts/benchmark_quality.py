#!/usr/bin/env python
"""Detection quality on data the detector was not tuned on: methods x protocols.

Every method fits on normal beats only and is judged at its own label-free threshold;
anomaly is the positive class. Each protocol draws several train/test repeats; per
protocol (and group) the script prints, over the repeats, the mean ± sd of ROC-AUC and
F1, and for each method on how many repeats it beats LOF and beats PCA on both ROC-AUC
and F1 (strictly), with its mean fit seconds and epochs; on MIT-BIH, the mean recall of
V and of S beats over the repeats that have them.

Protocols (:data:`PROTOCOLS`):

- ``ecg5000-splits``: ECG5000, ``train_test_split(all 5,000 rows, test_size=0.2,
  random_state=r)`` for r in 100..109 (the TensorFlow tutorial's protocol, other splits);
  fit on the normal rows of the train part, score the whole test part.
- ``small-train``: 50, 100 and 300 normal beats drawn from the train part of split 100,
  5 draws each, scored on its test part; one group per size.
- ``mitdb-patient``: MIT-BIH, each non-paced record a repeat: fit on the N beats of its
  first 5 minutes, score its later beats (``benchmark_mitdb.py``'s patient-specific
  protocol, on the tool's own beats); records with fewer than 10 training beats or one
  class only in the test part are left out.
- ``mitdb-inter``: fit on DS1's N beats, score DS2's beats (one repeat per seed).
  Both MIT-BIH protocols train as ``anomaly fit`` does, on N beats outside unreadable
  stretches (since stop 58; on every N beat before, as ``benchmark_mitdb.py`` still
  does), and score every beat, those of unreadable stretches too (which ``anomaly score``
  scores but never flags).
- ``short-beats``: an ECG200-like set built from MIT-BIH, 10 draws: 4 records, 80 of
  their N beats to train, 400 other beats to test (half abnormal where they have enough),
  each beat resampled to 96 samples (:func:`short_beats`).
- ``fit-cost``: 2,000, 20,000 and 100,000 normal beats from the train part of split 100
  (the first 2,000 as they are; more drawn with replacement plus Gaussian noise of 0.01),
  scored on its test part: what the fit costs as the training set grows, and whether
  quality holds. One group per size.

Methods (:data:`METHODS`); the threshold is always mean + 1 x std of some normal beats'
errors (per-beat MAE in the detector's min-max-scaled units) unless said otherwise.
"Held-out" is one fifth of the normal training beats, drawn with the model seed, never
trained on; "the 4/5 model" is the detector fitted on the other four fifths.

- ``LOF``: LocalOutlierFactor(novelty=True, n_neighbors=min(20, n-1)), its own predict.
- ``PCA``: PCA-8 reconstruction MAE (components capped by n-1), threshold from its
  training errors (``benchmark_mitdb.ReconstructionBaseline``).
- ``defaults``: ``AutoencoderDetector()`` as is, threshold included;
  ``defaults-before-25``: with the score it had before issue 25 (the mean absolute error
  alone: ``code_distance="off"``, ``error_metric="mae"``), which ``defaults`` still is
  under 200 training beats. ``rr-context-0.25-before-25``: ``rr-context-0.25`` so.
  ``defaults`` has ``threshold_source="heldout-folds"`` since stop 56 (every beat's score
  under the 4/5 model that did not see it, five such models);
  ``defaults-before-folds`` and ``rr-context-0.25-before-folds`` keep the source it had
  before, ``heldout-refit`` (the 4/5 model's held-out fifth).
- ``rr-context``, ``rr-context-0.25``, ``rr-context-0.75`` (recordings only): the
  defaults on each beat followed by its RR context (``context=RR_CONTEXT``: the previous
  and next RR intervals over the local mean), which the network predicts from the beat's
  shape without seeing it; the context carries 0.5, 0.25 or 0.75 of the score.
  ``rr-early-0.25``: one-sided, only ``min(previous interval / local mean, 1)`` (how early
  the beat comes; a pause does not count), weight 0.25.
- ``fixed-epochs``: the fit schedule before issue 14 (batches of 64, every one of the
  ``epochs``: ``max_inputs_seen=None``), threshold from the training errors.
- ``budget-25k`` ... ``budget-250k``: ``max_inputs_seen`` of 25,000 to 250,000 (fewer
  epochs), held-out threshold.
- ``heldout``: the 4/5 model; threshold from the held-out errors.
- ``heldout-refit``: the defaults model (all beats), threshold = its training-error
  threshold times the 4/5 model's ratio (held-out threshold / training-error threshold).
- ``heldout-refit-k``: the defaults model, threshold = its training mean + k' x std, with
  k' = (held-out threshold - training mean) / training std of the 4/5 model.
- ``heldout-refit-direct``: the defaults model, threshold = the 4/5 model's held-out one
  (the detector's ``threshold_source="heldout-refit"``).
- ``oof5``: 5-fold cross-fitting; test score = mean of the 5 models' errors; threshold
  from the out-of-fold errors (each beat scored by the model that did not see it).
- ``small-net``: capacity from the beats trained on (:func:`capacity_for`), held-out
  threshold.
- ``ensemble3``, ``ensemble5``: 3 or 5 seeds of the 4/5 model, errors averaged,
  held-out threshold.
- ``denoise-0.02``, ``denoise-0.05``: denoising training, held-out threshold.
- ``early-stop-val``: validation_fraction 0.2, patience 10; threshold from the
  validation beats' errors.
- ``memae``: a memory-augmented autoencoder (Gong et al. 2019, :class:`MemoryModule`),
  held-out threshold.
- ``mse``: MSE training loss (still MAE scores), held-out threshold.
- ``score-mae``, ``score-mse``, ``score-z-abs``, ``score-z-sq``, ``score-code``,
  ``score-mae-x-code``, ``score-mse-x-code`` (issue 25): the detector's threshold rule
  before stop 56 (``heldout-refit``: the 4/5 model's held-out beats set mean + std, the
  model on every beat scores) on each candidate score of :class:`CandidateScores`, the same two
  models for all; with RR context on recordings (weight 0.25), as ``anomaly fit
  RECORDING`` does. ``score-mae`` is the detector's score before issue 25
  (``heldout-refit-direct`` without the context). ``score-...-every-fold``: the threshold
  from every fold's held-out beats (the detector's ``heldout-folds``).
- ``defaults-every-score``, ``defaults-top1``, ``defaults-winsor-0.1pct`` ... ``-2pct``,
  ``defaults-log`` and ``rr-context-0.25-...`` so: the same model as ``defaults``
  (``rr-context-0.25``), its threshold set by another rule from the same held-out scores
  (:data:`THRESHOLD_RULES`): mean + std of every score as it is (the detector's rule
  by default), with the largest score (the detector's ``threshold_winsorise=1``)
  or the largest 0.1% to 2% of them set to the largest of the others (winsorised: no beat
  among those moves the threshold), or mean + std of the scores' logarithms.
- ``heldout-squared``, ``oof5-squared``: as ``heldout`` and ``oof5`` with each beat's
  MAE squared before averaging and thresholding. The ranking is (nearly) the same; the
  squared errors' heavier tail puts mean + std at a higher quantile of the normal beats'
  errors, so this is a change of the threshold's effective k, not of the model.

The levers' models are detectors whose own threshold source is pinned to the training
beats (one fit each) and whose score is the error (``code_distance="off"``): the method
sets the threshold, from the scores it chooses. Models shared by several methods
(the 4/5 model, the model on all beats) are fitted once per repeat; each method's fit
seconds count every model it uses, as if run alone.

Usage::

    python scripts/benchmark_quality.py [--protocols ecg5000-splits,small-train]
        [--methods defaults,heldout,...] [--seeds 0] [--repeats N] [--json PATH]
    python scripts/benchmark_quality.py --tables-from a.json,b.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.model import AutoencoderDetector
from anomaly.model.errors import input_errors, reconstruction_error
from anomaly.model.threshold import Calibration, mean_plus_std_threshold, winsorise_largest
from anomaly.model.training import TrainingSummary
from anomaly.model.networks import keras
from anomaly.recordings.rhythm import RR_CONTEXT, rr_ratios

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_mitdb  # noqa: E402  (a sibling script, not a package)

ECG5000_SPLITS = tuple(range(100, 110))
SMALL_TRAIN_SPLIT = 100
SMALL_TRAIN_SIZES = (50, 100, 200, 300)
SMALL_TRAIN_DRAWS = 5
FIT_COST_SPLIT = 100
FIT_COST_SIZES = (2_000, 20_000, 100_000)
FIT_COST_JITTER = 0.01
#: Folds of the normal training beats; fold 0 is the held-out fifth.
N_FOLDS = 5
HELDOUT_FOLD = 0
PCA_COMPONENTS = 8
LOF_NEIGHBORS = 20
#: Patient-specific MIT-BIH: records with fewer N training beats are left out, as
#: ``benchmark_mitdb.patient_specific`` does.
MIN_PATIENT_TRAIN = 10
#: The short-beats protocol (:func:`short_beats`): draws, records per draw, N beats to
#: train on and beats to test per draw, samples per resampled beat (ECG200's 96).
SHORT_DRAWS = 10
SHORT_RECORDS = 4
SHORT_TRAIN = 80
SHORT_TEST = 400
SHORT_SAMPLES = 96


# ---------------------------------------------------------------------------------------
# Repeats and the models fitted on them
# ---------------------------------------------------------------------------------------
@dataclass
class Repeat:
    """One train/test draw of a protocol."""

    protocol: str
    group: str  # Rows of one table: "all", "n=50", ...
    name: str  # "split 100", "draw 3", a record name.
    train: np.ndarray  # Normal training beats, (n, samples).
    test: np.ndarray
    truth: np.ndarray  # True for the anomalies of ``test``.
    seed: int  # Seeds the models and the held-out fold.
    # Recordings only: each beat's RR context (rr_ratios), the test beats' AAMI classes.
    train_context: np.ndarray | None = None
    test_context: np.ndarray | None = None
    classes: np.ndarray | None = None


@keras.saving.register_keras_serializable(package="benchmark_quality")
class MemoryModule(keras.layers.Layer):
    """Memory addressing of MemAE (Gong et al. 2019, "Memorizing Normality to Detect
    Anomaly"): a code is replaced by a sparse convex combination of learnt slots.

    Attention ``w = softmax(z M^T)`` over the slots (the dot product of the authors'
    code), hard shrinkage ``w' = relu(w - lambda) w / (|w - lambda| + eps)``, L1
    renormalisation, output ``w' M``. Adds ``entropy_weight`` x the mean entropy of ``w'``
    to the model's loss, which pushes each code towards few slots.

    Parameters
    ----------
    slots : int, default 100
        Rows of the memory ``M``.
    shrink_threshold : float or None, default None
        ``lambda``; None means ``1 / slots``.
    entropy_weight : float, default 2e-4
    """

    def __init__(self, slots: int = 100, shrink_threshold: float | None = None,
                 entropy_weight: float = 2e-4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slots = slots
        self.shrink_threshold = shrink_threshold
        self.entropy_weight = entropy_weight

    def build(self, input_shape) -> None:
        code_size = int(input_shape[-1])
        bound = 1.0 / math.sqrt(code_size)
        self.memory = self.add_weight(shape=(self.slots, code_size), name="memory",
                                      initializer=keras.initializers.RandomUniform(-bound, bound))

    def call(self, codes):
        ops, epsilon = keras.ops, 1e-12
        shrink_threshold = self.shrink_threshold or 1.0 / self.slots
        weights = ops.softmax(ops.matmul(codes, ops.transpose(self.memory)), axis=-1)
        shifted = weights - shrink_threshold
        weights = ops.relu(shifted) * weights / (ops.abs(shifted) + epsilon)
        weights = weights / (ops.sum(weights, axis=-1, keepdims=True) + epsilon)
        entropy = -ops.sum(weights * ops.log(weights + epsilon), axis=-1)
        self.add_loss(self.entropy_weight * ops.mean(entropy))
        return ops.matmul(weights, self.memory)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "slots": self.slots,
                "shrink_threshold": self.shrink_threshold, "entropy_weight": self.entropy_weight}


def build_memory_autoencoder(input_length: int, *, hidden_units: tuple[int, ...] = (128, 64, 16),
                             slots: int = 100, entropy_weight: float = 2e-4):
    """The dense autoencoder of :func:`anomaly.model.networks.build_dense_autoencoder` (ReLU
    hidden layers, linear code, sigmoid output) with a MemAE memory after the code."""
    layers = keras.layers
    inputs = keras.Input(shape=(input_length,), name="trace")
    hidden = inputs
    for index, units in enumerate(hidden_units[:-1]):
        hidden = layers.Dense(units, activation="relu", name=f"encoder_{index}")(hidden)
    hidden = layers.Dense(hidden_units[-1], name="code")(hidden)
    hidden = MemoryModule(slots=slots, entropy_weight=entropy_weight, name="memory")(hidden)
    for index, units in enumerate(reversed(hidden_units[:-1])):
        hidden = layers.Dense(units, activation="relu", name=f"decoder_{index}")(hidden)
    outputs = layers.Dense(input_length, activation="sigmoid", name="reconstruction")(hidden)
    return keras.Model(inputs, outputs, name="memory_autoencoder")


class MemoryAutoencoderDetector:
    """A MemAE detector judged as :class:`AutoencoderDetector` is: min-max scaling with
    the training values' minimum and range, Adam, early stopping on the training loss
    with the best weights kept, score = per-beat MAE in scaled units, threshold
    ``mean + threshold_k * std`` of the training errors.

    Parameters
    ----------
    slots : int, default 100
        Memory slots.
    entropy_weight : float, default 2e-4
        Weight of the addressing entropy in the loss.
    hidden_units : tuple of int, default (128, 64, 16)
    loss : str, default "mae"
    epochs : int, default 200
    batch_size : int, default 64
    learning_rate : float, default 1e-3
    patience : int, default 30
    threshold_k : float, default 1.0
    seed : int, default 0

    Attributes
    ----------
    threshold_ : float
    calibration_ : anomaly.model.threshold.Calibration
        Of the training beats' errors.
    scale_min_, scale_range_ : float
    training_ : anomaly.model.training.TrainingSummary
    model_ : keras.Model
    """

    def __init__(self, *, slots: int = 100, entropy_weight: float = 2e-4,
                 hidden_units: tuple[int, ...] = (128, 64, 16), loss: str = "mae",
                 epochs: int = 200, batch_size: int = 64, learning_rate: float = 1e-3,
                 patience: int = 30, threshold_k: float = 1.0, seed: int = 0) -> None:
        self.slots = slots
        self.entropy_weight = entropy_weight
        self.hidden_units = hidden_units
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.threshold_k = threshold_k
        self.seed = seed

    def fit(self, traces: np.ndarray) -> "MemoryAutoencoderDetector":
        """Train on normal traces of shape ``(n, samples)``; set the threshold."""
        keras.utils.set_random_seed(self.seed)
        started = time.perf_counter()
        traces = np.asarray(traces, dtype=np.float64)
        self.scale_min_ = float(traces.min())
        self.scale_range_ = (float(traces.max()) - self.scale_min_) or 1.0
        scaled = self._scale(traces)
        self.model_ = build_memory_autoencoder(traces.shape[1], hidden_units=self.hidden_units,
                                               slots=self.slots,
                                               entropy_weight=self.entropy_weight)
        self.model_.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=self.loss)
        history = self.model_.fit(
            scaled, scaled, batch_size=self.batch_size, epochs=self.epochs, shuffle=True,
            callbacks=[keras.callbacks.EarlyStopping(monitor="loss", patience=self.patience,
                                                     restore_best_weights=True)],
            verbose=0)
        self.calibration_ = Calibration.of("training", self._errors_of_scaled(scaled),
                                           self.threshold_k)
        self.threshold_ = self.calibration_.threshold
        self.training_ = TrainingSummary(len(traces), len(history.history["loss"]),
                                         fit_seconds=time.perf_counter() - started)
        return self

    def score(self, traces: np.ndarray) -> np.ndarray:
        """Per-beat MAE of the reconstruction in scaled units, shape ``(n,)``."""
        return self._errors_of_scaled(self._scale(np.asarray(traces, dtype=np.float64)))

    def _scale(self, traces: np.ndarray) -> np.ndarray:
        return ((traces - self.scale_min_) / self.scale_range_).astype(np.float32)

    def _errors_of_scaled(self, scaled: np.ndarray) -> np.ndarray:
        return reconstruction_error(scaled, self.model_.predict_on_batch(scaled)).astype(np.float64)


class Models:
    """The models fitted on one repeat's normal training beats, each fitted once however
    many methods use it.

    Parameters
    ----------
    repeat : Repeat
    """

    def __init__(self, repeat: Repeat) -> None:
        self.repeat = repeat
        order = np.random.default_rng(repeat.seed).permutation(len(repeat.train))
        self.folds = np.array_split(order, N_FOLDS)
        self._fitted: dict[tuple, AutoencoderDetector] = {}
        self._candidates: dict[int, CandidateScores] = {}
        self._test_scores: dict[int, np.ndarray] = {}

    def fit(self, *, left_out: int | None = None, seed_offset: int = 0, memae: bool = False,
            rr: str | None = None, **settings: Any) -> AutoencoderDetector:
        """The detector with ``settings``, seeded ``repeat.seed + seed_offset``, fitted on
        every training beat but those of fold ``left_out`` (None: on all of them); with
        ``rr`` (a name of :data:`RR_FEATURES`), on the beats followed by that RR context."""
        # A lever's threshold is the method's to set, from the errors it chooses, and its
        # score is the error (the levers were measured on it before the code's distance).
        if not memae:
            settings = {"threshold_source": "training", "code_distance": "off", **settings}
        # Settings equal to the defaults are dropped, so that equal models share a key.
        defaults = AutoencoderDetector().get_params()
        settings = {name: value for name, value in settings.items() if value != defaults[name]}
        key = (left_out, seed_offset, memae, rr, tuple(sorted(settings.items())))
        if key not in self._fitted:
            train = self.repeat.train
            if rr is not None:
                names, features = RR_FEATURES[rr]
                train = np.hstack([train, features(self.repeat.train_context)])
                settings = {**settings, "context": names}
            if left_out is not None:
                train = np.delete(train, self.folds[left_out], axis=0)
            kind = MemoryAutoencoderDetector if memae else AutoencoderDetector
            self._fitted[key] = kind(seed=self.repeat.seed + seed_offset, **settings).fit(train)
        return self._fitted[key]

    def candidates(self, model: AutoencoderDetector, train: np.ndarray) -> "CandidateScores":
        """The candidate scores of ``model``, fitted on ``train`` (built once)."""
        if id(model) not in self._candidates:
            self._candidates[id(model)] = CandidateScores(model, train)
        return self._candidates[id(model)]

    def test_scores(self, model: AutoencoderDetector, rr: str | None = None) -> np.ndarray:
        """``model``'s scores of the test beats (followed by the ``rr`` context it was
        fitted with), computed once."""
        if id(model) not in self._test_scores:
            test = self.repeat.test
            if rr is not None:
                test = np.hstack([test, RR_FEATURES[rr][1](self.repeat.test_context)])
            self._test_scores[id(model)] = model.score(test)
        return self._test_scores[id(model)]

    def fold(self, index: int) -> np.ndarray:
        """The training beats of fold ``index``."""
        return self.repeat.train[self.folds[index]]


# ---------------------------------------------------------------------------------------
# Methods: Models -> Outcome
# ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """A method's test scores and threshold, and what its fit cost."""

    scores: np.ndarray
    threshold: float
    fit_seconds: float
    epochs: float | None = None
    score_seconds: float | None = None


def outcome(scores: np.ndarray, threshold: float, fitted: list[AutoencoderDetector]) -> Outcome:
    return Outcome(scores, float(threshold),
                   sum(model.training_.fit_seconds for model in fitted),
                   float(np.mean([model.training_.epochs for model in fitted])))


def timed(fit: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fit()
    return result, time.perf_counter() - started


def lof(models: Models) -> Outcome:
    from sklearn.neighbors import LocalOutlierFactor

    train = models.repeat.train
    fitted, seconds = timed(lambda: LocalOutlierFactor(
        novelty=True, n_neighbors=min(LOF_NEIGHBORS, len(train) - 1)).fit(train))
    # predict flags score_samples < offset_, that is -score_samples > -offset_.
    scores, score_seconds = timed(lambda: -fitted.score_samples(models.repeat.test))
    return Outcome(scores, -fitted.offset_, seconds, score_seconds=score_seconds)


def pca(models: Models) -> Outcome:
    fitted, seconds = timed(lambda: benchmark_mitdb.ReconstructionBaseline(PCA_COMPONENTS)
                            .fit(models.repeat.train))
    scores, score_seconds = timed(lambda: fitted.score(models.repeat.test))
    return Outcome(scores, fitted.mean + fitted.std, seconds, score_seconds=score_seconds)


def shipped(**settings: Any) -> dict[str, Any]:
    """``settings`` over the detector's own threshold source and score, which
    :meth:`Models.fit` pins for the levers."""
    own = AutoencoderDetector()
    return {"threshold_source": own.threshold_source, "code_distance": own.code_distance,
            **settings}


def detector(**settings: Any) -> Callable[[Models], Outcome]:
    """The detector as it ships, with ``settings``: its own score and threshold."""

    def method(models: Models) -> Outcome:
        model = models.fit(**shipped(**settings))
        return outcome(model.score(models.repeat.test), model.threshold_, [model])

    return method


#: The score the detector had before issue 25: the mean absolute error alone.
BEFORE_ISSUE_25 = {"code_distance": "off", "error_metric": "mae"}
#: The threshold source the detector had before every fold's: one held-out fifth's.
BEFORE_FOLDS = {"threshold_source": "heldout-refit"}


#: RR context variants: name -> (context names, function of the (n, 2) RR_CONTEXT).
RR_FEATURES: dict[str, tuple[tuple[str, ...], Callable[[np.ndarray], np.ndarray]]] = {
    "ratios": (RR_CONTEXT, lambda ratios: ratios),
    # One-sided: only how early a beat comes counts (a pause before or after it does not).
    "early": (("rr_prev_early",), lambda ratios: np.minimum(ratios[:, :1], 1.0)),
}


def rr_context(features: str = "ratios", **settings: Any) -> Callable[[Models], Outcome | None]:
    """The defaults with the beats' RR context (``features`` of :data:`RR_FEATURES`) and
    ``settings``; None on beats without RR context."""

    def method(models: Models) -> Outcome | None:
        repeat = models.repeat
        if repeat.train_context is None:
            return None
        model = models.fit(rr=features, **shipped(**settings))
        return outcome(models.test_scores(model, features), model.threshold_, [model])

    return method


def winsorised_share(share: float) -> Callable[[np.ndarray], float]:
    """mean + std of the scores with their largest ``max(1, ceil(share x n))`` set to the
    largest of the others: no beat among those, however high, moves the threshold."""
    return lambda scores: mean_plus_std_threshold(
        winsorise_largest(scores, max(1, math.ceil(share * len(scores)))))


def log_scale(scores: np.ndarray) -> float:
    """mean + std of the scores' logarithms, back on the scores' scale (the geometric mean
    times the geometric standard deviation)."""
    logs = np.log(np.maximum(np.asarray(scores, dtype=np.float64), 1e-12))
    return float(np.exp(mean_plus_std_threshold(logs)))


#: Threshold rules measured on the detector's own held-out scores (its calibration's
#: errors): name -> function of those scores.
THRESHOLD_RULES: dict[str, Callable[[np.ndarray], float]] = {
    "every-score": mean_plus_std_threshold,  # The detector's default.
    "top1": winsorised_share(0.0),  # The detector's threshold_winsorise=1.
    **{f"winsor-{share * 100:g}pct": winsorised_share(share)
       for share in (0.001, 0.005, 0.01, 0.02)},
    "log": log_scale,
}


def rethresholded(rule: str, rr: bool = False) -> Callable[[Models], Outcome | None]:
    """The detector as it ships (``rr``: on recordings' beats with their RR context at a
    weight of 0.25, as ``rr-context-0.25``; None on beats without it), its threshold set by
    ``rule`` of :data:`THRESHOLD_RULES` from the same held-out scores as its own. The model
    is ``defaults``' (or ``rr-context-0.25``'s), fitted once."""

    def method(models: Models) -> Outcome | None:
        if rr and models.repeat.train_context is None:
            return None
        features = "ratios" if rr else None
        model = models.fit(rr=features, **shipped(**({"context_weight": 0.25} if rr else {})))
        threshold = THRESHOLD_RULES[rule](model.calibration_.errors)
        return outcome(models.test_scores(model, features), threshold, [model])

    return method


def fixed_epochs(models: Models) -> Outcome:
    model = models.fit(batch_size=64, max_inputs_seen=None)
    return outcome(model.score(models.repeat.test), model.threshold_, [model])


def averaged_heldout(models: Models, seeds: int = 1, power: int = 1,
                     **settings: Any) -> Outcome:
    """Models fitted with ``seeds`` seeds on the 4/5 of the beats, errors (raised to
    ``power``) averaged; threshold from the held-out fifth's averaged errors."""
    fitted = [models.fit(left_out=HELDOUT_FOLD, seed_offset=offset, **settings)
              for offset in range(seeds)]
    heldout = np.mean([model.score(models.fold(HELDOUT_FOLD)) ** power for model in fitted],
                      axis=0)
    scores = np.mean([model.score(models.repeat.test) ** power for model in fitted], axis=0)
    return outcome(scores, mean_plus_std_threshold(heldout), fitted)


def heldout(seeds: int = 1, power: int = 1, **settings: Any) -> Callable[[Models], Outcome]:
    """The method :func:`averaged_heldout` with these seeds, power and settings."""
    return lambda models: averaged_heldout(models, seeds, power, **settings)


def refit(transfer: str) -> Callable[[Models], Outcome]:
    """The defaults model with a threshold carried over from the 4/5 model's held-out
    errors: ``"ratio"``, ``"k"`` or ``"direct"`` (see the module docstring)."""

    def method(models: Models) -> Outcome:
        first, full = models.fit(left_out=HELDOUT_FOLD), models.fit()
        heldout_threshold = mean_plus_std_threshold(first.score(models.fold(HELDOUT_FOLD)))
        if transfer == "ratio":
            threshold = full.threshold_ * heldout_threshold / first.threshold_
        elif transfer == "k":
            k = (heldout_threshold - first.calibration_.mean) / first.calibration_.std
            threshold = full.calibration_.mean + k * full.calibration_.std
        else:
            threshold = heldout_threshold
        return outcome(full.score(models.repeat.test), threshold, [first, full])

    return method


def out_of_fold(power: int = 1) -> Callable[[Models], Outcome]:
    """Cross-fitting: one model per fold, fitted on the other folds; a test beat's score
    is the mean of their errors (raised to ``power``), the threshold comes from each
    training beat's error under the model that did not see it."""

    def method(models: Models) -> Outcome:
        fitted = [models.fit(left_out=fold) for fold in range(N_FOLDS)]
        errors = np.concatenate([model.score(models.fold(fold)) ** power
                                 for fold, model in enumerate(fitted)])
        scores = np.mean([model.score(models.repeat.test) ** power for model in fitted], axis=0)
        return outcome(scores, mean_plus_std_threshold(errors), fitted)

    return method


def capacity_for(n_beats: int) -> tuple[int, ...]:
    """Encoder widths for a network trained on ``n_beats`` beats: fewer weights for few
    beats (the default 128-64-16 has about 50,000)."""
    if n_beats < 300:
        return (32, 16, 8)
    if n_beats < 1000:
        return (64, 32, 16)
    return (128, 64, 16)


def small_net(models: Models) -> Outcome:
    trained_on = len(models.repeat.train) - len(models.folds[HELDOUT_FOLD])
    return averaged_heldout(models, hidden_units=capacity_for(trained_on))


def early_stop_val(models: Models) -> Outcome:
    fraction, train = 0.2, models.repeat.train
    model = models.fit(validation_fraction=fraction, patience=10)
    # The detector's own validation split (AutoencoderDetector.fit draws it this way).
    order = np.random.default_rng(model.seed).permutation(len(train))
    validation = train[order[:int(round(len(train) * fraction))]]
    return outcome(model.score(models.repeat.test),
                   mean_plus_std_threshold(model.score(validation)), [model])


# ---------------------------------------------------------------------------------------
# Scores beyond the mean absolute error (issue 25), on the detector's own models
# ---------------------------------------------------------------------------------------
#: Neighbours a distance averages, among training codes or samples (:class:`CandidateScores`).
NEIGHBOURS = 5


class CandidateScores:
    """The candidate scores of one fitted model, with what they need of the beats it was
    trained on.

    Each is a function of a beat's scaled values, their reconstruction and its code (the
    dense network's ``code`` layer):

    - ``mae``, ``mse``: the detector's ``error_metric`` (:func:`input_errors`, the
      detector's own function);
    - ``z-abs``, ``z-sq``: per-timestep standardised errors: each sample's absolute
      (squared) error over its mean on the training beats, averaged, times the mean
      training error to keep the units; a context, if any, weighed in as ``mae``/``mse``;
    - ``code``: mean distance of the code to its :data:`NEIGHBOURS` nearest training
      codes (a training beat's own code left out), over its median on the training beats;
    - ``mae-x-code``, ``mse-x-code``: the product of the error and ``code``, each over its
      median on the training beats (1 for a typical training beat);
    - ``mae-x-code-1000``, ``mae-x-code-256c``: as ``mae-x-code`` with a smaller memory
      (what scoring would search): 1,000 training codes drawn at random, or 256 k-means
      centroids of them (:data:`MEMORIES`);
    - ``mae-x-input``: as ``mae-x-code`` with the neighbours of the beat's scaled samples
      among the training beats' (no autoencoder in that term: a kNN detector's);
      ``mse-x-input``, ``mse-x-input-256c`` the same with the squared error, the second
      among 256 k-means centroids of the samples;
    - ``mse-x-code-256c-x-input-256c`` (``-64c``, ``-32c``): the squared error times both
      distances, each over its training median: the code's among 256 centroids, the
      samples' among 256 (64, 32).

    Parameters
    ----------
    model : AutoencoderDetector
        Fitted (its ``error_metric`` is not used: the network does not depend on it).
    train : ndarray
        The traces it was fitted on (with their context columns, if any).
    """

    NAMES = ("mae", "mse", "z-abs", "z-sq", "code", "mae-x-code", "mse-x-code",
             "mae-x-code-1000", "mae-x-code-256c", "mse-x-code-256c", "mae-x-input",
             "mse-x-input", "mse-x-input-256c", "mse-x-code-256c-x-input-256c",
             "mse-x-code-256c-x-input-64c", "mse-x-code-256c-x-input-32c")
    #: What each neighbour term searches: the training beats' codes or their scaled
    #: samples (``points``); all of them (``size`` None), at most ``size`` drawn at random,
    #: or (``centroids``) ``size`` k-means centroids of them.
    MEMORIES = {"code": ("codes", None, False), "code-1000": ("codes", 1000, False),
                "code-256c": ("codes", 256, True), "input": ("samples", None, False),
                "input-256c": ("samples", 256, True), "input-64c": ("samples", 64, True),
                "input-32c": ("samples", 32, True)}
    ERRORS = ("mae", "mse")

    def __init__(self, model: AutoencoderDetector, train: np.ndarray) -> None:
        started = time.perf_counter()
        self.model = model
        self.context_columns = len(model.scaling_.context)
        scaled, reconstructed = self._reconstructed(train)
        difference = self._samples(scaled - reconstructed)
        self.timestep = {"mae": np.abs(difference).mean(axis=0) + 1e-12,
                         "mse": (difference ** 2).mean(axis=0) + 1e-12}
        self.medians = {metric: float(np.median(self._error(scaled, reconstructed, metric)))
                        for metric in ("mae", "mse")}
        points = {"codes": model.encode(train).astype(np.float64),
                  "samples": self._samples(scaled)}
        self.memories = {name: self._memory(points[kind], size, centroids)
                         for name, (kind, size, centroids) in self.MEMORIES.items()}
        self.seconds = time.perf_counter() - started

    def _memory(self, points: np.ndarray, size: int | None, centroids: bool):
        """A neighbour search over ``points`` (or what ``size`` and ``centroids`` keep of
        them) and the median of the training beats' distances (a beat in the memory left
        out)."""
        from scipy.spatial import cKDTree
        from sklearn.cluster import KMeans

        member = np.ones(len(points), dtype=bool)
        if centroids:
            kept = KMeans(min(size, len(points) // 2), n_init=1,
                          random_state=0).fit(points).cluster_centers_
            member[:] = False
        elif size is not None and len(points) > size:
            chosen = np.random.default_rng(0).permutation(len(points))[:size]
            member[:] = False
            member[chosen] = True
            kept = points[chosen]
        else:
            kept = points
        tree = cKDTree(kept)
        neighbours = min(NEIGHBOURS, len(kept) - 1)
        distances, _ = tree.query(points, k=neighbours + 1)
        # A beat in the memory is its own nearest neighbour.
        own = np.where(member[:, None], distances[:, 1:], distances[:, :-1])
        return tree, neighbours, float(np.median(own.mean(axis=1)))

    def __call__(self, traces: np.ndarray, name: str) -> np.ndarray:
        """The scores ``name`` of ``traces``, shape ``(n,)``."""
        scaled, reconstructed = self._reconstructed(traces)
        if name in ("mae", "mse"):
            return self._error(scaled, reconstructed, name)
        if name.startswith("z-"):
            return self._standardised(scaled, reconstructed, "mae" if name == "z-abs" else "mse")
        first, *rest = name.split("-x-")
        error, memories = (first, rest) if first in self.ERRORS else (None, [first, *rest])
        unknown = [term for term in memories if term not in self.MEMORIES]
        if unknown:
            raise ValueError(f"unknown score term {unknown[0]!r} in {name!r}; expected "
                             f"{', '.join(self.ERRORS)} then any of {', '.join(self.MEMORIES)}")
        score = (1.0 if error is None
                 else self._error(scaled, reconstructed, error) / self.medians[error])
        for memory in memories:
            tree, neighbours, median = self.memories[memory]
            points = (self._samples(scaled) if self.MEMORIES[memory][0] == "samples"
                      else self.model.encode(traces).astype(np.float64))
            distances, _ = tree.query(points, k=neighbours)
            # Over its median on the training beats: two networks' codes have unrelated
            # scales, and the threshold is carried from the first model to the second.
            score = score * distances.reshape(len(points), -1).mean(axis=1) / median
        return score

    def _reconstructed(self, traces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scaled = self.model.scale(traces)
        reconstructed = self.model.runtime_.reconstruct(self.model.scaling_.blank_context(scaled))
        return scaled, reconstructed.astype(np.float64)

    def _samples(self, values: np.ndarray) -> np.ndarray:
        return values[:, :values.shape[1] - self.context_columns]

    def _error(self, scaled: np.ndarray, reconstructed: np.ndarray, metric: str) -> np.ndarray:
        return input_errors(scaled, reconstructed, metric=metric,
                            context_columns=self.context_columns,
                            context_weight=self.model.params_["context_weight"])

    def _standardised(self, scaled: np.ndarray, reconstructed: np.ndarray, metric: str
                      ) -> np.ndarray:
        difference = np.abs(self._samples(scaled - reconstructed))
        scale = self.timestep[metric]
        per_timestep = difference ** (2 if metric == "mse" else 1) / scale
        standardised = per_timestep.mean(axis=1) * scale.mean()
        if not self.context_columns:
            return standardised
        context = input_errors(scaled[:, -self.context_columns:],
                               reconstructed[:, -self.context_columns:], metric=metric)
        weight = self.model.params_["context_weight"]
        return (1 - weight) * standardised + weight * context


def candidate_score(name: str, *, every_fold: bool = False) -> Callable[[Models], Outcome]:
    """The detector's threshold rule before stop 56 (heldout-refit: the 4/5 model's held-out
    beats set it, the model on every beat scores) on the candidate score ``name``; with
    RR context on recordings, as ``anomaly fit RECORDING`` does (weight 0.25). Fit
    seconds include what the score keeps of the training beats; score seconds are those
    of the test beats. With ``every_fold``, the threshold is mean + std of every training
    beat's score under the model of the other four fifths (five such models, each score
    over that model's own training medians), rather than of one fifth's; its fit seconds
    and epochs are those of the six fits."""

    def method(models: Models) -> Outcome:
        repeat = models.repeat
        settings = ({"rr": "ratios", "context_weight": 0.25}
                    if repeat.train_context is not None else {})
        train, test = repeat.train, repeat.test
        if settings:
            features = RR_FEATURES["ratios"][1]
            train = np.hstack([train, features(repeat.train_context)])
            test = np.hstack([test, features(repeat.test_context)])
        folds = range(N_FOLDS) if every_fold else [HELDOUT_FOLD]
        parts = [models.fit(left_out=fold, **settings) for fold in folds]
        of_parts = [models.candidates(part, np.delete(train, models.folds[fold], axis=0))
                    for part, fold in zip(parts, folds)]
        heldout_scores = np.concatenate([of_part(train[models.folds[fold]], name)
                                         for of_part, fold in zip(of_parts, folds)])
        full = models.fit(**settings)
        of_full = models.candidates(full, train)
        started = time.perf_counter()
        scores = of_full(test, name)
        fitted = list(zip(parts + [full], of_parts + [of_full]))
        return Outcome(scores, mean_plus_std_threshold(heldout_scores),
                       sum(model.training_.fit_seconds + candidates.seconds
                           for model, candidates in fitted),
                       float(np.mean([model.training_.epochs for model, _ in fitted])),
                       time.perf_counter() - started)

    return method


#: Method name -> function of the repeat's models. LOF and PCA run in every run.
METHODS: dict[str, Callable[[Models], Outcome]] = {
    "LOF": lof,
    "PCA": pca,
    "defaults": detector(),
    "defaults-before-25": detector(**BEFORE_ISSUE_25),
    "defaults-before-folds": detector(**BEFORE_FOLDS),
    "rr-context": rr_context(),
    "rr-context-0.25": rr_context(context_weight=0.25),
    "rr-context-0.25-before-25": rr_context(context_weight=0.25, **BEFORE_ISSUE_25),
    "rr-context-0.25-before-folds": rr_context(context_weight=0.25, **BEFORE_FOLDS),
    "rr-context-0.75": rr_context(context_weight=0.75),
    "rr-early-0.25": rr_context("early", context_weight=0.25),
    "fixed-epochs": fixed_epochs,
    "heldout": heldout(),
    "heldout-refit": refit("ratio"),
    "heldout-refit-k": refit("k"),
    "heldout-refit-direct": refit("direct"),
    "early-stop-val": early_stop_val,
    "small-net": small_net,
    "denoise-0.02": heldout(noise_factor=0.02),
    "denoise-0.05": heldout(noise_factor=0.05),
    "mse": heldout(loss="mse"),
    "memae": heldout(memae=True),
    "ensemble3": heldout(seeds=3),
    "ensemble5": heldout(seeds=5),
    "oof5": out_of_fold(),
    "heldout-squared": heldout(power=2),
    "oof5-squared": out_of_fold(power=2),
    **{f"budget-{budget // 1000}k": heldout(max_inputs_seen=budget)
       for budget in (25_000, 50_000, 100_000, 250_000)},
    **{f"score-{name}": candidate_score(name) for name in CandidateScores.NAMES},
    **{f"score-{name}-every-fold": candidate_score(name, every_fold=True)
       for name in ("mse-x-code-256c", "mse-x-code-256c-x-input-32c")},
    **{f"defaults-{rule}": rethresholded(rule) for rule in THRESHOLD_RULES},
    **{f"rr-context-0.25-{rule}": rethresholded(rule, rr=True) for rule in THRESHOLD_RULES},
}
BASELINES = ("LOF", "PCA")
#: What a result row is the result of.
ROW_KEY = ("protocol", "group", "repeat", "seed", "method")


# ---------------------------------------------------------------------------------------
# Protocols: options -> repeats
# ---------------------------------------------------------------------------------------
@functools.cache
def ecg5000() -> tuple[np.ndarray, np.ndarray]:
    """ECG5000's beats and truth (True for the abnormal classes 2-5)."""
    from anomaly import read_beats
    from anomaly.datasets import find_ecg5000

    path = find_ecg5000()
    if path is None:
        raise SystemExit("ECG5000 not found: set ANOMALY_DATA_DIR")
    beats = read_beats(path, label_column="last", normal_label="1")
    return beats.values, beats.truth.astype(bool)


def ecg5000_split(random_state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECG5000's tutorial-style split: train normal beats, test beats, test truth."""
    from sklearn.model_selection import train_test_split

    train, test, train_truth, truth = train_test_split(
        *ecg5000(), test_size=0.2, random_state=random_state)
    return train[~train_truth], test, truth


def ecg5000_splits(seeds: list[int], repeats: int | None) -> Iterator[Repeat]:
    for random_state in ECG5000_SPLITS[:repeats]:
        train, test, truth = ecg5000_split(random_state)
        for seed in seeds:
            yield Repeat("ecg5000-splits", "all", f"split {random_state}", train, test, truth, seed)


def small_train(seeds: list[int], repeats: int | None) -> Iterator[Repeat]:
    pool, test, truth = ecg5000_split(SMALL_TRAIN_SPLIT)
    for size in SMALL_TRAIN_SIZES:
        for draw in range(SMALL_TRAIN_DRAWS)[:repeats]:
            chosen = np.random.default_rng(draw).choice(len(pool), size, replace=False)
            for seed in seeds:
                yield Repeat("small-train", f"n={size}", f"draw {draw}", pool[chosen], test,
                             truth, seed)


def mitdb_beats(records: list[str]) -> dict:
    data = benchmark_mitdb.default_data_dir()
    if data is None:
        raise SystemExit("MIT-BIH not found: set ANOMALY_DATA_DIR")
    beats, seconds = benchmark_mitdb.recording_beats(data, records)
    print(f"MIT-BIH: {len(records)} records segmented in {seconds:.0f} s", file=sys.stderr)
    return beats


def mitdb_patient(seeds: list[int], repeats: int | None) -> Iterator[Repeat]:
    """The selection of ``benchmark_mitdb.patient_specific``: N beats of the first
    TRAIN_SECONDS to train (those outside unreadable stretches, where that script takes
    every one), later beats matched to a reference beat to test."""
    records = benchmark_mitdb.record_names(benchmark_mitdb.default_data_dir())[:repeats]
    beats = mitdb_beats(records)
    for record in records:
        found, _ = beats[record]
        seconds = found.sample / found.fs
        trained = (seconds < benchmark_mitdb.TRAIN_SECONDS) & normal_readable(found)
        train = found.values[trained]
        tested = (seconds >= benchmark_mitdb.TRAIN_SECONDS) & (found.labels != "-")
        truth = found.labels[tested] != "N"
        context = rr_context_of(found)
        if len(train) < MIN_PATIENT_TRAIN or truth.all() or not truth.any():
            print(f"  {record}: left out ({len(train)} N training beats, "
                  f"{int(truth.sum())} of {len(truth)} test beats abnormal)", file=sys.stderr)
            continue
        for seed in seeds:
            yield Repeat("mitdb-patient", "records", record, train, found.values[tested],
                         truth, seed, context[trained], context[tested], found.labels[tested])


def mitdb_inter(seeds: list[int], repeats: int | None) -> Iterator[Repeat]:
    """The selection of ``benchmark_mitdb.inter_patient``: DS1's N beats to train (those
    outside unreadable stretches, where that script takes every one), every beat of DS2
    matched to a reference beat to test."""
    beats = mitdb_beats(sorted(benchmark_mitdb.DS1 + benchmark_mitdb.DS2))

    def joined(records: list[str], chosen: Callable) -> tuple[np.ndarray, ...]:
        """Values, RR context and labels of the beats ``chosen(found)`` selects."""
        parts = [(found.values[keep], rr_context_of(found)[keep], found.labels[keep])
                 for found in (beats[record][0] for record in records)
                 for keep in [chosen(found)]]
        return tuple(np.concatenate(column) for column in zip(*parts))

    train, train_context, _ = joined(benchmark_mitdb.DS1, normal_readable)
    test, test_context, labels = joined(benchmark_mitdb.DS2, lambda found: found.labels != "-")
    for seed in seeds:
        yield Repeat("mitdb-inter", "DS1 -> DS2", "DS2", train, test, labels != "N", seed,
                     train_context, test_context, labels)


def short_beats(seeds: list[int], repeats: int | None) -> Iterator[Repeat]:
    """ECG200-like sets: short beats of a few patients, under 100 normal ones to train.

    Each draw takes :data:`SHORT_RECORDS` non-paced MIT-BIH records with abnormal beats,
    :data:`SHORT_TRAIN` N beats of them to train (as evenly as the records allow) and
    :data:`SHORT_TEST` other beats to test, half of them abnormal where the records have
    enough; every beat, as the tool cuts it, resampled to :data:`SHORT_SAMPLES` samples.
    No RR context: a set of beats, not a recording.
    """
    records = benchmark_mitdb.record_names(benchmark_mitdb.default_data_dir())
    beats = mitdb_beats(records)
    labelled = {record: beats[record][0] for record in records}
    # Records with enough N beats to train on and at least 20 abnormal beats.
    eligible = [record for record, found in labelled.items()
                if (found.labels == "N").sum() >= 2 * SHORT_TRAIN // SHORT_RECORDS
                and ((found.labels != "N") & (found.labels != "-")).sum() >= 20]
    for draw in range(SHORT_DRAWS)[:repeats]:
        rng = np.random.default_rng(draw)
        chosen = rng.choice(eligible, SHORT_RECORDS, replace=False)
        values = np.concatenate([labelled[record].values for record in chosen])
        labels = np.concatenate([labelled[record].labels for record in chosen])
        owner = np.concatenate([np.full(len(labelled[record].labels), index)
                                for index, record in enumerate(chosen)])
        normal = np.flatnonzero(labels == "N")
        train = np.concatenate([rng.choice(normal[owner[normal] == index],
                                           SHORT_TRAIN // SHORT_RECORDS, replace=False)
                                for index in range(SHORT_RECORDS)])
        rest = np.setdiff1d(normal, train)
        abnormal = np.flatnonzero((labels != "N") & (labels != "-"))
        n_abnormal = min(SHORT_TEST // 2, len(abnormal))
        n_normal = min(SHORT_TEST - n_abnormal, len(rest))
        test = np.concatenate([rng.choice(abnormal, n_abnormal, replace=False),
                               rng.choice(rest, n_normal, replace=False)])
        short = resampled(values, SHORT_SAMPLES)
        for seed in seeds:
            yield Repeat("short-beats", f"{SHORT_TRAIN} x {SHORT_SAMPLES}",
                         f"draw {draw}: {' '.join(sorted(chosen))}", short[train],
                         short[test], labels[test] != "N", seed, classes=labels[test])


def resampled(values: np.ndarray, samples: int) -> np.ndarray:
    """Each row linearly interpolated onto ``samples`` evenly spaced points."""
    old = np.linspace(0.0, 1.0, values.shape[1])
    new = np.linspace(0.0, 1.0, samples)
    return np.stack([np.interp(new, old, row) for row in values])


def normal_readable(found) -> np.ndarray:
    """Which of a recording's beats ``anomaly fit`` trains on with its labels: those
    labelled N, but not in an unreadable stretch (a flat, clipped or noisy lead)."""
    return (found.labels == "N") & found.readable


def rr_context_of(found) -> np.ndarray:
    """A recording's beats' RR context, ``(n, 2)``."""
    return rr_ratios(found.rr_prev, found.rr_next, found.rr_local_mean)


def fit_cost(seeds: list[int], repeats: int | None) -> Iterator[Repeat]:
    pool, test, truth = ecg5000_split(FIT_COST_SPLIT)
    for size in FIT_COST_SIZES:
        rng = np.random.default_rng(size)
        train = (pool[:size] if size <= len(pool) else
                 pool[rng.integers(0, len(pool), size)]
                 + rng.normal(0.0, FIT_COST_JITTER, (size, pool.shape[1])))
        for seed in seeds:
            yield Repeat("fit-cost", f"n={size}", f"split {FIT_COST_SPLIT} n={size}", train,
                         test, truth, seed)


PROTOCOLS: dict[str, Callable[[list[int], int | None], Iterator[Repeat]]] = {
    "ecg5000-splits": ecg5000_splits,
    "small-train": small_train,
    "mitdb-patient": mitdb_patient,
    "mitdb-inter": mitdb_inter,
    "short-beats": short_beats,
    "fit-cost": fit_cost,
}


# ---------------------------------------------------------------------------------------
# Running, and the tables
# ---------------------------------------------------------------------------------------
def quality(truth: np.ndarray, scores: np.ndarray, threshold: float,
            classes: np.ndarray | None = None) -> dict:
    """ROC-AUC, F1, precision and recall (anomaly positive) at ``scores > threshold``;
    with AAMI ``classes``, the recall of V and of S beats (None where there are none)."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    flags = scores > threshold
    found = {"roc_auc": float(roc_auc_score(truth, scores)),
             "f1": float(f1_score(truth, flags, zero_division=0.0)),
             "precision": float(precision_score(truth, flags, zero_division=0.0)),
             "recall": float(recall_score(truth, flags, zero_division=0.0))}
    if classes is not None:
        for name in ("V", "S"):
            of_class = classes == name
            found[f"{name}_recall"] = float(flags[of_class].mean()) if of_class.any() else None
    return found


def run_repeat(repeat: Repeat, methods: list[str]) -> list[dict]:
    """One row per method: where it ran, its quality and its fit cost."""
    models, rows = Models(repeat), []
    base = {"protocol": repeat.protocol, "group": repeat.group, "repeat": repeat.name,
            "seed": repeat.seed, "train_n": len(repeat.train), "test_n": len(repeat.test),
            "test_anomalies": int(repeat.truth.sum())}
    for method in methods:
        result = METHODS[method](models)
        if result is None:  # Not a method for this protocol's beats.
            continue
        rows.append({**base, "method": method, "threshold": result.threshold,
                     **quality(repeat.truth, result.scores, result.threshold, repeat.classes),
                     "fit_seconds": result.fit_seconds, "epochs": result.epochs,
                     "score_seconds": result.score_seconds})
    keras.backend.clear_session()  # Without it, every model ever built stays in memory.
    return rows


def mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.4f}"


def wins(rows: list[dict], method: str, baseline: str) -> str:
    """On how many repeats ``method`` beats ``baseline`` on both ROC-AUC and F1."""
    if method == baseline:
        return "-"
    against = {(row["repeat"], row["seed"]): row for row in rows if row["method"] == baseline}
    paired = [(row, against[(row["repeat"], row["seed"])]) for row in rows
              if row["method"] == method and (row["repeat"], row["seed"]) in against]
    won = sum(mine["roc_auc"] > theirs["roc_auc"] and mine["f1"] > theirs["f1"]
              for mine, theirs in paired)
    return f"{won}/{len(paired)}"


def tables(rows: list[dict]) -> str:
    """Markdown: one table per protocol and group, methods in :data:`METHODS` order."""
    lines = []
    groups = dict.fromkeys((row["protocol"], row["group"]) for row in rows)
    for protocol, group in groups:
        chosen = [row for row in rows if (row["protocol"], row["group"]) == (protocol, group)]
        first = chosen[0]
        lines += [f"### {protocol}, {group}", "",
                  f"{len({(r['repeat'], r['seed']) for r in chosen})} repeats; train "
                  f"{first['train_n']} normal beats, test {first['test_n']} "
                  f"({first['test_anomalies']} anomalies) in the first.", "",
                  "| method | n | ROC-AUC | F1 | wins vs LOF | wins vs PCA | fit s | score s "
                  "| epochs |" + (" V recall | S recall |" if "V_recall" in first else "")
                  + " threshold, least to most |",
                  "|---|---|---|---|---|---|---|---|---|"
                  + ("---|---|" if "V_recall" in first else "") + "---|"]
        for method in [name for name in METHODS if any(r["method"] == name for r in chosen)]:
            mine = [row for row in chosen if row["method"] == method]
            epochs = [row["epochs"] for row in mine if row["epochs"] is not None]
            scoring = [row["score_seconds"] for row in mine if row.get("score_seconds") is not None]
            lines.append(
                f"| {method} | {len(mine)} | {mean_sd([r['roc_auc'] for r in mine])} | "
                f"{mean_sd([r['f1'] for r in mine])} | {wins(chosen, method, 'LOF')} | "
                f"{wins(chosen, method, 'PCA')} | "
                f"{np.mean([r['fit_seconds'] for r in mine]):.1f} | "
                f"{f'{np.mean(scoring):.3f}' if scoring else '-'} | "
                f"{f'{np.mean(epochs):.0f}' if epochs else '-'} |"
                + ("".join(f" {class_recall(mine, name)} |" for name in ("V", "S"))
                   if "V_recall" in first else "")
                + f" {min(r['threshold'] for r in mine):.4g} to "
                  f"{max(r['threshold'] for r in mine):.4g} |")
        lines.append("")
    return "\n".join(lines)


def whole_table(rows: list[dict]) -> str:
    """Markdown: each method's mean ROC-AUC / F1 in every protocol and group, side by side
    (a default is chosen on all of them), with LOF and PCA; "" for a single group."""
    groups = list(dict.fromkeys((row["protocol"], row["group"]) for row in rows))
    if len(groups) < 2:
        return ""
    lines = ["### Every protocol: mean ROC-AUC / F1", "",
             "| method | " + " | ".join(f"{protocol} {group}" for protocol, group in groups)
             + " |", "|---|" + "---|" * len(groups)]
    for method in [name for name in METHODS if any(r["method"] == name for r in rows)]:
        cells = []
        for protocol, group in groups:
            mine = [row for row in rows if (row["protocol"], row["group"], row["method"])
                    == (protocol, group, method)]
            cells.append(f"{np.mean([r['roc_auc'] for r in mine]):.4f} / "
                         f"{np.mean([r['f1'] for r in mine]):.4f}" if mine else "-")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""])


def class_recall(rows: list[dict], name: str) -> str:
    """Mean recall of class ``name`` over the repeats that have beats of it."""
    recalls = [row[f"{name}_recall"] for row in rows if row.get(f"{name}_recall") is not None]
    return f"{np.mean(recalls):.3f} ({len(recalls)})" if recalls else "-"


def merged_rows(paths: list[Path]) -> list[dict]:
    """The rows of several result files; a later file's row replaces an earlier one's
    for the same protocol, group, repeat, seed and method."""
    merged = {}
    for path in paths:
        for row in json.loads(path.read_text())["rows"]:
            merged[tuple(row[key] for key in ROW_KEY)] = row
    return list(merged.values())


def comma_list(text: str, known: dict) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)}; "
                                         f"known: {', '.join(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocols", default="ecg5000-splits,small-train",
                        type=lambda text: comma_list(text, PROTOCOLS),
                        help=f"comma-separated, among: {', '.join(PROTOCOLS)}")
    parser.add_argument("--methods", default=",".join(name for name in METHODS
                                                      if name not in BASELINES),
                        type=lambda text: comma_list(text, METHODS),
                        help="comma-separated (LOF and PCA always run); default: all")
    parser.add_argument("--seeds", default="0",
                        type=lambda text: [int(seed) for seed in text.split(",")],
                        help="comma-separated model seeds, each a repeat of every draw "
                             "(default 0)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="use only the first N splits, draws or records (quick runs)")
    parser.add_argument("--only", default=None, type=lambda text: set(text.split(",")),
                        help="run only the repeats of these names (comma-separated: "
                             "'split 101', 'draw 0', 'split 100 n=100000', MIT-BIH "
                             "records), to share a protocol between processes")
    parser.add_argument("--json", type=Path, default=None,
                        help="write every per-repeat row here (rewritten after each repeat)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --json and run only the methods "
                             "missing from them, repeat by repeat")
    parser.add_argument("--tables-from", default=None,
                        type=lambda text: [Path(path) for path in text.split(",")],
                        help="print the tables of these result files (comma-separated; a "
                             "later file's rows replace an earlier one's) and run nothing")
    args = parser.parse_args(argv)

    if args.tables_from:
        merged = merged_rows(args.tables_from)
        print(tables(merged) + "\n" + whole_table(merged))
        return 0
    if args.resume and not args.json:
        parser.error("--resume needs --json")
    methods = [*BASELINES, *(name for name in args.methods if name not in BASELINES)]
    rows = (json.loads(args.json.read_text())["rows"]
            if args.resume and args.json.exists() else [])
    done = {tuple(row[key] for key in ROW_KEY) for row in rows}
    started = time.perf_counter()
    for protocol in args.protocols:
        for repeat in PROTOCOLS[protocol](args.seeds, args.repeats):
            if args.only is not None and repeat.name not in args.only:
                continue
            where = (repeat.protocol, repeat.group, repeat.name, repeat.seed)
            missing = [method for method in methods if (*where, method) not in done]
            if not missing:
                continue
            rows += run_repeat(repeat, missing)
            print(f"  {protocol} {repeat.group} {repeat.name} seed {repeat.seed}: done at "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"argv": sys.argv, "rows": rows}, indent=1)
                                     + "\n")
    print(tables(rows) + "\n" + whole_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
