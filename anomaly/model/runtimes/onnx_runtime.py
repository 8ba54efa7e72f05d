"""The ONNX runtime: the model exported to ONNX, run by onnxruntime without TensorFlow.

Exporting needs Keras (and tf2onnx, through ``keras.Model.export``): it happens on the fit
path, once, and the export is checked against Keras on a probe batch before it is kept.
Scoring needs only ``onnxruntime``, which imports in a tenth of a second where TensorFlow
takes several, and holds a fraction of its memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...exceptions import ModelError, first_line
from .base import in_batches

#: Largest reconstruction difference between Keras and the exported model that the export
#: accepts (in scaled units, on a probe batch); measured differences are about 1e-7.
EXPORT_TOLERANCE = 1e-5
#: Largest ``model.onnx`` loaded: the dense ECG model is 0.2 MB, the MNIST VAE 1 MB.
MAX_ONNX_BYTES = 1 << 30
#: Threads of one forward pass. Scoring parses the next block in a second thread while
#: this one runs (see :mod:`anomaly.scoring.pipeline`), so on the machines the tool is
#: measured on (2 cores) one thread each keeps both busy without oversubscribing them.
INTRA_OP_THREADS = 1


class OnnxRuntime:
    """Reconstruct with an onnxruntime ``InferenceSession``.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        Of a model with one input and one output of the same shape.
    """

    name = "onnx"

    def __init__(self, session) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def reconstruct(self, scaled: np.ndarray) -> np.ndarray:
        return in_batches(scaled, lambda batch: self.session.run(None, {self.input_name: batch})[0])


def export_onnx(model, path: str | os.PathLike, *,
                name: str | os.PathLike | None = None) -> dict[str, Any]:
    """Export a Keras autoencoder's forward pass to ONNX at ``path`` and check it.

    The variational autoencoder is exported decoding its code's mean, as it scores.

    Parameters
    ----------
    model : keras.Model
        A fitted autoencoder of :mod:`anomaly.model.networks`.
    path : path
        The ``.onnx`` file to write.
    name : path, optional
        What error messages call the file (its final place, when ``path`` is a staging
        directory's); default ``path``.

    Returns
    -------
    dict
        The metadata entry for the file: its ``sha256`` and the exporter's versions.

    Raises
    ------
    ModelError
        When the exporter fails, or the exported model's reconstructions of a probe
        batch differ from Keras's by more than ``EXPORT_TOLERANCE``.
    """
    import onnxruntime
    import tf2onnx

    from .._tensorflow import quietly
    from ...io.writers import file_sha256
    from ..networks import forward_model, keras

    forward = forward_model(model)
    shape = tuple(forward.input_shape[1:])
    probe = np.random.default_rng(0).uniform(size=(64, *shape)).astype(np.float32)
    # Called once before exporting: Keras exports only a model that has been called.
    expected = keras.ops.convert_to_numpy(forward(probe, training=False))
    name = name or path
    try:
        with quietly():
            forward.export(str(path), format="onnx", verbose=False)
        got = OnnxRuntime(_session(path)).reconstruct(probe)
    except Exception as error:  # The exporter (tf2onnx) and onnxruntime raise many types.
        raise ModelError(f"{name}: the ONNX export failed ({first_line(error)})") from error
    difference = float(np.max(np.abs(got - expected)))
    if not difference <= EXPORT_TOLERANCE:
        raise ModelError(f"{name}: the exported model's reconstructions differ from Keras's "
                         f"by {difference:.3g} (at most {EXPORT_TOLERANCE:g} is accepted)")
    return {"sha256": file_sha256(path), "max_difference": difference,
            "exporter": {"keras": keras.__version__, "tf2onnx": tf2onnx.__version__,
                         "onnxruntime": onnxruntime.__version__}}


def load_onnx_runtime(path: Path, sha256: str, input_shape: tuple[int, ...]) -> OnnxRuntime:
    """``model.onnx``, checked against its recorded SHA-256, loaded and checked again.

    After loading: one input and one output, a batch of inputs of ``input_shape`` maps to
    a batch of the same shape, and the outputs are finite.

    Raises
    ------
    ModelError
        Naming the file and the first problem found.
    """
    from ...io.writers import file_sha256

    try:
        size = path.stat().st_size
        if size > MAX_ONNX_BYTES:
            raise ModelError(f"{path}: {size:,} bytes; at most {MAX_ONNX_BYTES:,} are loaded")
        digest = file_sha256(path)
    except OSError as error:
        raise ModelError(f"{path}: cannot be read ({error.strerror or error})") from error
    if digest != sha256:
        raise ModelError(f"{path}: does not match the SHA-256 recorded in metadata.json "
                         "(modified or replaced since it was saved)")
    try:
        session = _session(path)
    except Exception as error:  # onnxruntime raises its own types for a corrupt model.
        raise ModelError(f"{path}: cannot be loaded ({first_line(error)})") from error
    if len(session.get_inputs()) != 1 or len(session.get_outputs()) != 1:
        raise ModelError(f"{path}: has {len(session.get_inputs())} inputs and "
                         f"{len(session.get_outputs())} outputs; an autoencoder has one of each")
    runtime = OnnxRuntime(session)
    for rows in (1, 2):
        probe = np.full((rows, *input_shape), 0.5, dtype=np.float32)
        try:
            output = session.run(None, {runtime.input_name: probe})[0]
        except Exception as error:  # onnxruntime's own types, for a shape it cannot take.
            raise ModelError(f"{path}: does not take inputs of shape {input_shape} "
                             f"({first_line(error)})") from error
        if np.shape(output) != probe.shape:
            raise ModelError(f"{path}: maps inputs of shape {input_shape} to "
                             f"{np.shape(output)[1:]}; an autoencoder's output has its "
                             "input's shape")
        if not np.isfinite(output).all():
            raise ModelError(f"{path}: reconstructions are not finite numbers (NaN or "
                             "infinite); such a model scores nothing")
    return runtime


def _session(path: str | os.PathLike):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = INTRA_OP_THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # Errors only: its warnings would reach a cron job's mail.
    return onnxruntime.InferenceSession(str(path), sess_options=options,
                                        providers=["CPUExecutionProvider"])
