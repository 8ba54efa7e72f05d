"""The threshold: mean + k x std of normal beats' errors, and whose errors set it.

The rule is the TensorFlow autoencoder tutorial's. Whose errors it is computed from is the
``threshold_source``:

- ``training``: the beats the network trained on (the tutorial's; they run low, since the
  network has fitted them);
- ``heldout``: a share of the beats held out of training (the model kept never sees
  them);
- ``heldout-refit``: a first model is trained without the held-out beats and sets the
  threshold from their errors; the model kept is then trained on every beat (two fits);
- ``heldout-folds``: the beats are split in ``round(1 / fraction)`` folds, each held out of a
  first model trained on the others, and every beat's error under the model that did not
  see it sets the threshold; the model kept is then trained on every beat (six fits at
  the default fifth). One fifth's threshold moves with which beats the fifth holds; all
  of them, the most the training set has, move less (measured: docs/benchmarks.md).
  Where the first models would together train on more than one fit's budget of inputs,
  one fold sets it, as ``heldout-refit``'s (``max_first_fit_rows``): a large training set
  holds enough held-out beats in a fifth, and its fit costs what it did.

With fewer than :data:`MIN_HELDOUT` beats to hold out, the training beats set it.

Before mean + k x std, the largest ``winsorise`` of those scores (the detector's
``threshold_winsorise``, 0 by default) may count as the largest of the others: the scores
are winsorised, so that no one beat, however high its score, moves the threshold
(measured on every protocol: docs/benchmarks.md, stop 59).

:func:`calibrate` carries out a source's steps with the training it is given and returns
the network kept with its :class:`Calibration`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

import numpy as np

from ..choices import MAX_CALIBRATION_BEATS, ThresholdSource
from ..exceptions import InputError, shortened
from ..json_values import check_number, is_count

#: The sources, as the detector's ``threshold_source`` names them.
THRESHOLD_SOURCES = tuple(source.value for source in ThresholdSource)
#: Fewest held-out beats a threshold is set from; with fewer, the training beats set it.
MIN_HELDOUT = 10
#: How far, relative, a saved threshold may lie from ``mean + k x std`` of its saved
#: statistics: every version computed the three from one float64 array, so they agree to
#: the last digit; this allows metadata rewritten by another JSON tool, not an edit.
RULE_TOLERANCE = 1e-6

Network = TypeVar("Network")


def mean_plus_std_threshold(errors: np.ndarray, k: float = 1.0) -> float:
    """The threshold ``mean(errors) + k * std(errors)`` (population standard deviation)."""
    errors = np.asarray(errors, dtype=np.float64)
    return float(errors.mean() + k * errors.std())


def winsorise_largest(scores: np.ndarray, count: int) -> np.ndarray:
    """A copy of ``scores`` (in their order) with their largest ``count`` set to the
    largest of the others; ``count`` from 0 to ``len(scores) - 1``."""
    scores = np.array(scores, dtype=np.float64)
    if not 0 <= count < len(scores):
        raise ValueError(f"can winsorise 0 to {len(scores) - 1} of {len(scores)} scores, "
                         f"not {count}")
    if count > 0:
        largest = np.argpartition(scores, len(scores) - count - 1)
        scores[largest[len(scores) - count:]] = scores[largest[len(scores) - count - 1]]
    return scores


#: Fewer scores than this set a threshold that moves with which beats they are (MIT-BIH
#: 232's first 5 minutes without labels: 18 held-out beats, and 49% of the rest flagged).
STEADY_CALIBRATION_BEATS = 30


def calibration_note(calibration: "Calibration", trained: int, read: int) -> str | None:
    """What a fit should say of a threshold set on the scores of fewer than
    :data:`STEADY_CALIBRATION_BEATS` beats (None otherwise), with how many of the ``read``
    beats were ``trained`` on when not all."""
    if calibration.n >= STEADY_CALIBRATION_BEATS:
        return None
    kept = f" ({trained} of the {read} read were trained on)" if trained < read else ""
    return (f"the threshold rests on the scores of {calibration.n} beats{kept}, and moves "
            "with which beats they are: train on more (a longer span, more rows) for a "
            "steadier one.")


@dataclass(frozen=True)
class Calibration:
    """Where a model's threshold comes from.

    Attributes
    ----------
    source : {"training", "heldout", "heldout-refit", "heldout-folds"}
        Whose errors set it (see the module's text).
    n : int
        How many errors set it.
    mean, std : float
        Their mean and (population) standard deviation, winsorised.
    threshold : float
        ``mean + k * std``: scores above it are anomalies.
    winsorised : int
        How many of the largest errors counted as the largest of the others (0: none).
    errors : ndarray of shape (n,), or None
        The errors themselves, after a fit (a saved model keeps only their statistics).
    """

    source: str
    n: int
    mean: float
    std: float
    threshold: float
    winsorised: int = 0
    errors: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Scores are mean absolute or squared errors: never negative. A negative threshold
        # would flag every beat, a negative mean or spread is no calibration.
        for name in ("mean", "std", "threshold"):
            if getattr(self, name) < 0:
                raise ValueError(f"'calibration.{name}' is negative ({getattr(self, name):g});"
                                 " scores are never negative, so it would flag every beat")
        # At least one score is kept as it is.
        if not is_count(self.winsorised, least=0) or self.winsorised >= self.n:
            raise ValueError(f"'calibration.winsorised' must be an integer from 0 to "
                             f"'calibration.n' - 1 ({self.n - 1}), got "
                             f"{shortened(repr(self.winsorised))}")

    @classmethod
    def of(cls, source: str, errors: np.ndarray, k: float, winsorise: int = 0
           ) -> "Calibration":
        """The calibration of ``errors`` by the mean + ``k`` x std rule, their largest
        ``winsorise`` (fewer than all of them) counted as the largest of the others.

        Raises
        ------
        InputError
            When the errors give no finite threshold (training diverged).
        """
        errors = np.asarray(errors, dtype=np.float64)
        # Checked before winsorising, which would count a NaN or infinite error as the
        # largest of the others.
        if not np.isfinite(errors).all():
            raise InputError("training gave reconstruction errors that are not finite; "
                             "nothing was saved")
        counted = winsorise_largest(errors, winsorise)
        threshold = mean_plus_std_threshold(counted, k)
        if not math.isfinite(threshold):
            raise InputError("training gave reconstruction errors that are not finite "
                             f"(threshold {threshold}); nothing was saved")
        if threshold < 0:
            raise InputError(f"a threshold k of {k:g} puts the threshold below zero "
                             f"({threshold:.6g}), which flags every beat; nothing was saved")
        return cls(source, len(errors), float(counted.mean()), float(counted.std()), threshold,
                   winsorise, errors)

    def check_rule(self, k: float) -> None:
        """A ValueError unless the threshold is ``mean + k x std`` (within
        :data:`RULE_TOLERANCE`): a threshold edited alone in a model's metadata would
        change every flag and keep the explanation of the one it replaced."""
        rule = self.mean + k * self.std
        if not math.isclose(self.threshold, rule, rel_tol=RULE_TOLERANCE):
            raise ValueError(f"'calibration.threshold' {self.threshold:.6g} is not mean "
                             f"{self.mean:.6g} {'+' if k >= 0 else '-'} {abs(k):g} x std "
                             f"{self.std:.6g} ({rule:.6g}), the rule the model was "
                             "calibrated by")

    def describe(self) -> str:
        """Whose errors set the threshold, for people: ``the 469 beats held out...``, and
        how many of the largest counted as the largest of the others."""
        if self.source == "heldout":
            whose = f"the {self.n} beats held out of training"
        elif self.source == "heldout-refit":
            whose = (f"the {self.n} beats held out of a first training, the model kept "
                     "then trained on every beat")
        elif self.source == "heldout-folds":
            whose = (f"the {self.n} beats, each scored by the first model that did not train "
                     "on it, the model kept then trained on every beat")
        else:
            whose = f"the {self.n} training beats"
        if self.winsorised == 1:
            return f"{whose}; the largest score counted as the next largest"
        if self.winsorised > 1:
            return (f"{whose}; the largest {self.winsorised} scores counted as the largest "
                    "of the others")
        return whose

    def to_json(self) -> dict[str, Any]:
        """The ``calibration`` section of a model directory's metadata."""
        return {"source": self.source, "n": self.n, "mean": self.mean, "std": self.std,
                "threshold": self.threshold, "winsorised": self.winsorised}

    @classmethod
    def from_json(cls, data: Any) -> "Calibration":
        """The calibration :meth:`to_json` wrote; ValueError naming what is malformed."""
        if not isinstance(data, dict):
            raise ValueError("'calibration' must be an object")
        if data.get("source") not in THRESHOLD_SOURCES:
            raise ValueError(f"'calibration.source' must be one of {THRESHOLD_SOURCES}")
        n = data.get("n")
        if not is_count(n) or n > MAX_CALIBRATION_BEATS:
            raise ValueError(f"'calibration.n' must be a positive integer of at most "
                             f"{MAX_CALIBRATION_BEATS:,}")
        return cls(data["source"], n, *(check_number(data.get(key), f"calibration.{key}")
                                        for key in ("mean", "std", "threshold")),
                   data.get("winsorised"))


@dataclass(frozen=True)
class Calibrated(Generic[Network]):
    """What :func:`calibrate` returns: the network kept, its calibration, and the errors of
    the beats that network trained on (in their order)."""

    network: Network
    calibration: Calibration
    train_errors: np.ndarray


def n_folds(fraction: float) -> int:
    """How many folds ``heldout-folds`` splits the beats in: one per ``fraction`` of them,
    rounded (5 for 0.2, 3 for 0.3), at least 2."""
    return max(2, int(round(1.0 / fraction)))


def fits_said(calibration: "Calibration", fraction: float) -> str:
    """How many networks a fit whose threshold came from ``calibration.source`` trained
    (the one kept and the first models), for people reading its time: ``" (6 fits)"``,
    or nothing for a single fit."""
    fits = {"heldout-refit": 2, "heldout-folds": n_folds(fraction) + 1}.get(
        calibration.source, 1)
    return f" ({fits} fits)" if fits > 1 else ""


def heldout_folds(order: np.ndarray, *, source: str, fraction: float) -> list[np.ndarray]:
    """The folds of the rows ``order`` (the seed's permutation) held out to set the
    threshold, each of a first model trained on the others: ``heldout-folds``'s
    :func:`n_folds`, or the last ``fraction`` for ``heldout`` and ``heldout-refit``. None
    (an empty list) for ``training``, or when a fold would hold fewer than
    :data:`MIN_HELDOUT` rows or leave fewer than 2 to train on: the training beats set it."""
    n_inputs = len(order)
    if source == "heldout-folds":
        folds = np.array_split(order, n_folds(fraction))
    elif source != "training":
        folds = [order[n_inputs - int(round(n_inputs * fraction)):]]
    else:
        return []
    if min(map(len, folds)) >= MIN_HELDOUT and n_inputs - max(map(len, folds)) >= 2:
        return folds
    return []


def calibrate(train: Callable[[np.ndarray, str | None], Network],
              errors: Callable[[Network, np.ndarray], np.ndarray], n_inputs: int, *,
              source: str, fraction: float, seed: int, k: float, winsorise: int = 0,
              max_first_fit_rows: int | None = None) -> Calibrated[Network]:
    """Train as ``source`` says and set the threshold.

    Parameters
    ----------
    train : callable
        ``train(rows, stage)``: a network trained on the inputs ``rows`` (in that order);
        ``stage`` is ``"1/2"`` and ``"2/2"`` for the two fits of ``heldout-refit``,
        ``"1/6"`` to ``"6/6"`` for the six of ``heldout-folds`` (at a fraction of 0.2),
        None for a single fit.
    errors : callable
        ``errors(network, rows)``: the network's errors of the inputs ``rows``.
    n_inputs : int
    source : {"training", "heldout", "heldout-refit", "heldout-folds"}
    fraction : float
        Share of the inputs held out; for ``heldout-folds``, each fold's (rounded to a
        whole number of folds, :func:`n_folds`).
    seed : int
        Seeds the split, and the order every network trains in.
    k : float
        The threshold is mean + ``k`` x std.
    winsorise : int
        How many of the largest errors count as the largest of the others.
    max_first_fit_rows : int, optional
        The most inputs the first models of ``heldout-folds`` may train on, all of them
        together (an input counted once per model); with more, ``heldout-refit`` is
        carried out. None: no limit.

    Returns
    -------
    Calibrated
        With ``heldout-folds``, the calibration's errors are in the folds' order.
    """
    if source == "heldout-folds" and max_first_fit_rows is not None and (
            n_inputs * (n_folds(fraction) - 1) > max_first_fit_rows):
        source = "heldout-refit"
    order = np.random.default_rng(seed).permutation(n_inputs)
    folds = heldout_folds(order, source=source, fraction=fraction)
    # Checked before any training: at least one of the scores that set it counts as it is.
    scored = len(folds[0]) if folds and source in ("heldout", "heldout-refit") else n_inputs
    if winsorise >= scored:
        raise InputError(f"threshold_winsorise {winsorise} would count every one of the "
                         f"{scored} scores that set the threshold as another; give fewer "
                         f"than {scored}")
    if not folds:
        network = train(order, None)
        train_errors = errors(network, np.arange(n_inputs))
        return Calibrated(network, Calibration.of("training", train_errors, k, winsorise),
                          train_errors)
    # Each first model trains on the rows of the other folds, in the seed's order.
    firsts = [order[~np.isin(order, fold)] for fold in folds]
    if source == "heldout":
        network = train(firsts[0], None)
        return Calibrated(network,
                          Calibration.of(source, errors(network, folds[0]), k, winsorise),
                          errors(network, np.sort(firsts[0])))
    # heldout-refit and heldout-folds: the first models' held-out errors; the model kept
    # trains on every beat.
    fits = len(folds) + 1
    heldout_errors = [errors(train(rows, f"{number}/{fits}"), fold)
                      for number, (rows, fold) in enumerate(zip(firsts, folds), start=1)]
    calibration = Calibration.of(source, np.concatenate(heldout_errors), k, winsorise)
    network = train(order, f"{fits}/{fits}")
    return Calibrated(network, calibration, errors(network, np.arange(n_inputs)))


def fallback_reason(requested: str, used: str) -> str | None:
    """Why a fit's threshold came from ``used`` beats' scores when ``requested`` was asked
    for (None when they are the same), for people."""
    if used == requested:
        return None
    if used == "training":
        return (f"the training beats' own scores set the threshold ({requested} asked for): "
                f"a held-out fold would hold fewer than {MIN_HELDOUT} beats")
    return (f"one held-out fold set the threshold ({requested} asked for): the first models "
            "of every fold would together train on more than max_inputs_seen inputs")
