"""A model directory as the service serves it: loaded on the ONNX runtime (no TensorFlow),
probed, described as the Open Inference Protocol's tensors, and scoring requests through
the same function the command line's pipeline scores a block with.

A model takes the input ``beats``, shape ``[n, samples]`` FP32; a model fitted on a
recording with the RR context also takes ``rr_intervals``, shape ``[n, 3]`` FP32: each
beat's ``rr_prev_s``, ``rr_next_s`` and ``rr_local_mean_s`` (seconds; 0 where unknown,
as for the first beat of a recording). It answers ``score`` FP32 and ``is_anomaly``
BOOL, shape ``[n]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import InputError, ModelError
from ..io.beats import Beats
from ..model.context import beat_context
from ..scoring.base import ModelLimits
from .protocol import INPUT_TYPE, MODEL_VERSION, InferRequest, RequestError, TensorSpec

#: The input tensor of beats' samples, and of the columns their context is computed from
#: for a model with one (the RR context's: ``rr_prev_s``, ``rr_next_s``,
#: ``rr_local_mean_s``).
BEATS_INPUT = "beats"
RR_INPUT = "rr_intervals"
SCORE_OUTPUT, FLAG_OUTPUT = "score", "is_anomaly"
OUTPUTS = (TensorSpec(SCORE_OUTPUT, "FP32", (-1,)), TensorSpec(FLAG_OUTPUT, "BOOL", (-1,)))


@dataclass(frozen=True)
class ServedModel:
    """A loaded model under its ``name``: its ``detector`` (ONNX runtime) and the tensors
    it takes (``inputs``) and gives (:data:`OUTPUTS`)."""

    name: str
    directory: Path
    detector: Any
    inputs: tuple[TensorSpec, ...]

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return OUTPUTS

    @property
    def label(self) -> str:
        """The model as messages to clients name it: by the name it is served under, not
        by where its directory lies on the server."""
        from ..scoring.fitted_kind import model_label

        return model_label(self.name)

    def metadata(self) -> dict[str, Any]:
        """The model's metadata response: name, version, platform, tensors, and in
        ``parameters`` its threshold, the error it is on and the score (``"mse x code
        distance"`` with the code's factor), calibration, context and provenance."""
        detector = self.detector
        parameters = {"threshold": float(detector.threshold_),
                      "error_metric": detector.error_metric_,
                      "score": detector.score_name,
                      "threshold_k": float(detector.params_["threshold_k"]),
                      "calibration": detector.calibration_.to_json(),
                      "context": list(detector.scaling_.context),
                      "model_sha256": detector.model_sha256_,
                      "provenance": detector.provenance_.to_json()}
        context = beat_context(detector.scaling_.context)
        if context is not None:
            parameters[f"{RR_INPUT}_columns"] = list(context.columns)
        return {"name": self.name, "versions": [MODEL_VERSION], "platform": "onnxruntime_onnx",
                "inputs": [spec.as_json() for spec in self.inputs],
                "outputs": [spec.as_json() for spec in OUTPUTS], "parameters": parameters}

    def infer(self, request: InferRequest) -> dict[str, np.ndarray]:
        """The scores and flags of a request's beats.

        Raises
        ------
        RequestError
            400 for a sample outside the range the model can score (naming the beat).
        """
        from ..scoring.pipeline import score_block, with_context

        values = request.inputs[BEATS_INPUT]
        low, high = ModelLimits.of(self.detector).value_range
        outside = (values < low) | (values > high)
        if outside.any():
            row, column = np.argwhere(outside)[0]
            raise RequestError(f"input '{BEATS_INPUT}' row {row}: sample {column} = "
                               f"{values[row, column]:.6g} is outside the range the model can "
                               f"score [{low:.6g}, {high:.6g}]")
        context = beat_context(self.detector.scaling_.context)
        ids = {} if context is None else dict(zip(context.columns, request.inputs[RR_INPUT].T))
        block = Beats(values, np.arange(len(values), dtype=np.int64), ids)
        try:
            block = with_context(block, context, f"model '{self.name}'")
            scores, flags = score_block(self.detector, block, f"model '{self.name}' row")
        except InputError as error:
            raise RequestError(str(error)) from None
        return {SCORE_OUTPUT: scores, FLAG_OUTPUT: flags}


def load_served_model(name: str, directory: str | os.PathLike) -> ServedModel:
    """Load ``directory`` on the ONNX runtime and probe it with one beat.

    Raises
    ------
    ModelError
        As :meth:`AutoencoderDetector.load`, for a directory without ``model.onnx``
        (``anomaly export`` adds it), a context scoring does not know, or a probe that
        does not give a finite score.
    """
    from ..model import AutoencoderDetector

    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"{directory}: no such model directory ('anomaly fit' makes one; "
                         "'anomaly demo' leaves one in anomaly-demo/model)")
    if not (directory / "model.onnx").is_file():
        raise ModelError(f"{directory}: no model.onnx; the service scores on the ONNX runtime "
                         f"('anomaly export -m {directory}' adds it)")
    detector = AutoencoderDetector.load(directory, runtime="onnx")
    limits = ModelLimits.of(detector)
    inputs = (TensorSpec(BEATS_INPUT, INPUT_TYPE, (-1, limits.samples)),)
    context = beat_context(detector.scaling_.context)
    if context is not None:
        inputs += (TensorSpec(RR_INPUT, INPUT_TYPE, (-1, len(context.columns))),)
    model = ServedModel(name, directory, detector, inputs)
    probe = {BEATS_INPUT: np.full((1, limits.samples), sum(limits.value_range) / 2)}
    if context is not None:
        probe[RR_INPUT] = np.ones((1, len(context.columns)))
    score = model.infer(InferRequest(None, probe))[SCORE_OUTPUT]
    if not np.isfinite(score).all():
        raise ModelError(f"{directory}: the model's score of a probe beat is not a number")
    return model
