"""The service's places to score requests in (anomaly/service/places.py), on a real event
loop: requests wait their turn in order, a full queue and a wait that runs out are
refused, a place given back from another thread reaches the first waiting, and a request
cancelled while it waits holds nothing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from anomaly.service.places import Places, Turn


def test_requests_beyond_the_places_wait_in_turn_and_get_a_place_given_back():
    async def scenario() -> list[str]:
        places = Places(limit=1, queued=2)
        order = []

        async def request(name: str) -> None:
            assert await places.take(timeout=5) is Turn.TAKEN
            order.append(name)
            await asyncio.sleep(0.01)
            places.give_back()

        assert await places.take(timeout=5) is Turn.TAKEN  # The one place, held.
        waiting = [asyncio.create_task(request(name)) for name in ("first", "second")]
        await asyncio.sleep(0.05)
        assert places.waiting == 2 and order == []
        # Beyond the queue: refused at once, whatever its timeout.
        assert await asyncio.wait_for(places.take(timeout=60), 1) is Turn.FULL
        places.give_back()
        await asyncio.gather(*waiting)
        assert places.busy == 0 and places.waiting == 0
        return order

    assert asyncio.run(scenario()) == ["first", "second"]


def test_a_wait_that_runs_out_is_refused_and_a_place_given_back_from_a_thread_is_taken():
    async def scenario() -> None:
        places = Places(limit=1, queued=4)
        assert await places.take(timeout=5) is Turn.TAKEN
        # Nobody gave the place back.
        assert await places.take(timeout=0.05) is Turn.TIMED_OUT
        assert places.waiting == 0 and places.busy == 1
        # Given back by another thread (as an upload's scoring thread gives it back): the
        # loop is woken at once, not at the wait's end.
        threading.Timer(0.1, places.give_back).start()
        began = time.perf_counter()
        assert await places.take(timeout=5) is Turn.TAKEN
        assert time.perf_counter() - began < 1
        assert places.busy == 1 and places.waiting == 0

    asyncio.run(scenario())


def test_a_request_that_stops_waiting_holds_no_place():
    async def scenario() -> None:
        places = Places(limit=1, queued=4)
        assert await places.take(timeout=5) is Turn.TAKEN
        waiting = asyncio.create_task(places.take(timeout=5))
        await asyncio.sleep(0.05)
        waiting.cancel()  # The service stopping while it waited.
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert places.waiting == 0
        places.give_back()
        assert places.busy == 0
        # A place given back as the wait is cancelled passes on, then is given back.
        assert await places.take(timeout=5) is Turn.TAKEN
        waiting = asyncio.create_task(places.take(timeout=5))
        await asyncio.sleep(0.05)
        places.give_back()  # Passed to the waiting request, not yet told...
        waiting.cancel()  # ...which leaves before it hears of it.
        # Cancelled, always: a caller that cancels a wait cannot be left holding a place it
        # does not know of (asyncio.wait_for, before Python 3.12, returned the place here,
        # and the service, whose client had gone, lost it for good).
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert places.busy == 0 and places.waiting == 0

    asyncio.run(scenario())
