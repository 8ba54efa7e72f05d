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
import stat
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
#: The most bytes of a request's head h11 holds unfinished (its own default): beyond, 400
#: and the connection closed. A head that one read brings whole may be larger.
MAX_HEAD_BYTES = 16 * 1024
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


#: The most bytes a token file is read for (a token is a few dozen).
MAX_TOKEN_BYTES = 4096
#: A bearer token's characters (RFC 6750's b64token): what a client can send as it is.
TOKEN_CHARACTERS = re.compile(rb"[A-Za-z0-9._~+/-]+=*")


def read_token(path: str | os.PathLike) -> str:
    """The bearer token a file holds: one word of RFC 6750's token characters, its
    surrounding whitespace (a final newline) ignored; a warning when others than its owner
    may read it. InputError for a file that is not a regular one (a FIFO would block), an
    empty one, one holding several words or other characters (no client could send them
    as the file has them), or over :data:`MAX_TOKEN_BYTES`."""
    try:
        # Not blocking: a FIFO planted as the token file would wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(descriptor, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise InputError(f"{path}: the token file is not a regular file")
            if mode & 0o077:
                logs.warning(f"{path}: the token file may be read by others than its owner "
                             f"(chmod 600 {path})", event="token_readable")
            data = file.read(MAX_TOKEN_BYTES + 1)
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error}") from None
    if len(data) > MAX_TOKEN_BYTES:
        raise InputError(f"{path}: the token file holds over {MAX_TOKEN_BYTES:,} bytes; a "
                         "token is one word")
    words = data.split()
    if len(words) != 1:
        raise InputError(f"{path}: the token file must hold one token, without spaces")
    token = words[0]
    if not TOKEN_CHARACTERS.fullmatch(token):
        raise InputError(f"{path}: a token is letters, digits and -._~+/ (then = padding), "
                         "as RFC 6750 has it: 'openssl rand -hex 32' makes one")
    return token.decode("ascii")


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
    # log format. HeaderDeadline says which client sent what h11 refused; a client offering
    # HTTP/2 (Upgrade: h2c, Java's HttpClient at each new connection) is answered in HTTP/1.1,
    # as HTTP lets a server, and needs no warning.
    logs.adopt("uvicorn.error", unless=("Invalid HTTP request received.",
                                        "Unsupported upgrade request."))
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    app = create_app(models, settings)
    config = uvicorn.Config(app, log_config=None, access_log=False,
                            lifespan="on", timeout_keep_alive=5,
                            http=type("HeaderDeadline", (HeaderDeadline,), {
                                "seconds": min(HEADER_SECONDS, settings.request_timeout)}),
                            limit_concurrency=MAX_CONNECTIONS,
                            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
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


def _h11_protocol():
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


class HeaderDeadline(_h11_protocol()):
    """uvicorn's h11 protocol, with a deadline of ``seconds`` for each request's headers
    (see :data:`HEADER_SECONDS`): uvicorn itself closes only idle kept-alive connections, so a
    client that connects and sends nothing, or part of its headers, would hold its socket
    for ever (thousands of them lock everyone out). h11 holds at most
    :data:`MAX_HEAD_BYTES` of a request's unfinished head; what it refuses is logged with
    the client.

    h11 rather than httptools, uvicorn's other parser (llhttp, in C), which answered 14-18%
    more one-beat requests a second under load (docs/benchmarks.md, "The service") but
    bounds no header line (one without end is held whole, and copied at each read) and
    loses the body of a request offering ``Upgrade: h2c``, as Java's HttpClient does by
    default (uvicorn issue 2722): h11 reads it and ignores the offer."""

    seconds = HEADER_SECONDS
    _deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # A request's headers have arrived.
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def handle_websocket_upgrade(self, event) -> None:
        self._disarm()  # A live stream's headers came: it is the WebSocket's now.
        super().handle_websocket_upgrade(event)

    def send_400_response(self, msg: str) -> None:
        # What h11 refuses (what is not HTTP/1.x, malformed headers or framing, a head
        # unfinished after MAX_HEAD_BYTES): said with the client in the service's log
        # (uvicorn's own line, without it, is not: serve()).
        client = self.client[0] if self.client else None
        logs.warning(f"{client}: a request the HTTP parser refuses (malformed, not HTTP/1.x, "
                     f"or a head unfinished after {MAX_HEAD_BYTES // 1024} KiB): answered 400 "
                     "where it can be, connection closed", event="bad_http", status=400,
                     client=client)
        super().send_400_response(msg)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

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
