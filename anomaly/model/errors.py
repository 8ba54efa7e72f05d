"""The score of an input: how far its reconstruction is from it, in scaled units.

Without a context the score is the mean absolute error over all of an input's values
(the TensorFlow autoencoder tutorial's); with one, the samples' and the context's errors
are weighed (``context_weight``), so that a beat of normal shape at an abnormal moment
scores high. A new score is a function here and a parameter of the detector.
"""

from __future__ import annotations

import numpy as np


def reconstruction_error(inputs: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean absolute error of each input (a trace or an image) over all its values,
    shape ``(n,)``."""
    difference = np.subtract(inputs, reconstructions)
    np.abs(difference, out=difference)
    return difference.reshape(len(difference), -1).mean(axis=1)


def context_error(inputs: np.ndarray, reconstructions: np.ndarray, context_columns: int,
                  context_weight: float) -> np.ndarray:
    """Per-input error of traces whose last ``context_columns`` values are context.

    Parameters
    ----------
    inputs, reconstructions : ndarray of shape (n, n_values)
    context_columns : int
        How many of the last columns are context (at least 1).
    context_weight : float
        The share of the score the context carries, in (0, 1).

    Returns
    -------
    ndarray of shape (n,)
        ``(1 - context_weight)`` x the MAE of the samples plus ``context_weight`` x the
        MAE of the context columns.
    """
    difference = np.abs(np.subtract(inputs, reconstructions))
    return ((1.0 - context_weight) * difference[:, :-context_columns].mean(axis=1)
            + context_weight * difference[:, -context_columns:].mean(axis=1))


def input_errors(scaled: np.ndarray, reconstructions: np.ndarray, *, context_columns: int = 0,
                 context_weight: float = 0.0) -> np.ndarray:
    """The score of scaled inputs given their reconstructions, float64 of shape ``(n,)``:
    :func:`context_error` with context columns, else :func:`reconstruction_error`."""
    if context_columns:
        errors = context_error(scaled, reconstructions, context_columns, context_weight)
    else:
        errors = reconstruction_error(scaled, reconstructions)
    return errors.astype(np.float64)
