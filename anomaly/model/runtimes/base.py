"""The runtime role: what runs a fitted autoencoder forward to reconstruct inputs.

Training is Keras's; scoring needs only the forward pass, which either runtime can run:
Keras itself (:mod:`anomaly.model.runtimes.keras_runtime`) or onnxruntime on the model exported
to ONNX (:mod:`anomaly.model.runtimes.onnx_runtime`), which starts in a fraction of a second and
a fraction of the memory because it does not import TensorFlow. Both take and return the
detector's scaled float32 arrays; the scaling, the error and the threshold stay the
detector's.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ...exceptions import ModelError

#: Rows per forward pass: large batches run far faster than Keras's default 32, and bound
#: the memory of one pass.
INFERENCE_BATCH = 8192


class Runtime(Protocol):
    """Runs a model forward: scaled inputs in, reconstructions of the same shape out (and,
    for a model with a memory of training codes, the codes)."""

    #: The runtime's name as the user chooses it and the run report records it.
    name: str

    def reconstruct(self, scaled: np.ndarray) -> np.ndarray:
        """Reconstructions of ``scaled`` (float32, shape ``(n, *input_shape)``), same shape."""
        ...

    def reconstruct_and_encode(self, scaled: np.ndarray, code_size: int
                               ) -> tuple[np.ndarray, np.ndarray]:
        """Reconstructions of ``scaled`` and their codes, shape ``(n, code_size)``, from one
        forward pass."""
        ...


def codes_unlike_memory(codes: np.ndarray, code_size: int) -> str:
    """What a model whose codes are not of its code memory's width gives, in words."""
    return (f"gives codes of shape {np.shape(codes)[1:]}; its code memory holds codes of "
            f"{code_size} values")


def in_batches(scaled: np.ndarray, forward, code_size: int | None = None):
    """``forward`` applied to ``scaled`` ``INFERENCE_BATCH`` rows at a time, as one array;
    with ``code_size``, ``forward`` returns reconstructions and codes, and so does this.

    Raises
    ------
    ModelError
        ``forward`` returned another shape than its input's (which NumPy would otherwise
        broadcast into the result without a word), or codes of another width.
    """
    scaled = np.ascontiguousarray(scaled, dtype=np.float32)
    out = np.empty_like(scaled)
    codes = None if code_size is None else np.empty((len(scaled), code_size), np.float32)
    for start in range(0, len(scaled), INFERENCE_BATCH):
        batch = scaled[start:start + INFERENCE_BATCH]
        result = forward(batch)
        if codes is not None:
            result, code = result
            if np.shape(code) != (len(batch), code_size):
                raise ModelError(f"the model {codes_unlike_memory(code, code_size)}")
            codes[start:start + len(batch)] = code
        if np.shape(result) != batch.shape:
            raise ModelError(f"the model maps inputs of shape {batch.shape[1:]} to "
                             f"{np.shape(result)[1:]}; an autoencoder's output has its "
                             "input's shape")
        out[start:start + len(batch)] = result
    return out if codes is None else (out, codes)
