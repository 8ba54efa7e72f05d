"""``anomaly serve``: the scoring service, speaking the Open Inference Protocol (KServe V2,
REST) so that a KServe or Triton client's code scores beats unchanged.

Layers, one way: :mod:`.protocol` (the protocol's tensors, JSON and binary),
:mod:`.models` (a model directory served on the ONNX runtime, scored through the
pipeline's own :func:`anomaly.scoring.pipeline.score_block`), :mod:`.uploads` (a recording
or beats CSV sent in a request, scored by the pipeline's own sources and loop, streamed
back), :mod:`.live` (a live ECG stream over a WebSocket, its beats found online by
:mod:`anomaly.recordings.live`), :mod:`.settings`, :mod:`.metrics` (Prometheus), :mod:`.app` (the HTTP routes, limits and token) and :mod:`.server`
(uvicorn). Nothing here imports TensorFlow.
"""
