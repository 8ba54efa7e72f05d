"""The peer ``scripts/benchmark_service.py`` measures ``anomaly serve`` against: MLServer
(Seldon's Open Inference Protocol server, which KServe runs Python models on) serving the
same model directory through a custom runtime, the way a team already on MLServer would
serve it.

The runtime loads and scores the model as the service does (``load_served_model`` on the
ONNX runtime, probed once; ``ServedModel.infer``, with its range check and flags), so what
differs is the server around it. MLServer's REST endpoint takes tensors in JSON only: the
binary tensor extension is Triton's and ``anomaly serve``'s, not MLServer's (it offers
gRPC instead, not measured here).

:func:`write_repository` lays out what ``mlserver start DIR`` reads: this file, the
server's ``settings.json`` and the model's ``model-settings.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class AnomalyRuntime(MLModel):
    """An ``anomaly`` model directory, scored on the ONNX runtime: input ``beats``
    ``[-1, n]`` FP32, outputs ``score`` FP32 and ``is_anomaly`` BOOL, as the service's."""

    async def load(self) -> bool:
        from anomaly.service.models import load_served_model

        self.model = load_served_model(self.name, await get_model_uri(self._settings))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        from anomaly.service.models import BEATS_INPUT, FLAG_OUTPUT, SCORE_OUTPUT
        from anomaly.service.protocol import InferRequest

        beats = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float64)
        outputs = self.model.infer(InferRequest(payload.id, {BEATS_INPUT: beats}))
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(SCORE_OUTPUT,
                                              outputs[SCORE_OUTPUT].astype(np.float32)),
                     NumpyCodec.encode_output(FLAG_OUTPUT, outputs[FLAG_OUTPUT])])


def write_repository(directory: Path, model_dir: Path, name: str, port: int,
                     parallel_workers: int) -> None:
    """What ``mlserver start directory`` serves: ``model_dir`` as ``name`` on ``port``
    (REST; gRPC and metrics on the two ports after it), with ``parallel_workers``
    inference processes (MLServer's default is 1; 0 scores in the server's own process)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(__file__, directory / "mlserver_runtime.py")
    (directory / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": port + 1,
        "metrics_port": port + 2, "parallel_workers": parallel_workers,
        "debug": False}))
    (directory / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_runtime.AnomalyRuntime",
        "parameters": {"uri": str(model_dir.resolve())}}))
