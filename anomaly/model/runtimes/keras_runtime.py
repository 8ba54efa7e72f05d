"""The Keras runtime: the trained ``keras.Model`` itself, run forward (imports TensorFlow)."""

from __future__ import annotations

import os

import numpy as np

from ...exceptions import ModelError
from .base import in_batches


class KerasRuntime:
    """Reconstruct with a Keras model's compiled predict step.

    Parameters
    ----------
    model : keras.Model
        A fitted autoencoder (the variational one decodes its code's mean).
    code_size : int, optional
        For a model with a code memory: the width its ``code`` layer must have.
    source : path, default "model.keras"
        What error messages call the model file.
    """

    name = "keras"

    def __init__(self, model, *, code_size: int | None = None,
                 source: str | os.PathLike = "model.keras") -> None:
        self.model = model
        self._coded = None  # The model with its code as a second output, when asked for.
        if code_size is not None:
            self._check_code(code_size, source)

    def _check_code(self, code_size: int, source: str | os.PathLike) -> None:
        """The model has the dense family's code layer, of the code memory's width."""
        try:
            width = self.model.get_layer("code").output.shape[-1]
        except (ValueError, AttributeError):
            width = None
        if width != code_size:
            got = "no code layer" if width is None else f"a code of {width} values"
            raise ModelError(f"{source}: has {got}; its code memory holds codes of "
                             f"{code_size} values")

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
