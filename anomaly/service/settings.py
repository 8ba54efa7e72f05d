"""How much the service takes, as plain values: the command line reads its defaults here
without importing the service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one request may hold: ``max_rows`` along a tensor's first dimension."""

    max_rows: int = 100_000


@dataclass(frozen=True)
class Settings:
    """How much the service takes: ``max_body_bytes`` per inference request body, of which
    ``max_json_bytes`` of JSON (parsed, JSON takes many times its size),
    ``max_upload_bytes`` per uploaded recording or beats CSV, ``max_concurrent`` requests
    scored at once and ``max_queued`` more waiting their turn, ``max_streams`` live streams
    open at once, ``request_timeout`` seconds for a request to wait for a place, for its
    body to arrive and for an inference request to be scored, ``limits`` on what one
    request holds, and the bearer ``token`` every route but the health checks asks for
    (None: none)."""

    max_body_bytes: int = 16 << 20
    max_json_bytes: int = 4 << 20
    max_upload_bytes: int = 512 << 20
    max_concurrent: int = 4
    max_queued: int = 128
    max_streams: int = 8
    request_timeout: float = 30.0
    limits: Limits = Limits()
    token: str | None = None
