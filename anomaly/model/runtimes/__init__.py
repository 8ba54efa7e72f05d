"""Runtimes: what runs a fitted model forward when scoring (see :mod:`.base` for the role).

``keras`` loads ``model.keras`` with Keras (TensorFlow); ``onnx`` loads ``model.onnx`` with
onnxruntime; ``auto`` takes ``model.onnx`` when the model directory records one, else
``model.keras`` (a model directory from before ONNX export).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ...choices import RuntimeName
from ...exceptions import ModelError
from .base import INFERENCE_BATCH, Runtime

if TYPE_CHECKING:
    from ..directory import ModelRecord

__all__ = ["INFERENCE_BATCH", "Runtime", "load_runtime", "resolve_runtime"]


def resolve_runtime(directory: str | os.PathLike, record: "ModelRecord",
                    runtime: str = "auto") -> str:
    """The runtime a model directory is scored with: ``"onnx"`` or ``"keras"``.

    Raises
    ------
    ModelError
        ``runtime="onnx"`` for a model directory without ``model.onnx``.
    """
    runtime = RuntimeName(runtime).value
    has_onnx = record.onnx is not None
    if runtime == "onnx" and not has_onnx:
        raise ModelError(f"{directory}: has no model.onnx (a model from before ONNX export); "
                         f"add one with 'anomaly export -m {directory}', or score with "
                         "--runtime keras")
    if runtime == "auto":
        return "onnx" if has_onnx else "keras"
    return runtime


def load_runtime(directory: str | os.PathLike, record: "ModelRecord",
                 runtime: str = "auto") -> Runtime:
    """The runtime of a model directory, loaded and checked.

    Parameters
    ----------
    directory : path
    record : ModelRecord
        The directory's, from :func:`anomaly.model.directory.read_model`.
    runtime : {"auto", "onnx", "keras"}, default "auto"

    Raises
    ------
    ModelError
        The chosen model file is missing, fails its SHA-256 check or does not load.
    MissingDependencyError
        ``keras`` in an installation without TensorFlow.
    """
    from ..code_memory import code_size as code_size_of_memory
    from ..directory import MODEL_FILE, ONNX_FILE, load_keras_model, model_file

    name = resolve_runtime(directory, record, runtime)
    shape = record.scaling.input_shape
    code_size = code_size_of_memory(record.code_memory)
    if name == "onnx":
        from .onnx_runtime import MAX_ONNX_BYTES, load_onnx_runtime

        path = model_file(directory, ONNX_FILE, MAX_ONNX_BYTES)
        return load_onnx_runtime(path, record.onnx["sha256"], shape, code_size=code_size)
    from .keras_runtime import KerasRuntime

    return KerasRuntime(load_keras_model(directory, shape), code_size=code_size,
                        source=Path(directory) / MODEL_FILE)
