"""The service's HTTP application (Starlette, served by uvicorn: see :mod:`.server`).

Routes, as the Open Inference Protocol (KServe V2, REST) names them:

- ``GET /v2``: server metadata; ``GET /v2/health/live``, ``GET /v2/health/ready``;
- ``GET /v2/models/{model}``: a model's metadata; ``GET /v2/models/{model}/ready``;
- ``POST /v2/models/{model}/infer``: scores (``/versions/1/...`` alike);
- ``POST /v2/models/{model}/score?format=edf|wfdb|signal-csv|beats-csv``: a recording or
  beats CSV in the body (a WFDB record as multipart/form-data), each beat's score streamed
  back (an extension: see :mod:`.uploads`);
- ``POST /v2/models/{model}/report?format=...``: the same upload's HTML report;
- ``WS /v2/models/{model}/stream?fs=HZ``: a live lead's samples in, each beat's score out
  (an extension: see :mod:`.live`);
- ``GET /``: the web page that sends a file to it (:mod:`.page`);
- ``GET /metrics``: Prometheus metrics.

Errors are ``{"error": "..."}`` with a 4xx status (a 5xx for the server's own state: 503
when full, 504 past the request timeout). With a bearer token every route but the health
checks asks for it. Inference runs in a pool of ``max_concurrent`` threads (a body of up
to :data:`INLINE_BYTES`, a beat or two, on the event loop itself); a request beyond them
waits its turn before its body is read beyond :data:`WATCHED_BYTES` (up to
``max_queued`` of them, each up
to ``request_timeout`` seconds: :mod:`.places`), and one beyond those, or whose turn does
not come in time, is refused (503 with ``Retry-After``); a body is read up to
``max_body_bytes`` within ``request_timeout`` seconds, so that memory and threads stay
bounded whatever the clients send.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Awaitable, Callable, Iterator

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import __version__, logs
from ..exceptions import first_line
from ..model.runtimes.onnx_runtime import in_calling_thread
from .metrics import ServiceMetrics
from .models import FLAG_OUTPUT, SCORE_OUTPUT, ServedModel
from .protocol import (HEADER_LENGTH, MODEL_VERSION, Failure, RequestError, decode_request,
                       encode_response)
from .live import (GOING_AWAY, INTERNAL, POLICY, LiveStream, StreamError, StreamOptions,
                   control)
from .page import web_page
from .places import Places, Turn
from .settings import Settings
from .uploads import ScoreStream, Upload, UploadOptions, html_report, prepare


Handler = Callable[[Request], Awaitable[Response]]
#: The status counted and logged for a client that left before its request was read (as
#: nginx counts it): not a 5xx, which would say the server failed.
CLIENT_GONE = 499
#: The route a request matching none is counted and logged under (a 404 or 405).
UNMATCHED = "unmatched"
#: The methods the routes take, as metrics labels.
METHODS = frozenset({"GET", "POST"})
#: An inference body of at most this many bytes (one or two beats of 140 samples in JSON as
#: clients write it, up to 28 written compactly; up to 14 in binary) is scored on the event
#: loop, not in a pool thread. Scoring the demo's beat holds the interpreter for about
#: 0.3 ms, as parsing its HTTP does, so the loop waits little; handing it to a thread and
#: back cost more than that: under 64 clients of one beat a request, 1,623-1,634 answers a
#: second inline against 937-948 through the pool (wrk, the same hour, with the httptools
#: parser then measured: docs/benchmarks.md, "The service"). ``--request-timeout`` does not
#: bound its scoring (504). A model with wider beats or a larger network holds the loop
#: longer for its 8 KiB (not measured).
INLINE_BYTES = 8192
#: Of a request waiting its turn for a place, how much of its body is read while it waits
#: (then handed to its reader), so that a client leaving the queue is noticed at once
#: (:meth:`Service.take_place`): uvicorn's own buffer of a body before it stops reading
#: the socket (its high-water mark). It is checked after each read, and one read brings
#: what uvicorn has buffered (up to this and one socket read more): a waiting request
#: holds a few hundred KiB at most. Past it, the client's leaving is noticed at its turn.
WATCHED_BYTES = 64 << 10


class Service:
    """The state behind the routes: the models, the settings, the metrics, the pool of
    inference threads and how many requests hold one."""

    def __init__(self, models: dict[str, ServedModel], settings: Settings):
        self.models = models
        self.settings = settings
        self.places = Places(settings.max_concurrent, settings.max_queued)
        self.metrics = ServiceMetrics(models, self.places)
        self.pool = ThreadPoolExecutor(settings.max_concurrent, thread_name_prefix="anomaly-infer")
        # Live streams open, counted on the event loop only (see _stream_place).
        self.streams = 0
        # Set while no live stream is open.
        self.no_streams = asyncio.Event()
        self.no_streams.set()
        # Set when the service stops: each live stream then ends with what it was sent.
        self.stopping = asyncio.Event()
        self.ready = False

    async def get_ready(self) -> None:
        """Say the service is ready once its models' requests can be answered in time.

        A live stream must give each beat within a second of its R peak, and the R-peak
        detector's library takes seconds to import: left to the first stream's first step,
        it made that stream's first beat late (docs/benchmarks.md, "Live ECG streams"). So
        with a model fitted on a recording (what streams and uploaded recordings are
        scored with) the library is imported first, in a thread while the port answers.
        A service of beat-set models alone (the demo's) is ready at once and spends the
        library's memory only when a recording or a stream comes. A failed import is
        logged, and the service made ready for inference, which does not need it."""
        try:
            if any(model.detector.provenance_.recording is not None
                   for model in self.models.values()):
                from ..recordings.peaks import import_detector

                seconds = await asyncio.to_thread(import_detector)
                logs.info(f"Live streams ready ({seconds:.1f} s to import their R-peak "
                          "detector)", event="streams_ready", seconds=round(seconds, 3))
        except Exception as error:  # A broken install.
            logs.warning(f"the live streams' R-peak detector cannot be imported "
                         f"({first_line(error)}); recordings and streams will fail",
                         event="streams_not_ready")
        finally:
            self.ready = not self.stopping.is_set()

    async def end_streams(self, seconds: float) -> None:
        """Tell the live streams the service is stopping, and give them ``seconds`` to
        send their last beats and summaries before their sockets are closed."""
        self.stopping.set()
        try:
            await asyncio.wait_for(self.no_streams.wait(), seconds)
        except asyncio.TimeoutError:
            pass  # Their sockets are closed with the server's connections.

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
                response = error_response(str(error), error.status, error.headers)
            except ClientDisconnect:
                # Not the server's failure: counted and logged apart from the 5xx.
                response = error_response("the client left before its request was read",
                                          CLIENT_GONE)
            except Exception as error:  # A bug or an unusable model: one line, logged.
                logs.error(f"{request.method} {logs.printable(request.url.path)}: "
                           f"{type(error).__name__}: "
                           f"{first_line(error)}", event="error", route=path)
                response = error_response(f"internal error ({type(error).__name__}: "
                                          f"{first_line(error)})", 500)
            self.answered(request, path, response, started)
            return response

        return Route(path, endpoint, methods=list(methods))

    def answered(self, request: Request, route: str, response: Response,
                 started: float) -> None:
        """Count ``response`` in the metrics under ``route`` (a route's template, or
        :data:`UNMATCHED`) and log it: one JSON line per request."""
        seconds = time.perf_counter() - started
        # A method no route has (anything a client writes) is counted as "other": a
        # metrics label takes few values.
        method = request.method if request.method in METHODS else "other"
        self.metrics.observe(route, method, response.status_code, seconds)
        # The scope's path: the URL that request.url would build takes as long again as
        # the rest of this line (profiled under load).
        logs.info(f"{request.method[:16]} {logs.printable(request.scope['path'][:200])} "
                  f"{response.status_code}", event="request", method=request.method[:16],
                  path=request.scope["path"][:200], route=route,
                  status=response.status_code, seconds=round(seconds, 6),
                  client=request.client.host if request.client else None)

    def _authorise(self, request: Request | WebSocket) -> None:
        token = self.settings.token
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(),
                                                                 token.encode()):
            # RFC 6750's challenge: the scheme, and an error only for a bearer token that
            # was sent and refused (none for no credentials, or another scheme's).
            refused = scheme.lower() == "bearer" and credentials.strip()
            challenge = 'Bearer realm="anomaly"' + (', error="invalid_token"' if refused else "")
            raise RequestError("a valid bearer token is required (Authorization: Bearer "
                               "...)", 401, {"WWW-Authenticate": challenge})

    def model(self, request: Request | WebSocket) -> ServedModel:
        name = request.path_params["model"]
        version = request.path_params.get("version", MODEL_VERSION)
        if name not in self.models or version != MODEL_VERSION:
            raise RequestError(f"no model {name[:80]!r} (version {version[:20]!r}); served: "
                               f"{', '.join(self.models)} (version {MODEL_VERSION})", 404)
        return self.models[name]

    @staticmethod
    def check_headers(request: Request, limit: int) -> None:
        """Refuse a body its headers say cannot be taken: declared over ``limit`` bytes
        (413) or compressed (415). Before the request takes a place or waits for one: an
        ``Expect: 100-continue`` client is then not invited to send it."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise RequestError(f"the body is {declared[:20]} bytes; at most {limit}", 413)
        if request.headers.get("content-encoding", "identity") != "identity":
            raise RequestError("compressed request bodies are not accepted", 415)

    async def read_body(self, request: Request, limit: int, write: Callable[[bytes], None]
                        ) -> None:
        """Hand the request's body (its headers checked by :meth:`take_place`) to
        ``write`` chunk by chunk, refused (413) beyond ``limit`` bytes and (408) when it
        takes longer than ``request_timeout`` to arrive."""
        size = 0

        async def read() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestError(f"the body is over {limit} bytes", 413)
                write(chunk)

        try:
            await asyncio.wait_for(read(), self.settings.request_timeout)
        except asyncio.TimeoutError:
            raise RequestError(f"the body took over {self.settings.request_timeout:g} s to "
                               "arrive", 408) from None

    async def take_place(self, request: Request, limit: int) -> Request | Response:
        """A place among the ``max_concurrent`` (waiting in turn, up to ``max_queued``
        requests for up to ``request_timeout``), or the 503 that says to come back; its
        headers checked first against ``limit``, the body's (:meth:`check_headers`).

        With a place, the request to read the body from: while ``request`` waits its
        turn, what its client sends is read (up to :data:`WATCHED_BYTES`) and handed to the
        body's reader first, so that a client that leaves the queue is noticed at once
        (ClientDisconnect, a 499): its place in the queue goes to the next request instead
        of being held until its turn."""
        self.check_headers(request, limit)
        turn = self.places.take_now()
        if turn is None:
            turn, request = await self._wait_in_turn(request)
        if turn is Turn.TAKEN:
            return request
        places = self.places
        return error_response(
            f"every place to score in is taken ({places.limit}) and the queue for one is "
            f"full ({places.queued}); retry shortly" if turn is Turn.FULL else
            f"no place to score it came free within {self.settings.request_timeout:g} s; "
            "retry shortly", 503, {"Retry-After": "1"})

    async def _wait_in_turn(self, request: Request) -> tuple[Turn, Request]:
        """How ``request``'s wait in the queue ended, and the request to read its body
        from (what was read meanwhile handed over first); ClientDisconnect, holding
        nothing, when its client leaves first."""
        original = request.receive
        early: list[dict] = []
        read = 0
        wait = asyncio.ensure_future(self.places.take(self.settings.request_timeout))
        watch: asyncio.Future | None = asyncio.ensure_future(original())
        try:
            while not wait.done():
                await asyncio.wait({wait, watch} if watch else {wait},
                                   return_when=asyncio.FIRST_COMPLETED)
                if watch is None or not watch.done():
                    continue
                message = watch.result()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                early.append(message)
                read += len(message.get("body", b""))
                # Once the body has come whole, the next message is the client leaving.
                whole = not message.get("more_body", False)
                watching = not wait.done() and (whole or read < WATCHED_BYTES)
                watch = asyncio.ensure_future(original()) if watching else None
        except BaseException:
            if not wait.done():
                wait.cancel()  # Places.take gives back a place passed to it meanwhile.
                await asyncio.gather(wait, return_exceptions=True)
            elif not wait.cancelled() and wait.exception() is None \
                    and wait.result() is Turn.TAKEN:
                self.places.give_back()
            raise
        finally:
            if watch is not None:
                watch.cancel()
        if not early:
            return wait.result(), request
        replayed = iter(early)

        async def receive() -> dict:
            return next(replayed, None) or await original()

        return wait.result(), Request(request.scope, receive)

    async def infer(self, request: Request) -> Response:
        model = self.model(request)
        header = request.headers.get(HEADER_LENGTH)
        # JSON takes far more memory parsed than as bytes: a body that is all JSON has the
        # smaller limit; with binary tensors, the JSON part is checked when decoded.
        limit = self.settings.max_body_bytes
        if not header:
            limit = min(limit, self.settings.max_json_bytes)
        taken = await self.take_place(request, limit)
        if isinstance(taken, Response):
            return taken
        request = taken
        chunks: list[bytes] = []
        try:
            await self.read_body(request, limit, chunks.append)
        except BaseException:
            # The error's traceback may outlive this request in a reference cycle (through
            # the task that read the body): it keeps no bytes.
            chunks.clear()
            self.places.give_back()
            raise
        body = b"".join(chunks)
        del chunks
        loop = asyncio.get_running_loop()
        if len(body) <= INLINE_BYTES:
            work = loop.create_future()
            try:
                with in_calling_thread():
                    work.set_result(score(model, body, header, self.settings))
            except Exception as error:  # A bug: answered 500 below, its place given back.
                work.set_exception(error)
            finally:
                if not work.done():  # Whatever else was raised goes on up, its place back.
                    self.places.give_back()
        else:
            work = loop.run_in_executor(self.pool, score, model, body, header, self.settings)
        del body

        def finished(work: asyncio.Future) -> None:
            # When the thread ends, which a timeout cannot hasten: its place is given back,
            # and what it scored is counted (also after a 504).
            self.places.give_back()
            if not work.cancelled() and work.exception() is None:
                outputs = work.result()[2]
                if outputs is not None:
                    self.metrics.scored(model.name, len(outputs[SCORE_OUTPUT]),
                                        int(outputs[FLAG_OUTPUT].sum()))

        work.add_done_callback(finished)
        done, _ = await asyncio.wait({work}, timeout=self.settings.request_timeout)
        if not done:
            return error_response(f"scoring took over {self.settings.request_timeout:g} s",
                                  504)
        content, headers, outputs = work.result()
        if outputs is None:  # A request the model cannot score: content is the error.
            return error_response(content.message, content.status)
        return Response(content, headers=headers)

    async def receive_upload(self, request: Request) -> tuple[ServedModel, Upload] | Response:
        """The model asked for, and the body written as an upload (see :mod:`.uploads`),
        holding a place among the ``max_concurrent``; the 503 of :meth:`take_place` when
        none comes. On failure the place and the upload are given back."""
        model = self.model(request)
        options = UploadOptions.from_query(request.query_params)
        taken = await self.take_place(request, self.settings.max_upload_bytes)
        if isinstance(taken, Response):
            return taken
        request = taken
        upload = None
        try:
            upload = Upload(options, request.headers.get("content-type", ""))
            await self.read_body(request, self.settings.max_upload_bytes, upload.write)
            upload.finish()
        except BaseException:
            if upload is not None:
                upload.close()
            self.places.give_back()
            raise
        return model, upload

    async def score_upload(self, request: Request) -> Response:
        """A recording or beats CSV in the body, its scores streamed back as JSON lines."""
        received = await self.receive_upload(request)
        if isinstance(received, Response):
            return received
        model, upload = received
        try:
            source, warnings = await run_in_threadpool(prepare, model, upload)
        except BaseException:
            upload.close()
            self.places.give_back()
            raise

        def closed() -> None:
            self.places.give_back()
            if stream.summary is not None:
                self.metrics.scored(model.name, stream.summary["beats_scored"],
                                    stream.summary["anomalies"])

        stream = ScoreStream(model, upload, source, warnings, on_close=closed,
                             stall_seconds=self.settings.request_timeout)
        try:
            await run_in_threadpool(stream.start)
        except asyncio.CancelledError:
            # The client left while the first rows were scored: stop, in the background.
            asyncio.get_running_loop().run_in_executor(None, stream.close)
            raise
        return StreamingResponse(stream, media_type="application/x-ndjson",
                                 background=BackgroundTask(run_in_threadpool, stream.close))

    async def report(self, request: Request) -> Response:
        """A recording or beats CSV in the body, answered with its HTML report (the web
        page's)."""
        received = await self.receive_upload(request)
        if isinstance(received, Response):
            return received
        model, upload = received
        work = asyncio.get_running_loop().run_in_executor(self.pool, html_report, model, upload)

        def finished(work: asyncio.Future) -> None:
            # When the thread ends (not when a cancelled request stops waiting for it).
            upload.close()
            self.places.give_back()
            if not work.cancelled():
                work.exception()  # Read: it is answered below, or nobody is waiting.

        work.add_done_callback(finished)
        return HTMLResponse(await work)

    async def stream(self, websocket: WebSocket) -> None:
        """A live stream (see :mod:`.live`): refused before the socket opens when it cannot
        be taken, then its samples scored as they come until it ends; logged when it is
        refused and when it ends."""
        started = time.perf_counter()
        path = websocket.url.path
        try:
            self._authorise(websocket)
            model = self.model(websocket)
            options = StreamOptions.from_query(websocket.query_params)
            window = LiveStream.checked_window(model, options)
            # No await between this check and the count below: only the event loop counts.
            if self.streams >= self.settings.max_streams:
                raise RequestError(f"{self.settings.max_streams} live streams are open, the "
                                   "most at once; retry later", 503, {"Retry-After": "5"})
        except RequestError as error:
            response = error_response(str(error), error.status, error.headers)
            await websocket.send_denial_response(response)
            logs.info(f"WS {logs.printable(path)} {error.status}", event="request", method="WS", path=path,
                      route="stream", status=error.status)
            return
        ended, stream = "failed", None
        with self._stream_place():
            try:
                stream = await run_in_threadpool(LiveStream, model, options, window)
                ended = await self._stream(websocket, model, stream)
            finally:
                logs.info(f"WS {logs.printable(path)} {ended}", event="stream", path=path, model=model.name,
                          ended=ended, seconds=round(time.perf_counter() - started, 3),
                          samples=stream.segmenter.received if stream else 0,
                          beats=stream.scored if stream else 0,
                          client=websocket.client.host if websocket.client else None)

    @contextmanager
    def _stream_place(self) -> Iterator[None]:
        """A live stream's place, taken and given back: the count, the event that says
        none is open, the gauge. Taken on the event loop with no await since the check
        against ``max_streams``, so that two streams cannot both take the last place."""
        self.streams += 1
        self.no_streams.clear()
        self.metrics.streams.inc()
        try:
            yield
        finally:
            self.streams -= 1
            if not self.streams:
                self.no_streams.set()
            self.metrics.streams.dec()

    async def _stream(self, websocket: WebSocket, model: ServedModel, stream: LiveStream
                      ) -> str:
        """Score ``stream``'s samples as they come; how it ended: ``end`` (the client's
        end message), ``stopped`` (the service stopped: the samples sent were scored, the
        last beats and the summary sent, and the socket closed with 1001), ``left`` (the
        client closed), ``gone`` (it stopped reading for ``request_timeout`` seconds, or
        its connection broke), or the close code sent."""
        timeout = self.settings.request_timeout
        await websocket.accept()
        counted = (0, 0)

        async def send(messages: list) -> None:
            nonlocal counted
            for message in messages:
                # A client that stops reading fills the socket: after the timeout it is
                # taken as gone, and its place given back.
                try:
                    await asyncio.wait_for(
                        websocket.send_text(json.dumps(message, ensure_ascii=True)), timeout)
                except (asyncio.TimeoutError, RuntimeError, OSError):
                    raise ClientGone from None
            self.metrics.scored(model.name, stream.scored - counted[0],
                                stream.anomalies - counted[1])
            counted = stream.scored, stream.anomalies

        messages: asyncio.Queue = asyncio.Queue(QUEUED_MESSAGES)
        reader = asyncio.create_task(read_messages(websocket, messages))
        stopping = asyncio.create_task(self.stopping.wait())
        try:
            await send([stream.start()])
            waiting = None
            while True:
                if waiting is None and self.stopping.is_set():
                    # What the service had read before it stopped is taken as ever
                    # (samples scored, flushes answered), then the stream ends as if the
                    # client had ended it; nothing more is read (the summary's samples
                    # say how much was taken).
                    reader.cancel()
                    if messages.empty():
                        await send(await run_in_threadpool(stream.end))
                        await websocket.close(GOING_AWAY)
                        return "stopped"
                    waiting = messages.get_nowait()
                if waiting is None:
                    waiting = await next_message(messages, stopping, timeout)
                    if waiting is None:
                        continue
                message, waiting = waiting, None
                if message["type"] == "websocket.disconnect":
                    return "left"
                if message.get("bytes") is not None:
                    data, waiting = joined_samples(message, messages)
                    await send(await run_in_threadpool(stream.samples, data))
                    continue
                kind, value = control(message.get("text") or "")
                if kind == "flush":
                    await send([{"flushed": value, "samples": stream.segmenter.received}])
                else:
                    await send(await run_in_threadpool(stream.end))
                    await websocket.close(1000)
                    return "end"
        except (WebSocketDisconnect, ClientGone):
            return "gone"
        except StreamError as error:
            await self._close(websocket, str(error), error.code)
            return str(error.code)
        except Exception as error:  # A bug or an unusable model: one line, logged.
            logs.error(f"stream {model.name}: {type(error).__name__}: {first_line(error)}",
                       event="error", route="stream")
            await self._close(websocket, f"internal error ({type(error).__name__}: "
                              f"{first_line(error)})", INTERNAL)
            return str(INTERNAL)
        finally:
            reader.cancel()
            stopping.cancel()

    async def _close(self, websocket: WebSocket, message: str, code: int) -> None:
        """Tell the client why its stream ends, and end it (it may have gone already)."""
        try:
            await websocket.send_text(json.dumps({"error": message}, ensure_ascii=True))
            await websocket.close(code)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass


def score(model: ServedModel, body: bytes, header: str | None,
          settings: Settings) -> tuple:
    """One inference request, in a pool thread or, small, on the event loop
    (:data:`INLINE_BYTES`): the response's body, its headers and the outputs; or, for a
    request the model cannot score, ``(Failure, {}, None)``.

    The error is returned, not raised: raised, its traceback would keep the frames that
    decoded the request, and the request's parsed JSON with them, alive in the future
    until the cycle collector runs (measured: 100 MB a malformed 4 MB request).
    """
    try:
        request = decode_request(body, header, model.inputs, model.outputs, settings.limits,
                                 max_json_bytes=settings.max_json_bytes)
        outputs = model.infer(request)
    except RequestError as error:
        return Failure.of(error), {}, None
    parameters = {"threshold": float(model.detector.threshold_)}
    content, headers = encode_response(model.name, request, outputs, model.outputs,
                                       parameters)
    return content, headers, outputs


def error_response(message: str, status: int, headers: dict[str, str] | None = None
                   ) -> Response:
    """``{"error": message}``, in ASCII: a message quoting what a client sent (a lone
    surrogate, a control character) is still valid JSON and still one line."""
    return Response(json.dumps({"error": message}, ensure_ascii=True), status_code=status,
                    headers=headers, media_type="application/json")


class ClientGone(Exception):
    """A live stream's client stopped reading, or its connection broke."""


#: A live stream's messages read ahead of the one being looked at (each at most
#: :data:`anomaly.service.server.MAX_MESSAGE_BYTES`): beyond, the client waits.
QUEUED_MESSAGES = 8


async def next_message(messages: asyncio.Queue, stopping: asyncio.Task, timeout: float
                       ) -> dict | None:
    """The next of a stream's messages, or None once the service is stopping.

    Raises
    ------
    StreamError
        1008 when nothing came for ``timeout`` seconds.
    """
    getting = asyncio.ensure_future(messages.get())
    done, _ = await asyncio.wait({getting, stopping}, timeout=timeout,
                                 return_when=asyncio.FIRST_COMPLETED)
    if getting in done:
        return getting.result()
    getting.cancel()  # Nothing was taken from the queue.
    if stopping in done:
        return None
    raise StreamError(f"nothing came for {timeout:g} s", POLICY)


def joined_samples(first: dict, messages: asyncio.Queue) -> tuple[bytes, dict | None]:
    """The samples of ``first`` and of the messages of samples queued behind it, joined,
    and the first queued message that holds none (None: the queue ran out).

    Samples that came while the last were looked at are looked at together: a step costs
    about the same whatever it holds, so a stream sent faster than it is looked at
    catches up.
    """
    data = [first["bytes"]]
    while not messages.empty():
        message = messages.get_nowait()
        if message.get("bytes") is None:
            return b"".join(data), message
        data.append(message["bytes"])
    return b"".join(data), None


async def read_messages(websocket: WebSocket, messages: asyncio.Queue) -> None:
    """A WebSocket's messages into ``messages``, until it closes (a disconnect message
    last, however the socket ended)."""
    try:
        while True:
            message = await websocket.receive()
            await messages.put(message)
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError, OSError):
        await messages.put({"type": "websocket.disconnect"})


def create_app(models: dict[str, ServedModel], settings: Settings = Settings()) -> Starlette:
    """The application serving ``models`` (by name), loaded and probed beforehand."""
    service = Service(models, settings)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "anomaly", "version": __version__,
                             "extensions": ["binary_tensor_data"]})

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        # Not ready is a 4xx in the Open Inference Protocol (Triton and MLServer say 400);
        # a Kubernetes readiness probe takes any status from 400 as not ready.
        return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 400)

    async def model_metadata(request: Request) -> Response:
        return JSONResponse(service.model(request).metadata())

    async def model_ready(request: Request) -> Response:
        service.model(request)
        return await ready(request)

    async def page(request: Request) -> Response:
        return HTMLResponse(web_page(list(models), token=settings.token is not None))

    async def metrics(request: Request) -> Response:
        content, media_type = service.metrics.exposition()
        return Response(content, media_type=media_type)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        # The models were loaded and probed before the app was made.
        getting_ready = asyncio.create_task(service.get_ready())
        yield
        service.ready = False
        # An import cannot be cut off: waited for, so that its log line comes before the
        # last.
        await getting_ready
        service.pool.shutdown(wait=True)

    async def not_found(request: Request, error: HTTPException) -> Response:
        # No route, or not this method (a scanner's requests among them): counted and
        # logged as every request is.
        started = time.perf_counter()
        response = error_response(f"{error.detail}: {request.method[:16]} "
                                  f"{request.url.path[:200]}", error.status_code,
                                  error.headers)  # a 405's Allow
        service.answered(request, UNMATCHED, response, started)
        return response

    routes = [service.route("/", page, open_=True),
              service.route("/v2", server_metadata),
              service.route("/v2/health/live", live, open_=True),
              service.route("/v2/health/ready", ready, open_=True),
              service.route("/metrics", metrics)]
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        routes += [service.route(prefix, model_metadata),
                   service.route(prefix + "/ready", model_ready),
                   service.route(prefix + "/infer", service.infer, methods=("POST",)),
                   service.route(prefix + "/score", service.score_upload, methods=("POST",)),
                   service.route(prefix + "/report", service.report, methods=("POST",)),
                   WebSocketRoute(prefix + "/stream", service.stream)]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: not_found})
    app.state.service = service  # The server ends its live streams when it stops.
    return app
