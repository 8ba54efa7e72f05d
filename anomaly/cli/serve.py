"""``anomaly serve``: the scoring service (:mod:`anomaly.service`). Like the rest of the
command line it imports nothing heavy at module level; the service itself never imports
TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..choices import LogFormat
from .options import finite
from ..service.settings import Limits, Settings


_SETTINGS, _LIMITS = Settings(), Limits()
#: The largest size limit an option takes, MiB (1 TiB), and the longest timeout, seconds
#: (a day): beyond, a value is a mistake, and would overflow what is computed from it.
MAX_MB, MAX_TIMEOUT_S = float(1 << 20), 86400.0


def serve(
    model_dir: Annotated[Optional[list[str]], typer.Option(
        "--model-dir", "-m",
        help="A model directory to serve (with model.onnx), named after its last path "
             "component, or NAME=DIR. Repeat for several models. [default: model]",
        show_default=False)] = None,
    host: Annotated[str, typer.Option(
        help="Address to listen on. The default takes no connection from another machine; "
             "give 0.0.0.0 (with --token-file) to serve the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        help="Port to listen on (0: a free one, given in the first log line).",
        min=0, max=65535)] = 8080,
    token_file: Annotated[Optional[Path], typer.Option(
        help="A file holding a bearer token: every request but the health checks must then "
             "send 'Authorization: Bearer TOKEN'.", dir_okay=False, exists=True,
        readable=True)] = None,
    max_body_mb: Annotated[float, typer.Option(
        help="Largest inference request body, MiB (413 beyond).",
        callback=lambda value: finite(
            value, "--max-body-mb", minimum=0.001, maximum=MAX_MB)
    )] = _SETTINGS.max_body_bytes / (1 << 20),
    max_json_mb: Annotated[float, typer.Option(
        help="Largest JSON in an inference request, MiB (413 beyond; send larger tensors in "
             "binary).",
        callback=lambda value: finite(
            value, "--max-json-mb", minimum=0.001, maximum=MAX_MB)
    )] = _SETTINGS.max_json_bytes / (1 << 20),
    max_upload_mb: Annotated[float, typer.Option(
        help="Largest recording or beats CSV sent to /v2/models/{model}/score, MiB (413 "
             "beyond).",
        callback=lambda value: finite(
            value, "--max-upload-mb", minimum=0.001, maximum=MAX_MB)
    )] = _SETTINGS.max_upload_bytes / (1 << 20),
    max_concurrent: Annotated[int, typer.Option(
        help="Requests scored at once (inference and uploads).",
        min=1)] = _SETTINGS.max_concurrent,
    max_queued: Annotated[int, typer.Option(
        help="Requests waiting in turn for a place, each up to --request-timeout seconds, "
             "before its body is read; one more is refused with 503 and Retry-After.",
        min=0)] = _SETTINGS.max_queued,
    max_streams: Annotated[int, typer.Option(
        help="Live ECG streams open at once (/v2/models/{model}/stream); one more is refused "
             "with 503.", min=1)] = _SETTINGS.max_streams,
    request_timeout: Annotated[float, typer.Option(
        help="Seconds a request may wait for a place (503), its body (or an upload) take "
             "to arrive (408), an inference request to be scored (504), and a live stream "
             "may send nothing.",
        callback=lambda value: finite(
            value, "--request-timeout", minimum=0.1, maximum=MAX_TIMEOUT_S)
    )] = _SETTINGS.request_timeout,
    max_beats: Annotated[int, typer.Option(
        help="Most beats in one inference request.", min=1)] = _LIMITS.max_rows,
    log_format: Annotated[LogFormat, typer.Option(
        help="Log lines on stderr: JSON lines (one per request) or text.")] = LogFormat.json,
) -> None:
    """Serve models over HTTP with the Open Inference Protocol (KServe V2): health, model
    metadata and inference at /v2/..., recordings and beats CSVs scored at
    /v2/models/{model}/score, a live lead's beats scored as they come over the WebSocket
    /v2/models/{model}/stream?fs=HZ, Prometheus metrics at /metrics.

    Models are scored on the ONNX runtime, without TensorFlow; each is loaded and probed
    before the port is taken (a bad model exits 3). SIGTERM or Ctrl-C stops the service
    gracefully: new connections are refused, requests already accepted are answered, and
    it exits 0.
    """
    from .. import logs
    from ..service.server import load_models, parse_model_specs, read_token
    from ..service.server import serve as run_service

    logs.configure(log_format.value)
    token = None if token_file is None else read_token(token_file)
    models = load_models(parse_model_specs(model_dir or ["model"]))
    settings = Settings(max_body_bytes=int(max_body_mb * (1 << 20)),
                        max_json_bytes=int(max_json_mb * (1 << 20)),
                        max_upload_bytes=int(max_upload_mb * (1 << 20)),
                        max_concurrent=max_concurrent, max_queued=max_queued,
                        max_streams=max_streams,
                        request_timeout=request_timeout,
                        limits=Limits(max_rows=max_beats), token=token)
    run_service(models, settings, host, port)
