"""Training one network: its schedule (epochs and batch size), Keras's fit, what it gave.

:func:`train_network` builds an autoencoder of a family, trains it on scaled inputs with
early stopping and returns a :class:`TrainedNetwork`; it sets nothing anywhere else. The
detector (:mod:`anomaly.model.detector`) decides what it trains on and how often
(:mod:`anomaly.model.threshold`). Importing this module imports no TensorFlow; training
does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..json_values import check_number, is_count, known

#: ``batch_size="auto"``: batches grow with the training set, so that an epoch is about
#: this many gradient steps once the set is past 64 x this many inputs (below, 64).
AUTO_BATCH_STEPS = 100
AUTO_BATCH_RANGE = (64, 4096)

#: Gradient steps Keras runs per call from Python: the same updates in the same order (the
#: same scores to the last bit, tests/test_detector.py), with less of Keras's work per step
#: in Python, which much of these small networks' training is: the six fits of ECG5000's
#: tutorial split took 47.4 s instead of 66.2 s (docs/benchmarks.md, the threshold from
#: every fold's held-out beats). At most an epoch's steps, and a validation set's: Keras
#: releases before keras-team/keras#20390's fix logged nothing when asked for more.
STEPS_PER_EXECUTION = 32

#: ``on_epoch(epoch, epochs_planned, logs)``: called after each epoch (a progress display).
OnEpoch = Callable[[int, int, dict], None]


def auto_batch_size(n_inputs: int) -> int:
    """The batch size ``batch_size="auto"`` trains ``n_inputs`` with: 64 up to 6,400
    inputs, then the power of two nearest ``n_inputs / 100`` (at most 4,096)."""
    low, high = AUTO_BATCH_RANGE
    nearest = 2 ** round(math.log2(max(n_inputs, 1) / AUTO_BATCH_STEPS))
    return int(min(max(nearest, low), high))


@dataclass(frozen=True)
class Schedule:
    """How long a network trains: at most ``epochs`` passes in batches of ``batch_size``,
    stopping after ``patience`` epochs without improvement (best weights kept)."""

    epochs: int
    batch_size: int
    patience: int

    @classmethod
    def of(cls, n_inputs: int, *, epochs: int, batch_size: int | str,
           max_inputs_seen: int | None, patience: int) -> "Schedule":
        """The schedule for ``n_inputs`` training inputs: ``batch_size`` resolved
        (:func:`auto_batch_size`), and fewer epochs when ``max_inputs_seen`` binds."""
        batch = auto_batch_size(n_inputs) if batch_size == "auto" else int(batch_size)
        planned = epochs
        if max_inputs_seen is not None:
            planned = max(1, min(epochs, max_inputs_seen // n_inputs))
        return cls(planned, batch, patience)


@dataclass(frozen=True)
class NetworkSpec:
    """Which network to build and how to compile it."""

    family: str
    input_shape: tuple[int, ...]
    options: dict[str, Any]
    loss: str
    learning_rate: float

    def build(self, steps_per_execution: int = 1):
        """A new compiled ``keras.Model`` (imports TensorFlow), running
        ``steps_per_execution`` (default 1) training steps per call from Python."""
        from .networks import build_autoencoder, keras

        model = build_autoencoder(self.family, self.input_shape, **self.options)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                      loss=None if self.family == "vae" else self.loss,
                      steps_per_execution=steps_per_execution)
        return model


@dataclass(frozen=True)
class TrainedNetwork:
    """A trained network and how its training went.

    Attributes
    ----------
    model : keras.Model
    history : dict of str to list of float
        Keras's history (``loss`` per epoch, ``val_loss`` with validation).
    epochs_planned : int
        The most epochs it could train (its schedule's).
    batch_size : int
    """

    model: Any
    history: dict[str, list[float]]
    epochs_planned: int
    batch_size: int

    @property
    def epochs_trained(self) -> int:
        """Epochs trained (early stopping may end before the schedule's)."""
        return len(self.history["loss"])

    @property
    def parameters(self) -> int:
        """Weights of the network (its size)."""
        return int(self.model.count_params())


def train_network(spec: NetworkSpec, targets: np.ndarray, *, inputs: np.ndarray | None = None,
                  validation: tuple[np.ndarray, np.ndarray] | None = None,
                  schedule: Schedule, noise_factor: float = 0.0, seed: int = 0,
                  on_epoch: OnEpoch | None = None, verbose: int = 0) -> TrainedNetwork:
    """Build the network ``spec`` describes and train it to reconstruct ``targets``.

    Parameters
    ----------
    spec : NetworkSpec
    targets : ndarray of shape (n, *input_shape), float32
        Scaled training inputs, in the order they are shuffled from.
    inputs : ndarray, optional
        What the network sees of them (for example with their context blanked); default
        the targets themselves.
    validation : (inputs, targets), optional
        Watched for early stopping; without it the training loss is.
    schedule : Schedule
    noise_factor : float, default 0.0
        Positive: train as a denoising autoencoder, fresh Gaussian noise of this standard
        deviation on the inputs every epoch (:func:`anomaly.model.denoising.noisy_batches`).
    seed : int, default 0
        Seeds the noise (Keras's own seed is the caller's to set).
    on_epoch : callable, optional
        ``on_epoch(epoch, schedule.epochs, logs)`` after each epoch.
    verbose : int, default 0
        Keras's progress output.

    Returns
    -------
    TrainedNetwork
    """
    from .networks import keras

    monitor = "loss" if validation is None else "val_loss"
    callbacks = [keras.callbacks.EarlyStopping(monitor=monitor, patience=schedule.patience,
                                               restore_best_weights=True)]
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: on_epoch(epoch, schedule.epochs, dict(logs or {}))))
    watched = () if validation is None else (validation[1],)
    batches = [math.ceil(len(rows) / schedule.batch_size) for rows in (targets, *watched)]
    model = spec.build(min(STEPS_PER_EXECUTION, *batches))
    if noise_factor > 0:
        from .denoising import noisy_batches

        data = dict(x=noisy_batches(targets, noise_factor=noise_factor,
                                    batch_size=schedule.batch_size, seed=seed))
    else:
        data = dict(x=targets if inputs is None else inputs, y=targets,
                    batch_size=schedule.batch_size, shuffle=True)
    history = model.fit(**data, epochs=schedule.epochs, validation_data=validation,
                        callbacks=callbacks, verbose=verbose)
    return TrainedNetwork(model, {key: [float(v) for v in values]
                                  for key, values in history.history.items()},
                          schedule.epochs, schedule.batch_size)


@dataclass(frozen=True)
class TrainingSummary:
    """How a detector's fit went, as its model directory records it.

    Attributes
    ----------
    rows : int
        Inputs the detector was fitted on.
    epochs : int
        Epochs the kept network trained.
    epochs_planned : int or None
        The most it could have trained (None in models from before it was recorded).
    batch_size : int or None
    network_parameters : int or None
        Weights of the network.
    fit_seconds : float or None
        The whole fit, every network trained and the threshold set.
    history : dict or None
        Keras's history of the kept network, after a fit (not saved).
    """

    rows: int
    epochs: int
    epochs_planned: int | None = None
    batch_size: int | None = None
    network_parameters: int | None = None
    fit_seconds: float | None = None
    history: dict[str, list[float]] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, network: TrainedNetwork, *, rows: int, fit_seconds: float) -> "TrainingSummary":
        """The summary of a fit on ``rows`` inputs that kept ``network``."""
        return cls(rows, network.epochs_trained, network.epochs_planned, network.batch_size,
                   network.parameters, round(fit_seconds, 3), network.history)

    def to_json(self) -> dict[str, Any]:
        """The ``training`` section of a model directory's metadata."""
        data = {"rows": self.rows, "epochs": self.epochs, "epochs_planned": self.epochs_planned,
                "batch_size": self.batch_size, "network_parameters": self.network_parameters,
                "fit_seconds": self.fit_seconds}
        return known(data)

    @classmethod
    def from_json(cls, data: Any) -> "TrainingSummary":
        """The summary :meth:`to_json` wrote; ValueError naming what is malformed."""
        if not isinstance(data, dict):
            raise ValueError("'training' must be an object")
        counts = {}
        for key in ("rows", "epochs", "epochs_planned", "batch_size", "network_parameters"):
            value = data.get(key)
            required = key in ("rows", "epochs")
            if value is None and not required:
                continue
            if not is_count(value, least=0):
                raise ValueError(f"'training.{key}' must be a count")
            counts[key] = value
        seconds = data.get("fit_seconds")
        return cls(**counts, fit_seconds=None if seconds is None
                   else check_number(seconds, "training.fit_seconds"))
