"""Serving the application with uvicorn: models loaded and probed first (a bad model fails
before the port is taken), the socket bound before the first request (port 0 picks a
free one, which the first log line gives), and SIGTERM or Ctrl-C handled by uvicorn's
graceful shutdown: no new connections, the requests already accepted answered, the live
streams ended with what they were sent (their last beats and summaries), then exit.
"""

from __future__ import annotations

import math
import os
import re
import socket
from pathlib import Path

from .. import logs
from ..exceptions import InputError, Terminated, UsageError
from .app import create_app
from .settings import Settings
from .models import ServedModel, load_served_model


#: What a model's name (a path segment of its routes, a metrics label) may be.
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: The most seconds a connection has to send a request's headers, from its opening or
#: from the previous response (``--request-timeout`` when shorter): a client that connects
#: and sends nothing, or half its headers, holds no socket longer.
HEADER_SECONDS = 10.0
#: The most bytes of a request's target and headers (as h11, uvicorn's other parser,
#: allows by default): beyond, 431 and the connection closed.
MAX_HEADER_BYTES = 16 * 1024
#: Connections (and requests) at once; beyond, uvicorn answers 503 and closes.
MAX_CONNECTIONS = 1000
#: The largest WebSocket message a live stream may send: 1 MiB, 131 s of one lead at
#: 1,000 Hz in float64 (beyond, the stream is closed with 1009).
MAX_MESSAGE_BYTES = 1 << 20


def parse_model_specs(specs: list[str]) -> dict[str, Path]:
    """``-m`` values as names and directories: ``name=DIR``, or ``DIR`` named after its
    last path component. UsageError for a name that is not letters, digits, ``_``,
    ``.`` and ``-`` (up to 64, not starting with ``.`` or ``-``), or repeated."""
    models: dict[str, Path] = {}
    for spec in specs:
        name, equals, directory = spec.partition("=")
        if not equals:
            name, directory = Path(spec).resolve().name, spec
        if not directory or not MODEL_NAME.fullmatch(name):
            raise UsageError(f"-m {spec!r}: give a model directory, or NAME=DIR with a NAME of "
                             "letters, digits, '_', '.' and '-'", "--model-dir")
        if name in models:
            raise UsageError(f"-m {spec!r}: the name {name!r} is given twice", "--model-dir")
        models[name] = Path(directory)
    return models


#: Addresses no other machine can reach.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def read_token(path: str | os.PathLike) -> str:
    """The bearer token a file holds: one word, its surrounding whitespace (a final
    newline) ignored. InputError for an empty file or one holding several words."""
    token = Path(path).read_text(errors="replace").strip()
    if not token or any(ch.isspace() for ch in token):
        raise InputError(f"{path}: the token file must hold one token, without spaces")
    return token


def open_to_the_network(host: str, settings: Settings) -> bool:
    """Whether serving on ``host`` without a token lets other machines score and read the
    models' metadata (said as a warning)."""
    return settings.token is None and host not in LOOPBACK


def load_models(directories: dict[str, Path]) -> dict[str, ServedModel]:
    """Each model loaded on the ONNX runtime and probed (ModelError naming the first one
    that cannot be)."""
    return {name: load_served_model(name, directory) for name, directory in directories.items()}


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``; InputError naming the address when it
    cannot be had (in use, not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by each accepted connection: without it a kept-alive client waits 40 ms
    # per response (Nagle's algorithm against the client's delayed ACK; measured).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    # Listening now, so that a client the first log line sends is queued until uvicorn
    # accepts (as uvicorn itself does with the socket it binds).
    sock.listen(2048)
    sock.set_inheritable(True)
    os.set_blocking(sock.fileno(), False)
    return sock


def serve(models: dict[str, ServedModel], settings: Settings, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C; returns once the requests in flight are answered."""
    import uvicorn

    if open_to_the_network(host, settings):
        logs.warning(f"serving on {host} without --token-file: whoever reaches it can score "
                     "beats and read the models' metadata", event="no_token")
    # uvicorn's own warnings (a connection refused beyond MAX_CONNECTIONS) in the service's
    # log format; HeaderDeadline says which client sent what it could not parse.
    logs.adopt("uvicorn.error", unless=("Invalid HTTP request received.",))
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    app = create_app(models, settings)
    config = uvicorn.Config(app, log_config=None, access_log=False,
                            lifespan="on", timeout_keep_alive=5,
                            http=type("HeaderDeadline", (HeaderDeadline,), {
                                "seconds": min(HEADER_SECONDS, settings.request_timeout)}),
                            limit_concurrency=MAX_CONNECTIONS,
                            ws_max_size=MAX_MESSAGE_BYTES, ws_per_message_deflate=False,
                            # A request accepted may wait the timeout for a place, take
                            # it to arrive and take it to be scored: it is answered before
                            # the service exits.
                            timeout_graceful_shutdown=math.ceil(3 * settings.request_timeout) + 5)
    server = _streams_first_server()(config, app.state.service, settings.request_timeout)
    logs.info(f"Serving {', '.join(f'{name} ({model.directory})' for name, model in models.items())}"
              f" on http://{bound_host}:{bound_port} (Open Inference Protocol v2)",
              event="listening", host=bound_host, port=bound_port, models=list(models))
    try:
        server.run(sockets=[sock])
    except (Terminated, KeyboardInterrupt):
        # uvicorn stopped gracefully on SIGTERM or Ctrl-C, then raised the signal again for
        # the handler it found (the command line's): for a service that is the normal end.
        pass
    finally:
        sock.close()
    logs.info("Stopped: the requests in flight were answered", event="stopped")


def _streams_first_server():
    """uvicorn's server, which lets the live streams end before it closes their sockets
    (uvicorn would close them at once, with 1012 and without their last beats)."""
    import uvicorn

    class StreamsFirst(uvicorn.Server):
        def __init__(self, config, service, seconds: float) -> None:
            super().__init__(config)
            self.service, self.seconds = service, seconds

        async def shutdown(self, sockets=None) -> None:
            for listening in self.servers:  # No new connections while the streams end.
                listening.close()
            await self.service.end_streams(self.seconds)
            await super().shutdown(sockets)

    return StreamsFirst


def _httptools_protocol():
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return HttpToolsProtocol


class HeaderDeadline(_httptools_protocol()):
    """uvicorn's protocol on httptools (llhttp, in C), with a deadline of ``seconds`` for
    each request's headers (see :data:`HEADER_SECONDS`) and at most
    :data:`MAX_HEADER_BYTES` of them. uvicorn itself closes only idle kept-alive
    connections, so a client that connects and sends nothing, or part of its headers,
    would hold its socket for ever (thousands of them lock everyone out); and llhttp
    bounds no header, so one client sending headers without end would fill the memory
    until the deadline.

    httptools rather than uvicorn's pure-Python h11: under 64 clients of one beat a
    request, 13% more answers a second, the web stack's parsing being most of what holds
    the interpreter (docs/benchmarks.md, "The service")."""

    seconds = HEADER_SECONDS
    _deadline = None
    _header_bytes = 0
    _headers_too_large = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(name, value)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._disarm()  # A request's headers have arrived (or a live stream's).

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # It is the WebSocket's connection now.
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        # What uvicorn answers to whatever the parser refused, this class's refusal too.
        client = self.client[0] if self.client else None
        if not self._headers_too_large:
            logs.warning(f"{client}: not an HTTP/1.1 request: answered 400, connection "
                         "closed", event="bad_http", status=400, client=client)
            return super().send_400_response(msg)
        logs.warning(f"{client}: request headers over {MAX_HEADER_BYTES // 1024} KiB: "
                     "answered 431, connection closed", event="bad_http", status=431,
                     client=client)
        message = f"Request headers over {MAX_HEADER_BYTES // 1024} KiB".encode()
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             b"content-type: text/plain; charset=utf-8\r\n"
                             b"content-length: " + str(len(message)).encode() +
                             b"\r\nconnection: close\r\n\r\n" + message)
        self.transport.close()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _count(self, *parts: bytes) -> None:
        self._header_bytes += sum(len(part) for part in parts)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._headers_too_large = True
            # Raised through the parser, which stops: uvicorn answers (send_400_response).
            raise ValueError("request headers too large")

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        # A request whose headers came (pipelined after the last) is being answered.
        if (self.cycle is None or self.cycle.response_complete) and \
                not self.transport.is_closing():
            self.transport.close()
