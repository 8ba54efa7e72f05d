"""``anomaly serve``: the scoring service (:mod:`anomaly.service`). Like the rest of the
command line it imports nothing heavy at module level; the service itself never imports
TensorFlow."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..choices import LogFormat
from ..exceptions import InputError


def serve(
    model_dir: Annotated[list[str], typer.Option(
        "--model-dir", "-m",
        help="A model directory to serve (with model.onnx), named after its last path "
             "component, or NAME=DIR. Repeat for several models.")] = ["model"],
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
        help="Largest request body, MiB (413 beyond).", min=0.001)] = 16.0,
    max_concurrent: Annotated[int, typer.Option(
        help="Inference requests scored at once; one more is refused with 503 and "
             "Retry-After.", min=1)] = 4,
    request_timeout: Annotated[float, typer.Option(
        help="Seconds a request body may take to arrive (408) and to be scored (504).",
        min=0.1)] = 30.0,
    max_beats: Annotated[int, typer.Option(
        help="Most beats in one inference request.", min=1)] = 100_000,
    log_format: Annotated[LogFormat, typer.Option(
        help="Log lines on stderr: JSON lines (one per request) or text.")] = LogFormat.json,
) -> None:
    """Serve models over HTTP with the Open Inference Protocol (KServe V2): health, model
    metadata and inference at /v2/..., Prometheus metrics at /metrics.

    Models are scored on the ONNX runtime, without TensorFlow; each is loaded and probed
    before the port is taken (a bad model exits 3). SIGTERM or Ctrl-C stops the service
    gracefully: new connections are refused, requests already accepted are answered, and
    it exits 0.
    """
    from .. import logs
    from ..service.app import Settings
    from ..service.protocol import Limits
    from ..service.server import load_models, parse_model_specs, serve as run_service

    logs.configure(log_format.value)
    token = None
    if token_file is not None:
        token = token_file.read_text(errors="replace").strip()
        if not token or any(ch.isspace() for ch in token):
            raise InputError(f"{token_file}: the token file must hold one token, without "
                             "spaces")
    if not math.isfinite(max_body_mb) or not math.isfinite(request_timeout):
        raise InputError("--max-body-mb and --request-timeout must be finite numbers")
    models = load_models(parse_model_specs(model_dir))
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        logs.warning(f"serving on {host} without --token-file: whoever reaches it can score "
                     "beats and read the models' metadata", event="no_token")
    settings = Settings(max_body_bytes=int(max_body_mb * (1 << 20)),
                        max_concurrent=max_concurrent, request_timeout=request_timeout,
                        limits=Limits(max_rows=max_beats), token=token)
    run_service(models, settings, host, port)
