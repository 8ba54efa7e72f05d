"""The service's places to score requests in (anomaly/service/places.py), on a real event
loop: requests wait their turn in order, a full queue and a wait that runs out are
refused, a place given back from another thread reaches the first waiting, and a request
that stops waiting holds nothing."""

from __future__ import annotations

import asyncio
import threading

import pytest

from anomaly.service.places import Places


def test_requests_beyond_the_places_wait_in_turn_and_get_a_place_given_back():
    async def scenario() -> list[str]:
        places = Places(limit=1, queued=2)
        order = []

        async def request(name: str) -> None:
            assert await places.take(timeout=5)
            order.append(name)
            await asyncio.sleep(0.01)
            places.give_back()

        assert await places.take(timeout=5)  # The one place, held.
        waiting = [asyncio.create_task(request(name)) for name in ("first", "second")]
        await asyncio.sleep(0.05)
        assert places.waiting == 2 and order == []
        # Beyond the queue: refused at once, whatever its timeout.
        assert not await asyncio.wait_for(places.take(timeout=60), 1)
        places.give_back()
        await asyncio.gather(*waiting)
        assert places.busy == 0 and places.waiting == 0
        return order

    assert asyncio.run(scenario()) == ["first", "second"]


def test_a_wait_that_runs_out_is_refused_and_a_place_given_back_from_a_thread_is_taken():
    async def scenario() -> None:
        places = Places(limit=1, queued=4)
        assert await places.take(timeout=5)
        assert not await places.take(timeout=0.05)  # Nobody gave the place back.
        assert places.waiting == 0 and places.busy == 1
        # Given back by another thread (as an upload's scoring thread gives it back).
        threading.Timer(0.1, places.give_back).start()
        assert await places.take(timeout=5)
        assert places.busy == 1 and places.waiting == 0

    asyncio.run(scenario())


def test_a_request_that_stops_waiting_holds_no_place():
    async def scenario() -> None:
        places = Places(limit=1, queued=4)
        assert await places.take(timeout=5)
        waiting = asyncio.create_task(places.take(timeout=5))
        await asyncio.sleep(0.05)
        waiting.cancel()  # The client left while it waited.
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert places.waiting == 0
        places.give_back()
        assert places.busy == 0
        # A place given back as the wait is cancelled passes on, then is given back.
        assert await places.take(timeout=5)
        waiting = asyncio.create_task(places.take(timeout=5))
        await asyncio.sleep(0.05)
        places.give_back()  # Passed to the waiting request, not yet told...
        waiting.cancel()  # ...which leaves before it hears of it.
        try:
            took = await waiting  # (Python's wait_for may let the place win.)
        except asyncio.CancelledError:
            took = False
        # Either it holds the place (and gives it back as a request does), or nothing.
        assert places.busy == int(took) and places.waiting == 0

    asyncio.run(scenario())
