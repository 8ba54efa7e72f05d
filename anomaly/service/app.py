"""The service's HTTP application (Starlette, served by uvicorn: see :mod:`.server`).

Routes, as the Open Inference Protocol (KServe V2, REST) names them:

- ``GET /v2``: server metadata; ``GET /v2/health/live``, ``GET /v2/health/ready``;
- ``GET /v2/models/{model}``: a model's metadata; ``GET /v2/models/{model}/ready``;
- ``POST /v2/models/{model}/infer``: scores (``/versions/1/...`` alike);
- ``GET /metrics``: Prometheus metrics.

Errors are ``{"error": "..."}`` with a 4xx status (a 5xx for the server's own state: 503
when full, 504 past the request timeout). With a bearer token every route but the health
checks asks for it. Inference runs in a pool of ``max_concurrent`` threads; a request
beyond them is refused at once (503 with ``Retry-After``) before its body is read, and a
body is read up to ``max_body_bytes`` within ``request_timeout`` seconds, so that memory and
threads stay bounded whatever the clients send.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__, logs
from ..exceptions import first_line
from .metrics import ServiceMetrics
from .models import ServedModel
from .protocol import HEADER_LENGTH, Limits, RequestError, decode_request, encode_response


@dataclass(frozen=True)
class Settings:
    """How much the service takes: ``max_body_bytes`` per request body,
    ``max_concurrent`` inference requests at once, ``request_timeout`` seconds to read a
    body and to score it, ``limits`` on what one request holds, and the bearer ``token``
    every route but the health checks asks for (None: none)."""

    max_body_bytes: int = 16 << 20
    max_concurrent: int = 4
    request_timeout: float = 30.0
    limits: Limits = Limits()
    token: str | None = None


Handler = Callable[[Request], Awaitable[Response]]


class Service:
    """The state behind the routes: the models, the settings, the metrics, the pool of
    inference threads and how many requests hold one."""

    def __init__(self, models: dict[str, ServedModel], settings: Settings):
        self.models = models
        self.settings = settings
        self.metrics = ServiceMetrics(models)
        self.pool = ThreadPoolExecutor(settings.max_concurrent, thread_name_prefix="anomaly-infer")
        self.busy = 0
        self.ready = False

    def route(self, path: str, handler: Handler, *, methods=("GET",), open_=False) -> Route:
        """``handler`` at ``path``, behind the token (unless ``open_``), timed, counted and
        logged under the route's template, its errors answered as ``{"error": ...}``."""

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                if not open_:
                    self._authorise(request)
                response = await handler(request)
            except RequestError as error:
                response = error_response(str(error), error.status)
            except Exception as error:  # A bug or an unusable model: one line, logged.
                logs.error(f"{request.method} {request.url.path}: {type(error).__name__}: "
                           f"{first_line(error)}", event="error", route=path)
                response = error_response(f"internal error ({type(error).__name__}: "
                                          f"{first_line(error)})", 500)
            self.metrics.observe(path, request.method, response.status_code,
                                 time.perf_counter() - started)
            logs.info(f"{request.method} {request.url.path} {response.status_code}",
                      event="request", method=request.method, path=request.url.path,
                      route=path, status=response.status_code,
                      seconds=round(time.perf_counter() - started, 6),
                      client=request.client.host if request.client else None)
            return response

        return Route(path, endpoint, methods=list(methods))

    def _authorise(self, request: Request) -> None:
        token = self.settings.token
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(),
                                                                 token.encode()):
            raise RequestError("a bearer token is required (Authorization: Bearer ...)", 401)

    def model(self, request: Request) -> ServedModel:
        name = request.path_params["model"]
        if name not in self.models or request.path_params.get("version", "1") != "1":
            raise RequestError(f"no model {name[:80]!r} (version "
                               f"{request.path_params.get('version', '1')[:20]!r}); served: "
                               f"{', '.join(self.models)}", 404)
        return self.models[name]

    async def body(self, request: Request) -> bytes:
        """The request's body, refused (413) beyond ``max_body_bytes`` and (408) when it
        takes longer than ``request_timeout`` to arrive."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise RequestError(f"the body is {declared[:20]} bytes; at most {limit}", 413)
        if request.headers.get("content-encoding", "identity") != "identity":
            raise RequestError("compressed request bodies are not accepted", 415)
        chunks, size = [], 0

        async def read() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestError(f"the body is over {limit} bytes", 413)
                chunks.append(chunk)

        try:
            await asyncio.wait_for(read(), self.settings.request_timeout)
        except asyncio.TimeoutError:
            raise RequestError(f"the body took over {self.settings.request_timeout:g} s to "
                               "arrive", 408) from None
        return b"".join(chunks)

    def _release(self, _work=None) -> None:
        self.busy -= 1

    async def infer(self, request: Request) -> Response:
        model = self.model(request)
        if self.busy >= self.settings.max_concurrent:
            response = error_response(f"{self.busy} requests are being scored, the most at "
                                      "once; retry shortly", 503)
            response.headers["Retry-After"] = "1"
            return response
        self.busy += 1
        try:
            body = await self.body(request)
        except BaseException:
            self.busy -= 1
            raise
        work = asyncio.get_running_loop().run_in_executor(
            self.pool, score, model, body, request.headers.get(HEADER_LENGTH),
            self.settings.limits)
        # The place is given back when the thread ends, which a timeout cannot hasten.
        work.add_done_callback(self._release)
        done, _ = await asyncio.wait({work}, timeout=self.settings.request_timeout)
        if not done:
            return error_response(f"scoring took over {self.settings.request_timeout:g} s",
                                  504)
        content, headers, rows, anomalies = work.result()
        self.metrics.scored(model.name, rows, anomalies)
        return Response(content, headers=headers, media_type="application/json")


def score(model: ServedModel, body: bytes, header: str | None,
          limits: Limits) -> tuple[bytes, dict[str, str], int, int]:
    """One inference request, in a pool thread: the response's body and headers, the beats
    scored and the anomalies flagged."""
    request = decode_request(body, header, model.inputs, model.outputs, limits)
    outputs = model.infer(request)
    parameters = {"threshold": float(model.detector.threshold_)}
    content, headers = encode_response(model.name, request, outputs, model.outputs,
                                       parameters)
    return content, headers, len(outputs["score"]), int(outputs["is_anomaly"].sum())


def error_response(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(models: dict[str, ServedModel], settings: Settings = Settings()) -> Starlette:
    """The application serving ``models`` (by name), loaded and probed beforehand."""
    service = Service(models, settings)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "anomaly", "version": __version__,
                             "extensions": ["binary_tensor_data"]})

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 503)

    async def model_metadata(request: Request) -> Response:
        return JSONResponse(service.model(request).metadata())

    async def model_ready(request: Request) -> Response:
        service.model(request)
        return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 503)

    async def metrics(request: Request) -> Response:
        content, media_type = service.metrics.exposition()
        return Response(content, media_type=media_type)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        service.ready = True
        yield
        # Shutting down (SIGTERM): no longer ready, so a balancer sends no more requests.
        service.ready = False
        service.pool.shutdown(wait=True)

    async def not_found(request: Request, error: HTTPException) -> Response:
        return error_response(f"{error.detail}: {request.method} {request.url.path[:200]}",
                              error.status_code)

    routes = [service.route("/v2", server_metadata),
              service.route("/v2/health/live", live, open_=True),
              service.route("/v2/health/ready", ready, open_=True),
              service.route("/metrics", metrics)]
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        routes += [service.route(prefix, model_metadata),
                   service.route(prefix + "/ready", model_ready),
                   service.route(prefix + "/infer", service.infer, methods=("POST",))]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: not_found})
