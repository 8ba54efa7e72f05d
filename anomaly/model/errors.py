"""The reconstruction error of an input: how far its reconstruction is from it, in scaled
units. It is the score, or its first factor with the code's distance
(:mod:`anomaly.model.code_memory`).

Without a context the error is the mean over all of an input's values of their absolute
(``"mae"``, the TensorFlow autoencoder tutorial's) or squared (``"mse"``) differences from
the reconstruction, the detector's ``error_metric``; with a context, the samples' and the
context's errors are weighed (``context_weight``), so that a beat of normal shape at an
abnormal moment scores high. A new score is a function here and a parameter of the
detector.
"""

from __future__ import annotations

import numpy as np

from ..choices import ErrorMetric

#: How one value's difference from its reconstruction counts, by ``error_metric``
#: (checked with the detector's parameters), before the mean over an input's values.
_DIFFERENCES = {ErrorMetric.mae.value: np.abs, ErrorMetric.mse.value: np.square}
#: The detector's ``error_metric`` choices: those this module can compute. The command
#: line offers :class:`anomaly.choices.ErrorMetric`'s, which a test checks are the same.
ERROR_METRICS = tuple(_DIFFERENCES)


def _differences(inputs: np.ndarray, reconstructions: np.ndarray, metric: str) -> np.ndarray:
    """Each value's absolute (``"mae"``) or squared (``"mse"``) difference."""
    difference = np.subtract(inputs, reconstructions)
    return _DIFFERENCES[metric](difference, out=difference)


def reconstruction_error(inputs: np.ndarray, reconstructions: np.ndarray,
                         metric: str = "mae") -> np.ndarray:
    """Mean absolute (``metric="mae"``) or squared (``"mse"``) error of each input (a
    trace or an image) over all its values, shape ``(n,)``."""
    difference = _differences(inputs, reconstructions, metric)
    return difference.reshape(len(difference), -1).mean(axis=1)


def context_error(inputs: np.ndarray, reconstructions: np.ndarray, context_columns: int,
                  context_weight: float, metric: str = "mae") -> np.ndarray:
    """Per-input error of traces whose last ``context_columns`` values are context.

    Parameters
    ----------
    inputs, reconstructions : ndarray of shape (n, n_values)
    context_columns : int
        How many of the last columns are context (at least 1).
    context_weight : float
        The share of the score the context carries, in (0, 1).
    metric : {"mae", "mse"}, default "mae"
        The detector's ``error_metric``: absolute or squared differences.

    Returns
    -------
    ndarray of shape (n,)
        ``(1 - context_weight)`` x the samples' error plus ``context_weight`` x the
        context columns' error, each the mean of ``metric`` over their values.
    """
    difference = _differences(inputs, reconstructions, metric)
    return ((1.0 - context_weight) * difference[:, :-context_columns].mean(axis=1)
            + context_weight * difference[:, -context_columns:].mean(axis=1))


def input_errors(scaled: np.ndarray, reconstructions: np.ndarray, *, metric: str = "mae",
                 context_columns: int = 0, context_weight: float = 0.0) -> np.ndarray:
    """The score of scaled inputs given their reconstructions, float64 of shape ``(n,)``:
    :func:`context_error` with context columns, else :func:`reconstruction_error`."""
    if context_columns:
        errors = context_error(scaled, reconstructions, context_columns, context_weight,
                               metric)
    else:
        errors = reconstruction_error(scaled, reconstructions, metric)
    return errors.astype(np.float64)
