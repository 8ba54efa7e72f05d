"""Places to score requests in: at most ``limit`` at once, and a bounded queue of requests
waiting their turn in order of arrival.

A request takes its place before its body is read (beyond the first 64 KiB or so, read
while it waits: ``Service.take_place``), so that what the service holds in memory is
bounded by its places and its queue, not by its clients. Without a queue, 64 clients sending
one-beat requests at once (``scripts/benchmark_service.py``) were refused 97% of them with
503 (4 places: each client's next request arrived while 4 others were being read or
scored); with one, a burst waits its turn instead. A request beyond the queue, or whose
turn does not come within its wait, is refused (the caller's 503 with ``Retry-After``).
uvicorn does not cancel a request whose client leaves: the service watches the client of
a request waiting its turn itself (``Service.take_place``) and withdraws it from the
queue.

Places are taken on the event loop and may be given back from any thread (the thread
that streamed an upload's scores): a place given back while requests wait passes
straight to the first of them.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections import deque


class Turn(enum.Enum):
    """How a request's wait for a place ended."""

    TAKEN = "taken"
    #: Refused at once: the places and the queue were full.
    FULL = "full"
    #: Refused: no place came free within its wait.
    TIMED_OUT = "timed out"


class Places:
    """``limit`` places, and up to ``queued`` requests waiting for one."""

    def __init__(self, limit: int, queued: int):
        self.limit, self.queued = limit, queued
        #: Places taken (a place passed on to a waiting request stays taken).
        self.busy = 0
        self._waiting: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Requests waiting for a place."""
        return len(self._waiting)

    def take_now(self) -> Turn | None:
        """A place at once (:attr:`Turn.TAKEN`), the queue full (:attr:`Turn.FULL`), or
        None: the request would wait its turn (:meth:`take`)."""
        with self._lock:
            return self._now()

    async def take(self, timeout: float) -> Turn:
        """A place, at once or within ``timeout`` seconds in turn (:attr:`Turn.TAKEN`), or
        why not. Cancelled while it waits (the service stopping, its client gone), nothing
        is held."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if (turn := self._now()) is not None:
                return turn
            entry = (loop, loop.create_future())
            self._waiting.append(entry)
        # asyncio.wait, not wait_for: cancelled, it raises whatever happened to the turn
        # (wait_for, before Python 3.12, returns a turn that came in the same step of the
        # loop, and a caller cancelling it would not know it holds a place).
        try:
            done, _ = await asyncio.wait({entry[1]}, timeout=timeout)
        except asyncio.CancelledError:
            if self._withdraw(entry):
                self.give_back()
            raise
        # A place given back just as the wait ended was passed to this request.
        return Turn.TAKEN if done or self._withdraw(entry) else Turn.TIMED_OUT

    def _withdraw(self, entry) -> bool:
        """Take ``entry`` out of the queue; whether a place was passed to it already."""
        with self._lock:
            passed = entry not in self._waiting
            if not passed:
                self._waiting.remove(entry)
        return passed

    def _now(self) -> Turn | None:
        # Under the lock.
        if self.busy < self.limit and not self._waiting:
            self.busy += 1
            return Turn.TAKEN
        return Turn.FULL if len(self._waiting) >= self.queued else None

    def give_back(self) -> None:
        """A place given back (from any thread): to the first request waiting, if any."""
        with self._lock:
            if not self._waiting:
                self.busy -= 1
                return
            loop, turn = self._waiting.popleft()
        loop.call_soon_threadsafe(_start, turn)


def _start(turn: asyncio.Future) -> None:
    # A request that stopped waiting meanwhile finds the place was passed to it.
    if not turn.done():
        turn.set_result(None)
