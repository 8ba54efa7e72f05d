"""The Keras runtime: the trained ``keras.Model`` itself, run forward (imports TensorFlow)."""

from __future__ import annotations

import numpy as np

from .base import in_batches


class KerasRuntime:
    """Reconstruct with a Keras model's compiled predict step.

    Parameters
    ----------
    model : keras.Model
        A fitted autoencoder (the variational one decodes its code's mean).
    """

    name = "keras"

    def __init__(self, model) -> None:
        self.model = model
        self._coded = None  # The model with its code as a second output, when asked for.

    def reconstruct(self, scaled: np.ndarray) -> np.ndarray:
        # predict_on_batch runs Keras's compiled predict step: over twice as fast as
        # calling the model eagerly, and without predict's per-call setup.
        return in_batches(scaled, self.model.predict_on_batch)

    def reconstruct_and_encode(self, scaled: np.ndarray, code_size: int
                               ) -> tuple[np.ndarray, np.ndarray]:
        if self._coded is None:
            from ..networks import forward_model

            self._coded = forward_model(self.model, with_code=True)
        return in_batches(scaled, self._coded.predict_on_batch, code_size)
